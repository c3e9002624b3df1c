"""``esrgan_plugin.register()`` is the one explicit entry: ``import esrgan_plugin`` registers nothing and imports
neither torch nor basicsr; the plugin's modules import before ``register()``; ``register()`` adapts basicsr and
registers every name of ``esrgan_plugin.REGISTERED``. Run in a fresh interpreter, as a user program starts."""
import subprocess
import textwrap

from conftest import PYTHON, subprocess_env

USER_PROGRAM = '''
import sys

import esrgan_plugin
print('heavy modules after the import:', sorted({'torch', 'torchvision', 'basicsr'} & set(sys.modules)))

from esrgan_plugin.archs.rrdbnet_arch import ESRGANRRDBNet  # a library module, before register()
import torch
net = ESRGANRRDBNet(num_feat=4, num_block=1, num_grow_ch=2)
print('forward:', tuple(net(torch.rand(1, 3, 8, 8)).shape))

import basicsr.utils.options
from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY
registries = dict(arch=ARCH_REGISTRY, model=MODEL_REGISTRY, loss=LOSS_REGISTRY, dataset=DATASET_REGISTRY,
                  metric=METRIC_REGISTRY)


def registered():
    return [name for kind, names in esrgan_plugin.REGISTERED.items() for name in names if name in registries[kind]]


print('registered before:', registered())
print('ordered_yaml before:', basicsr.utils.options.ordered_yaml.__module__)
esrgan_plugin.register()
esrgan_plugin.register()  # a second call changes nothing
print('registered after:', registered())
print('ordered_yaml after:', basicsr.utils.options.ordered_yaml.__module__)
'''


def test_register_is_the_one_entry_and_the_import_alone_is_light(tmp_path):
    result = subprocess.run([PYTHON, '-c', textwrap.dedent(USER_PROGRAM)], capture_output=True, text=True,
                            env=subprocess_env(), timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines[0] == 'heavy modules after the import: []'
    assert lines[1] == 'forward: (1, 3, 32, 32)'
    # Importing a module registers what that module defines (basicsr's decorators), nothing more.
    assert lines[2] == "registered before: ['ESRGANRRDBNet']"
    assert lines[3] == 'ordered_yaml before: basicsr.utils.options'
    every_name = ['ESRGANRRDBNet', 'ESRGANVGGDiscriminator', 'ESRGANPSNRModel', 'ESRGANRaGANModel',
                  'ESRGANPerceptualLoss', 'ESRGANStandInPerceptualLoss', 'ESRGANRaGANLoss', 'DIV2KPairedDataset', 'GTOnlyDataset',
                  'calculate_lpips', 'calculate_color_shift']  # README.md#use-it-from-your-own-basicsr-code
    assert lines[4] == f'registered after: {every_name}'
    assert lines[5] == 'ordered_yaml after: esrgan_plugin.compat'
