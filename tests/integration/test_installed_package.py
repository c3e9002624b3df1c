"""An ordinary (not editable) install works from any folder: option files, bare option names, the commands.

The install is made as the README says, into a virtual environment (``python -m venv``), from whatever
environment runs the suite: a venv (what the README and CI use), a conda environment or a system Python. No
package index is reachable in a test, so the new venv is made without pip and sees the packages of the Python
that made it (torch, basicsr, pip, setuptools) through a ``.pth`` file listing that Python's own package
folders. ``--system-site-packages`` would not do: from a venv it reaches the *base* interpreter's packages, not
the venv's.
"""
import os
import shutil
import subprocess
import sys

import pytest

from conftest import PYTHON, REPO_ROOT

# The repository's options/ folder, which setup.py ships as esrgan_plugin/option_files.
SHIPPED = sorted(name[:-len('.yml')] for name in os.listdir(os.path.join(REPO_ROOT, 'options'))
                 if name.endswith('.yml'))

# Run by the Python whose packages the new venv should see: creates the venv at argv[1] and lists that Python's
# package folders (venv, conda env or system install alike: whatever holds its site-packages) in a .pth there.
MAKE_VENV = r"""
import os, sys, sysconfig, venv
target = sys.argv[1]
venv.create(target, with_pip=False)
folders = [p for p in sys.path if os.path.isdir(p) and os.path.basename(p) in ('site-packages', 'dist-packages')]
scheme = 'nt_venv' if os.name == 'nt' else 'venv'
site = sysconfig.get_path('purelib', scheme, vars={'base': target, 'platbase': target})
with open(os.path.join(site, 'outer_environment.pth'), 'w') as f:
    f.write(''.join(folder + os.linesep for folder in folders))
"""


def make_venv(python: str, target) -> str:
    """A venv at ``target`` made by ``python`` and seeing its packages; returns the venv's python."""
    subprocess.run([python, '-c', MAKE_VENV, str(target)], check=True, env=clean_env())
    return str(target / ('Scripts' if sys.platform == 'win32' else 'bin') / 'python')


def clean_env() -> dict:
    return {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'VIRTUAL_ENV')}  # nothing of the checkout


def install(python: str, source) -> None:
    """``pip install .`` offline: the dependencies are already visible, the build uses the visible setuptools."""
    done = subprocess.run([python, '-m', 'pip', 'install', '--no-deps', '--no-build-isolation', '--no-index', '-q',
                           str(source)], capture_output=True, text=True, env=clean_env(), timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def packaged_source(tmp_path):
    """What setup.py packages, copied so that the build leaves nothing in the checkout."""
    source = tmp_path / 'src'
    source.mkdir()
    for name in ('setup.py', 'README.md'):
        shutil.copy(os.path.join(REPO_ROOT, name), source / name)
    for name in ('esrgan_plugin', 'options'):
        shutil.copytree(os.path.join(REPO_ROOT, name), source / name,
                        ignore=shutil.ignore_patterns('__pycache__'))
    return source


@pytest.mark.slow
def test_pip_install_dot_into_a_fresh_venv(tmp_path):
    source = packaged_source(tmp_path)
    venv = tmp_path / 'venv'
    python = make_venv(PYTHON, venv)
    install(python, source)
    env = clean_env()
    empty = tmp_path / 'empty'
    empty.mkdir()

    def run(*args):
        return subprocess.run([python, *args], capture_output=True, text=True, env=env, timeout=300, cwd=empty)

    where = run('-c', 'import esrgan_plugin.config.shipped as o; print(o.__file__); print(o.option_files_dir())')
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


@pytest.mark.slow
def test_a_venv_made_from_inside_a_venv_installs_too(tmp_path):
    # Whatever runs the suite, this is the README's case: the user's own venv is the Python that makes the new one.
    outer = make_venv(PYTHON, tmp_path / 'outer')
    inner = make_venv(outer, tmp_path / 'inner')
    install(inner, packaged_source(tmp_path))
    empty = tmp_path / 'empty'
    empty.mkdir()
    found = subprocess.run([inner, '-c', 'import esrgan_plugin.options as o, basicsr, torch; print(o.__file__)'],
                           capture_output=True, text=True, env=clean_env(), timeout=300, cwd=empty)
    assert found.returncode == 0, found.stderr[-3000:]
    assert found.stdout.strip().startswith(str(tmp_path / 'inner')), found.stdout
