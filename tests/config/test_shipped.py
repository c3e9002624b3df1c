"""The shipped option files: bare names on -opt, --list and --copy."""
import os
import subprocess

import pytest

from conftest import PYTHON, REPO_ROOT, subprocess_env
from esrgan_plugin import options
from esrgan_plugin.config import shipped
from esrgan_plugin.errors import UserFacingError

SHIPPED = sorted(n for n in os.listdir(os.path.join(REPO_ROOT, 'options')) if n.endswith('.yml'))


def test_bare_names_find_the_shipped_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    expected = os.path.join(REPO_ROOT, 'options', 'train_ESRGAN_x4.yml')
    assert os.path.samefile(shipped.resolve_option_file('train_ESRGAN_x4'), expected)
    assert os.path.samefile(shipped.resolve_option_file('train_ESRGAN_x4.yml'), expected)
    (tmp_path / 'train_ESRGAN_x4.yml').write_text('name: mine\n')  # a file of the user's wins
    assert shipped.resolve_option_file('train_ESRGAN_x4.yml') == 'train_ESRGAN_x4.yml'
    assert shipped.resolve_option_file('nope') == 'nope'  # left for the caller to report
    assert shipped.resolve_option_file('sub/train_ESRGAN_x4.yml') == 'sub/train_ESRGAN_x4.yml'


def test_list_and_copy(tmp_path):
    listed = subprocess.run([PYTHON, '-m', 'esrgan_plugin.options', '--list'], capture_output=True, text=True,
                            env=subprocess_env(), timeout=120, cwd=tmp_path)
    assert listed.returncode == 0
    lines = listed.stdout.splitlines()[:len(SHIPPED)]
    assert [line.split()[0] for line in lines] == [os.path.splitext(n)[0] for n in SHIPPED]
    assert 'ESRGAN stage 2: the GAN-based model' in listed.stdout
    copy = [PYTHON, '-m', 'esrgan_plugin.options', '--copy', 'mine']
    first = subprocess.run(copy, capture_output=True, text=True, env=subprocess_env(), timeout=120, cwd=tmp_path)
    assert first.returncode == 0 and sorted(os.listdir(tmp_path / 'mine')) == SHIPPED
    for name in SHIPPED:
        with open(os.path.join(REPO_ROOT, 'options', name), 'rb') as f:
            assert (tmp_path / 'mine' / name).read_bytes() == f.read()
    (tmp_path / 'mine' / SHIPPED[0]).write_text('edited\n')
    again = subprocess.run(copy, capture_output=True, text=True, env=subprocess_env(), timeout=120, cwd=tmp_path)
    assert again.returncode == 1 and again.stderr.count('\n') == 1 and '--overwrite' in again.stderr
    assert (tmp_path / 'mine' / SHIPPED[0]).read_text() == 'edited\n'
    with pytest.raises(UserFacingError, match='is a file'):
        shipped.copy_option_files(str(tmp_path / 'mine' / SHIPPED[0]))


def test_train_takes_a_bare_name(tmp_path):
    result = subprocess.run([PYTHON, '-m', 'esrgan_plugin.train', '-opt', 'train_RRDBNet_PSNR_x4'],
                            capture_output=True, text=True, env=subprocess_env(), timeout=120, cwd=tmp_path)
    # found and read: the run stops at the training data, which is not here, before anything is written
    assert result.returncode == 2
    assert 'train_RRDBNet_PSNR_x4.yml: datasets.train.dataroot_gt' in result.stderr
    assert os.listdir(tmp_path) == []
