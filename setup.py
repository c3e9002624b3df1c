from setuptools import find_packages, setup

setup(
    name='esrgan_plugin',
    version='0.1.0',
    description='ESRGAN (Wang et al., 2018) as a plugin for BasicSR 1.4.2',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    # The option files stay in the repository's top-level options/ folder and ship inside the package as
    # esrgan_plugin/option_files/, so an installed package (pip install .) finds them too (esrgan_plugin.options).
    packages=find_packages(include=['esrgan_plugin', 'esrgan_plugin.*']) + ['esrgan_plugin.option_files'],
    package_dir={'esrgan_plugin.option_files': 'options'},
    package_data={'esrgan_plugin.option_files': ['*.yml']},
    python_requires='>=3.11',  # hashlib.file_digest (training/resume.py)
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
        'lpips',  # ships the LPIPS linear-layer weights (5 KB each) and is the reference our LPIPS is tested against
        'pydantic>=2',  # the option-file schema (esrgan_plugin/schema.py) and its JSON schema
        'Pillow>=11.3',  # photos as people have them: EXIF orientation, ICC/EXIF/XMP, AVIF, animated GIF/WebP/APNG
        'pillow-heif>=0.18',  # HEIC/HEIF, the default format of iPhone cameras
        'av>=14',  # videos: FFmpeg's decoders and encoders in the wheel, streams copied untouched
    ],
    extras_require={
        # jsonschema: an independent check of the published JSON schema; onnx, onnxruntime: the ONNX export tests
        'test': ['pytest', 'pytest-xdist', 'jsonschema', 'matplotlib', 'onnx', 'onnxruntime'],
        'plot': ['matplotlib'],  # sweep.png of the perception-distortion sweep; sweep.csv needs nothing
        'onnx': ['onnx', 'onnxruntime'],
    },
)
