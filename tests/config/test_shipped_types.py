"""Every type a shipped option file names is registered: one of ours, or basicsr's."""
import glob
import os

import pytest
import yaml

from conftest import REPO_ROOT


def _types(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == 'type' and isinstance(value, str):
                yield value
            else:
                yield from _types(value)


@pytest.mark.parametrize('path', sorted(glob.glob(os.path.join(REPO_ROOT, 'options', '*.yml'))),
                         ids=os.path.basename)
def test_shipped_option_files_name_registered_types(path):
    from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY
    with open(path) as f:
        opt = yaml.safe_load(f)
    assert opt['model_type'] in MODEL_REGISTRY
    registries = (ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY)
    # 'auto': the test command reads the generator's architecture off the checkpoint (generator_options)
    optimizers_and_schedulers = {'Adam', 'AdamW', 'MultiStepLR', 'CosineAnnealingRestartLR', 'lmdb', 'disk', 'auto'}
    for name in _types(opt):
        assert name in optimizers_and_schedulers or any(name in r for r in registries), f'{name} is not registered'
    for net in ('network_g', 'network_d'):
        if net in opt and opt[net]['type'] != 'auto':  # ours, not basicsr's same-purpose classes
            assert opt[net]['type'].startswith('ESRGAN')
