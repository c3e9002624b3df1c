import os
import socket
import sys

import pytest
import torch

import esrgan_plugin  # noqa: F401  registration, as users get it

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(os.path.dirname(REPO_ROOT), 'shared', 'data')

TINY_ARCH = dict(num_feat=8, num_block=2, num_grow_ch=4)


def tiny_generator(scale: int = 4, seed: int = 0, **overrides) -> torch.nn.Module:
    from esrgan_plugin.rrdbnet_arch import ESRGANRRDBNet
    torch.manual_seed(seed)
    return ESRGANRRDBNet(**{**TINY_ARCH, 'scale': scale, **overrides}).eval()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def subprocess_env() -> dict:
    """Environment for child Pythons: the checkout first on the path, few threads."""
    env = dict(os.environ)
    env['PYTHONPATH'] = REPO_ROOT + os.pathsep + env.get('PYTHONPATH', '')
    env.setdefault('OMP_NUM_THREADS', '1')
    return env


@pytest.fixture
def shared_data():
    if not os.path.isdir(SHARED_DATA):
        pytest.skip('../shared/data is not present')
    return SHARED_DATA


PYTHON = sys.executable
