"""``python -m esrgan_plugin.degrade``: the pairs an option file's GTOnlyDataset makes, written as images."""
import os

import cv2
import numpy as np
import pytest
import yaml
from basicsr.utils.matlab_functions import imresize

from builders import train_options
from conftest import run_command
from esrgan_plugin import degrade


def photos(folder, count=3, size=96):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        coarse = rng.integers(0, 256, (size // 8, size // 8, 3), dtype=np.uint8)
        cv2.imwrite(str(folder / f'p{i}.png'), cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC))


def option_file(tmp_path, **dataset):
    photos(tmp_path / 'photos')
    opt = train_options()
    opt['datasets'] = {'train': {'name': 'photos', 'type': 'GTOnlyDataset', 'dataroot_gt': str(tmp_path / 'photos'),
                                 'io_backend': {'type': 'disk'}, 'gt_size': 32, 'crop_pad_size': 80,
                                 'num_worker_per_gpu': 0, 'batch_size_per_gpu': 2, **dataset}}
    opt['train']['perceptual_opt']['vgg_weights'] = 'random'
    del opt['val']
    path = tmp_path / 'realworld.yml'
    path.write_text(yaml.safe_dump(opt))
    return str(path)


def read(folder, name):
    return cv2.imread(os.path.join(folder, name), cv2.IMREAD_UNCHANGED)


def test_writes_n_pairs_and_the_sheet_the_same_for_the_same_seed(capsys, tmp_path):
    opt = option_file(tmp_path)
    outs = [str(tmp_path / name) for name in ('a', 'b', 'c')]
    for out, seed in zip(outs, (5, 5, 6)):
        result = run_command(capsys, degrade.main, '-opt', opt, '-n', '3', '--seed', str(seed), '-o', out)
        assert result.code == 0, result.err
    assert result.out.strip() == f'wrote 3 pairs and sheet.png to {outs[2]}'
    names = sorted(os.listdir(outs[0]))
    assert names == ['0_gt.png', '0_lq.png', '1_gt.png', '1_lq.png', '2_gt.png', '2_lq.png', 'sheet.png']
    assert read(outs[0], '0_gt.png').shape == (32, 32, 3) and read(outs[0], '0_lq.png').shape == (8, 8, 3)
    sheet = read(outs[0], 'sheet.png')
    assert sheet.shape[0] >= 3 * 32 and sheet.shape[1] > 2 * 32
    for name in names:  # the same seed, the same files, byte for byte
        with open(os.path.join(outs[0], name), 'rb') as a, open(os.path.join(outs[1], name), 'rb') as b:
            assert a.read() == b.read(), name
    assert any(not np.array_equal(read(outs[0], n), read(outs[2], n)) for n in names)


def test_its_lr_is_not_a_bicubic_downscale(capsys, tmp_path):
    out = str(tmp_path / 'out')
    assert run_command(capsys, degrade.main, '-opt', option_file(tmp_path), '-n', '4', '-o', out).code == 0
    for k in range(4):
        gt, lq = read(out, f'{k}_gt.png'), read(out, f'{k}_lq.png').astype(np.float64)
        bicubic = np.clip(np.round(imresize(gt.astype(np.float64) / 255, 1 / 4) * 255), 0, 255)
        assert np.abs(lq - bicubic).mean() > 2.0, k  # levels of 255: blur, noise and JPEG, not a resize alone


def test_bicubic_mode_shows_the_bicubic_pairs(capsys, tmp_path):
    out = str(tmp_path / 'out')
    opt = option_file(tmp_path, degradation='bicubic')
    assert run_command(capsys, degrade.main, '-opt', opt, '-n', '2', '-o', out).code == 0
    gt, lq = read(out, '0_gt.png'), read(out, '0_lq.png')
    np.testing.assert_array_equal(lq, np.clip(np.round(imresize(gt.astype(np.float64) / 255, 1 / 4) * 255), 0, 255))


def test_rerun_replaces_its_own_folder_but_not_another(capsys, tmp_path):
    opt = option_file(tmp_path)
    out = tmp_path / 'out'
    assert run_command(capsys, degrade.main, '-opt', opt, '-n', '2', '-o', str(out)).code == 0
    assert run_command(capsys, degrade.main, '-opt', opt, '-n', '1', '-o', str(out)).code == 0
    assert sorted(os.listdir(out)) == ['0_gt.png', '0_lq.png', 'sheet.png']
    (out / 'notes.txt').write_text('mine')
    result = run_command(capsys, degrade.main, '-opt', opt, '-n', '1', '-o', str(out))
    assert result.code == 2 and 'holds other files (notes.txt)' in result.err
    assert (out / 'notes.txt').read_text() == 'mine'


@pytest.mark.parametrize('change, message', [
    ({'dataroot_gt': 'missing'}, 'dataroot_gt missing does not exist'),
    ({'type': 'DIV2KPairedDataset', 'dataroot_lq': 'x', 'crop_pad_size': None}, 'not GTOnlyDataset'),
])
def test_bad_input_is_one_line_and_writes_nothing(capsys, tmp_path, change, message):
    opt = option_file(tmp_path)
    data = yaml.safe_load(open(opt))
    data['datasets']['train'].update(change)
    data['datasets']['train'] = {k: v for k, v in data['datasets']['train'].items() if v is not None}
    with open(opt, 'w') as f:
        yaml.safe_dump(data, f)
    result = run_command(capsys, degrade.main, '-opt', opt, '-o', str(tmp_path / 'out'))
    assert result.code == 1
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: ') and message in lines[0], result.err
    assert not (tmp_path / 'out').exists()
