"""The shipped option files: bare names on -opt, --list and --copy; every type they name is registered."""
import glob
import os

import pytest
import yaml

from conftest import REPO_ROOT, run_command
from esrgan_plugin import options, train
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


def test_list_and_copy(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    listed = run_command(capsys, options.main, '--list')
    assert listed.code == 0
    lines = listed.out.splitlines()[:len(SHIPPED)]
    assert [line.split()[0] for line in lines] == [os.path.splitext(n)[0] for n in SHIPPED]
    assert 'ESRGAN stage 2: the GAN-based model' in listed.out
    first = run_command(capsys, options.main, '--copy', 'mine')
    assert first.code == 0 and sorted(os.listdir(tmp_path / 'mine')) == SHIPPED
    for name in SHIPPED:
        with open(os.path.join(REPO_ROOT, 'options', name), 'rb') as f:
            assert (tmp_path / 'mine' / name).read_bytes() == f.read()
    (tmp_path / 'mine' / SHIPPED[0]).write_text('edited\n')
    again = run_command(capsys, options.main, '--copy', 'mine')
    assert again.code == 1 and again.err.count('\n') == 1 and '--overwrite' in again.err
    assert (tmp_path / 'mine' / SHIPPED[0]).read_text() == 'edited\n'
    with pytest.raises(UserFacingError, match='is a file'):
        shipped.copy_option_files(str(tmp_path / 'mine' / SHIPPED[0]))


def test_train_takes_a_bare_name(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    result = run_command(capsys, train.main, '-opt', 'train_RRDBNet_PSNR_x4')
    # found and read: the run stops at the training data, which is not here, before anything is written
    assert result.code == 2
    assert 'train_RRDBNet_PSNR_x4.yml: datasets.train.dataroot_gt' in result.err
    assert os.listdir(tmp_path) == []


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
