"""The real-world degradation settings are checked with the other options: one line per problem, all at once."""
import os

import pytest
import yaml

from conftest import REPO_ROOT, run_command
from esrgan_plugin import train
from esrgan_plugin.config.checks import check_options

REALWORLD_FILE = os.path.join(REPO_ROOT, 'options', 'train_RRDBNet_PSNR_x4_realworld.yml')


def realworld_options():
    with open(REALWORLD_FILE) as f:
        return yaml.safe_load(f)


def errors(opt):
    return check_options(opt, 'o.yml', True, check_files=False).errors


@pytest.fixture
def no_cuda(monkeypatch):
    import torch
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 0)


def test_the_shipped_settings_pass(no_cuda):
    assert errors(realworld_options()) == []


@pytest.mark.parametrize('key, value, expected', [
    ('sinc_prob', 1.5, 'sinc_prob: 1.5 is not a probability; use a value in [0, 1]'),
    ('final_sinc_prob', -0.1, 'final_sinc_prob: -0.1 is not a probability'),
    ('kernel_prob', [0.5, 0.25, 0.12, 0.03, 0.12, 0.03], 'kernel_prob: [0.5, 0.25, 0.12, 0.03, 0.12, 0.03] sums to '
     '1.05, not 1'),
    ('kernel_prob2', [1.0], 'kernel_prob2: has 1 entries but kernel_list2 names 6 kernels'),
    ('resize_prob', [0.2, 0.7, 0.2], 'resize_prob: [0.2, 0.7, 0.2] sums to 1.1, not 1'),
    ('resize_prob2', [1.5, -0.5, 0], 'resize_prob2: [1.5, -0.5, 0] holds a value outside [0, 1]'),
    ('blur_sigma', [3, 0.2], 'blur_sigma: [3, 0.2] is not ordered; write [low, high], e.g. [0.2, 3]'),
    ('noise_range2', [1, 5, 9], 'noise_range2: List should have at most 2 items'),  # the schema's line
    ('blur_kernel_size', 20, 'blur_kernel_size: 20 is not an odd kernel size'),
    ('jpeg_range', [0, 95], 'jpeg_range: [0, 95] holds a JPEG quality outside [1, 100]'),
    ('jpeg_range2', [30, 101], 'jpeg_range2: [30, 101] holds a JPEG quality outside [1, 100]'),
    ('queue_size', 100, 'queue_size: 100 is not a multiple of batch_size_per_gpu 12; the pool swaps whole batches: '
     'set queue_size to e.g. 96, or 0 for no pool'),
    ('gt_size', 250, 'gt_size: 250 is not a multiple of scale 4; use e.g. 248'),
    ('crop_pad_size', 200, 'crop_pad_size: 200 is too small: the degradations need a region that holds the gt_size '
     "crop (256) and stays wider than the blur kernels' reach (10 px) after resizing by 0.15 and at the LR size; "
     'use at least 256'),
    # reflection padding by the kernels' half-width (10) needs 11 px after a resize by 0.02: 550 px
    ('resize_range', [0.02, 1.5], 'crop_pad_size: 400 is too small: the degradations need a region that holds the '
     "gt_size crop (256) and stays wider than the blur kernels' reach (10 px) after resizing by 0.02 and at the LR "
     'size; use at least 550'),
])
def test_each_bad_setting_is_one_line(no_cuda, key, value, expected):
    opt = realworld_options()
    opt['datasets']['train'][key] = value
    lines = errors(opt)
    assert len(lines) == 1 and lines[0].startswith(f'o.yml: datasets.train.{expected}'), lines


def test_every_problem_is_reported_together_before_anything_is_written(tmp_path, monkeypatch, capsys):
    opt = realworld_options()
    opt['datasets']['train'].update(sinc_prob=2, jpeg_range=[95, 30], blur_kernel_size2=8)
    path = tmp_path / 'o.yml'
    path.write_text(yaml.safe_dump(opt))
    monkeypatch.chdir(tmp_path)
    run = run_command(capsys, train.main, '-opt', 'o.yml')
    assert run.code == 2
    for key in ('sinc_prob', 'jpeg_range', 'blur_kernel_size2'):
        assert sum(f'o.yml: datasets.train.{key}: ' in line for line in run.err.splitlines()) == 1, run.err
    assert sorted(os.listdir(tmp_path)) == ['o.yml']


def test_a_validation_set_cannot_degrade_on_the_fly_and_a_preview_without_it_is_a_warning(no_cuda):
    opt = realworld_options()
    opt['datasets']['val'] = dict(opt['datasets']['train'], name='v')
    assert any(line.startswith('o.yml: datasets.val.degradation: realworld makes LR while training only')
               for line in errors(opt))
    opt = realworld_options()
    opt['datasets']['train']['degradation'] = 'bicubic'
    opt['train']['degradation_preview'] = 2
    report = check_options(opt, 'o.yml', True, check_files=False)
    assert report.errors == []
    assert report.warnings == ['o.yml: train.degradation_preview: has an effect only when datasets.train is a '
                               'GTOnlyDataset with degradation realworld; remove it']
