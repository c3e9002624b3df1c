"""An ordinary (not editable) install works from any folder: option files, bare option names, the commands."""
import os
import shutil
import subprocess
import sys

import pytest

from conftest import PYTHON, REPO_ROOT

SHIPPED = ['test_set14', 'test_set5', 'train_ESRGAN_x4', 'train_RRDBNet_PSNR_x4']


@pytest.mark.slow
def test_pip_install_dot_into_a_fresh_venv(tmp_path):
    # What setup.py packages, copied so that the build leaves nothing in the checkout.
    source = tmp_path / 'src'
    source.mkdir()
    for name in ('setup.py', 'README.md'):
        shutil.copy(os.path.join(REPO_ROOT, name), source / name)
    for name in ('esrgan_plugin', 'options'):
        shutil.copytree(os.path.join(REPO_ROOT, name), source / name,
                        ignore=shutil.ignore_patterns('__pycache__'))
    venv = tmp_path / 'venv'
    # torch and basicsr come from the system (--system-site-packages); the venv's own setuptools would be
    # older than the system's (without pip the system's pip and setuptools are used); no index is reachable here.
    subprocess.run([PYTHON, '-m', 'venv', '--system-site-packages', '--without-pip', str(venv)], check=True)
    python = str(venv / ('Scripts' if sys.platform == 'win32' else 'bin') / 'python')
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}  # nothing of the checkout on the path
    install = subprocess.run([python, '-m', 'pip', 'install', '--no-build-isolation', '--no-index', '-q',
                              str(source)], capture_output=True, text=True, env=env, timeout=600)
    assert install.returncode == 0, install.stderr[-3000:]
    empty = tmp_path / 'empty'
    empty.mkdir()

    def run(*args):
        return subprocess.run([python, *args], capture_output=True, text=True, env=env, timeout=300, cwd=empty)

    where = run('-c', 'import esrgan_plugin.options as o; print(o.__file__); print(o.option_files_dir())')
    package, options_dir = where.stdout.split()
    assert package.startswith(str(venv)) and options_dir.startswith(str(venv)), where.stdout
    listed = run('-m', 'esrgan_plugin.options', '--list')
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[0] for line in listed.stdout.splitlines()[:len(SHIPPED)]] == SHIPPED
    helped = run('-m', 'esrgan_plugin.train', '-opt', 'train_ESRGAN_x4', '-h')
    assert helped.returncode == 0 and helped.stdout.startswith('usage: python -m esrgan_plugin.train')
    # Without -h the bare name is found inside the installed package; the run then stops at the missing data.
    found = run('-m', 'esrgan_plugin.train', '-opt', 'train_ESRGAN_x4')
    assert found.returncode == 2
    assert os.path.join(options_dir, 'train_ESRGAN_x4.yml') in found.stderr and 'dataroot_gt' in found.stderr
    assert os.listdir(empty) == []
    copied = run('-m', 'esrgan_plugin.options', '--copy', 'mine')
    assert copied.returncode == 0 and sorted(os.listdir(empty / 'mine')) == [f'{n}.yml' for n in SHIPPED]
    with open(os.path.join(REPO_ROOT, 'options', 'train_ESRGAN_x4.yml'), 'rb') as f:
        assert (empty / 'mine' / 'train_ESRGAN_x4.yml').read_bytes() == f.read()
