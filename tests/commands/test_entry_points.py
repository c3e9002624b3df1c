"""Every command through its real entry point, ``python -m esrgan_plugin.<command>``, once: a small job in a
child interpreter, which registers nothing until the command calls ``register()`` (``esrgan_plugin/__init__.py``).
Everything else a command does is tested in-process (``conftest.run_command``); the demo's real run is the
shortened demo of tests/integration/test_demo.py, and ``-h`` of every command is in test_fast_help.py.

Then the failures that train and test share, in-process: one clear line, the exit code, nothing written."""
import json
import subprocess

import cv2
import numpy as np
import pytest
import torch
import yaml

from builders import make_lmdb_pair, train_options
from conftest import PYTHON, TINY_ARCH, run_command, subprocess_env, tiny_generator
from esrgan_plugin import test as test_command
from esrgan_plugin import train as train_command

COMMANDS = {'train': train_command.main, 'test': test_command.main}


def run_module(command: str, *args, cwd):
    env = dict(subprocess_env(), CUDA_VISIBLE_DEVICES='')
    return subprocess.run([PYTHON, '-m', f'esrgan_plugin.{command}', *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=300, cwd=cwd)


def image_pairs(root, names=('a', 'b')):
    """Ground-truth 32x32 images and their x4 LR images in ``root/gt`` and ``root/lq``."""
    rng = np.random.default_rng(0)
    for folder in ('gt', 'lq'):
        (root / folder).mkdir(parents=True)
    for name in names:
        gt = cv2.GaussianBlur(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), (5, 5), 0)
        cv2.imwrite(str(root / 'gt' / f'{name}.png'), gt)
        cv2.imwrite(str(root / 'lq' / f'{name}.png'), cv2.resize(gt, (8, 8), interpolation=cv2.INTER_AREA))


def save_generator(path, seed=0):
    torch.save({'params': tiny_generator(seed=seed).state_dict()}, path)
    return path


# ---------------------------------------------------------------------- one real process per command
def test_train_entry_point(tmp_path):
    gt, lq = make_lmdb_pair(tmp_path / 'data', count=4)
    opt = {'name': 'smoke', 'model_type': 'ESRGANPSNRModel', 'scale': 4, 'num_gpu': 0, 'manual_seed': 0,
           'datasets': {'train': {'name': 'tiny', 'type': 'DIV2KPairedDataset', 'dataroot_gt': gt, 'dataroot_lq': lq,
                                  'io_backend': {'type': 'lmdb'}, 'gt_size': 32, 'num_worker_per_gpu': 0,
                                  'batch_size_per_gpu': 2}},
           'network_g': {'type': 'ESRGANRRDBNet', **TINY_ARCH},
           'path': {'pretrain_network_g': None, 'resume_state': None},
           'train': {'optim_g': {'type': 'Adam', 'lr': 1e-4}, 'total_iter': 2,
                     'scheduler': {'type': 'MultiStepLR', 'milestones': [1], 'gamma': 0.5},
                     'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0}},
           'logger': {'print_freq': 1, 'save_checkpoint_freq': 2, 'use_tb_logger': False}}
    (tmp_path / 'smoke.yml').write_text(yaml.safe_dump(opt))
    result = run_module('train', '-opt', 'smoke.yml', cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    saved = torch.load(tmp_path / 'experiments' / 'smoke' / 'models' / 'net_g_2.pth', weights_only=True)
    assert saved['params'].keys() == tiny_generator().state_dict().keys()
    assert 'Traceback' not in result.stderr


def test_test_entry_point(tmp_path):
    image_pairs(tmp_path / 'pairs')
    save_generator(tmp_path / 'g.pth')
    opt = {'name': 'smoke', 'model_type': 'ESRGANPSNRModel', 'scale': 4, 'num_gpu': 0,
           'datasets': {'test_1': {'name': 'pairs', 'type': 'PairedImageDataset', 'dataroot_gt': 'pairs/gt',
                                   'dataroot_lq': 'pairs/lq', 'io_backend': {'type': 'disk'}}},
           'network_g': {'type': 'auto'}, 'path': {'pretrain_network_g': 'g.pth'},
           'val': {'save_img': True, 'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': 4}}}}
    (tmp_path / 'smoke.yml').write_text(yaml.safe_dump(opt))
    result = run_module('test', '-opt', 'smoke.yml', cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    results = tmp_path / 'results' / 'smoke'
    assert sorted(p.name for p in (results / 'visualization' / 'pairs').iterdir()) == ['a_smoke.png', 'b_smoke.png']
    assert (results / 'index.html').is_file() and list(results.glob('test_smoke_*.log'))
    assert 'Mean of each metric:' in result.stderr


def test_infer_entry_point(tmp_path):
    save_generator(tmp_path / 'g.pth')
    cv2.imwrite(str(tmp_path / 'a.png'), np.random.default_rng(0).integers(0, 256, (6, 7, 3), dtype=np.uint8))
    result = run_module('infer', '-i', 'a.png', '-o', 'out', '-m', 'g.pth', '--device', 'cpu', cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert cv2.imread(str(tmp_path / 'out' / 'a_out.png')).shape == (24, 28, 3)


def test_interpolate_entry_point(tmp_path):
    save_generator(tmp_path / 'psnr.pth', seed=1)
    save_generator(tmp_path / 'gan.pth', seed=2)
    result = run_module('interpolate', '--psnr', 'psnr.pth', '--gan', 'gan.pth', '--alpha', '0.5', '-o', 'nets',
                        cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    mixed = torch.load(tmp_path / 'nets' / 'interp_0.5.pth', weights_only=True)['params']
    one, two = tiny_generator(seed=1).state_dict(), tiny_generator(seed=2).state_dict()
    assert torch.allclose(mixed['conv_first.weight'], (one['conv_first.weight'] + two['conv_first.weight']) / 2)


def test_export_entry_point(tmp_path):
    save_generator(tmp_path / 'g.pth')
    result = run_module('export', '-m', 'g.pth', '-o', 'g.safetensors', cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith('wrote g.safetensors (') and (tmp_path / 'g.safetensors').is_file()


def test_prepare_data_entry_point(tmp_path):
    image_pairs(tmp_path / 'images')
    result = run_module('prepare_data', 'images/gt', 'prepared', '--whole-image', '--workers', '1', cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / 'prepared').iterdir()) == ['gt.lmdb', 'lq_x4.lmdb']


def test_degrade_entry_point(tmp_path):
    photos = tmp_path / 'photos'
    photos.mkdir()
    rng = np.random.default_rng(0)
    cv2.imwrite(str(photos / 'p.png'), cv2.GaussianBlur(rng.integers(0, 256, (80, 80, 3), dtype=np.uint8), (5, 5), 0))
    opt = train_options()
    opt['datasets'] = {'train': {'name': 'p', 'type': 'GTOnlyDataset', 'dataroot_gt': str(photos), 'gt_size': 32,
                                 'crop_pad_size': 80, 'io_backend': {'type': 'disk'}, 'num_worker_per_gpu': 0,
                                 'batch_size_per_gpu': 1}}
    del opt['val']
    (tmp_path / 'o.yml').write_text(yaml.safe_dump(opt))
    result = run_module('degrade', '-opt', 'o.yml', '-n', '2', '-o', 'preview', cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / 'preview').iterdir()) == ['0_gt.png', '0_lq.png', '1_gt.png',
                                                                         '1_lq.png', 'sheet.png']

def test_options_entry_point(tmp_path):
    result = run_module('options', '--list', cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines()[0].split()[0] == 'test_set14'


def test_schema_entry_point(tmp_path):
    result = run_module('schema', cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    schema = json.loads(result.stdout)
    assert 'ESRGANRRDBNet' in json.dumps(schema) and 'DIV2KPairedDataset' in json.dumps(schema)


# ---------------------------------------------------------------------- shared failures of train and test
@pytest.mark.parametrize('command', COMMANDS)
def test_help(capsys, command):
    result = run_command(capsys, COMMANDS[command], '-h')
    assert result.code == 0
    assert '-opt' in result.out and '--launcher' in result.out


@pytest.mark.parametrize('command', COMMANDS)
def test_missing_option_file_is_one_clear_error(tmp_path, monkeypatch, capsys, command):
    monkeypatch.chdir(tmp_path)
    result = run_command(capsys, COMMANDS[command], '-opt', tmp_path / 'nope.yml')
    assert result.code == 2
    assert 'does not exist' in result.err
    assert 'Traceback' not in result.err
    assert not (tmp_path / 'experiments').exists() and not (tmp_path / 'results').exists()


def test_invalid_yaml_is_one_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'bad.yml').write_text('name: [unclosed\n')
    result = run_command(capsys, train_command.main, '-opt', tmp_path / 'bad.yml')
    assert result.code == 2 and 'not valid YAML' in result.err


@pytest.mark.parametrize('command', COMMANDS)
@pytest.mark.parametrize('broken', ['dataroot', 'pretrained'])
def test_missing_data_or_checkpoint_stops_before_anything_is_written(tmp_path, monkeypatch, capsys, command, broken):
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'gt').mkdir()
    opt = train_options()  # valid but for the one path below
    for dataset in opt['datasets'].values():
        dataset['dataroot_gt'] = dataset['dataroot_lq'] = 'gt'
        dataset['io_backend'] = {'type': 'disk'}
    opt['datasets']['val']['dataroot_lq'] = 'lq_missing' if broken == 'dataroot' else 'gt'
    opt['path']['pretrain_network_g'] = 'weights/missing.pth' if broken == 'pretrained' else None
    (tmp_path / 'o.yml').write_text(yaml.safe_dump(opt))
    result = run_command(capsys, COMMANDS[command], '-opt', 'o.yml')
    assert result.code == 2
    expected = ('datasets.val.dataroot_lq: lq_missing does not exist' if broken == 'dataroot' else
                'path.pretrain_network_g: weights/missing.pth does not exist')
    assert result.err.splitlines()[0].startswith(f'error: o.yml: {expected}'), result.err
    assert len(result.err.splitlines()) == 2  # the problem and the count
    assert not (tmp_path / 'experiments').exists() and not (tmp_path / 'results').exists()
