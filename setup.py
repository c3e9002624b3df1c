from setuptools import find_packages, setup

setup(
    name='esrgan_plugin',
    version='0.1.0',
    description='ESRGAN (Wang et al., 2018) as a plugin for BasicSR 1.4.2',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['esrgan_plugin', 'esrgan_plugin.*']),
    python_requires='>=3.10',
    install_requires=[
        'torch>=2.1',
        'torchvision>=0.16',
        'basicsr==1.4.2',
        'numpy',
        'opencv-python',
        'pyyaml',
        'lmdb',
        'tb-nightly',
        'tqdm',
        'scikit-image',
        'safetensors',  # reading/writing .safetensors checkpoints without pickle
        'pydantic>=2',  # the option-file schema (esrgan_plugin/schema.py) and its JSON schema
    ],
    extras_require={
        'test': ['pytest', 'jsonschema'],  # jsonschema: an independent check of the published JSON schema
        'onnx': ['onnx', 'onnxruntime'],
    },
)
