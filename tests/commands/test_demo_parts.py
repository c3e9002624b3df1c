"""The demo's parts: the progress line and a failed stage (its figure and direction ratio are tested in
tests/metrics/test_comparison.py), the real-world variant's options, its test set and the scoring of both test
sets. The demo itself, shortened, runs end to end in tests/integration/test_demo.py."""
import os

import cv2
import numpy as np
import pytest
import yaml

from conftest import run_command, subprocess_env
from esrgan_plugin.demo import ITER_LINE, progress_losses, train
from esrgan_plugin.errors import UserFacingError


def test_progress_losses_read_from_basicsrs_log_lines():
    psnr = ('2026-12-04 20:09:42,416 INFO: [demo_..][epoch:  0, iter:   1,200, lr:(1.000e-03,)] [eta: 0:17:54, '
            'time (data): 1.044 (0.004)] l_pix: 3.0760e-02 ')
    assert ITER_LINE.search(psnr).group(1) == '1,200' and progress_losses(psnr) == {'l_pix': '0.0308'}
    gan = ('[demo_..][epoch:  0, iter:     150, lr:(1.000e-04,)] [eta: 0:00:00, time (data): 0.684 (0.003)] '
           'l_g_pix: 4.0e-04 l_g_percep: 4.0e-02 l_g_gan: 3.0e-02 l_d_real: 1.0e-03 l_d_fake: 2.0e-03 '
           'out_d_real: 1.4738e+00 out_d_fake: -5.0559e+00 ')
    assert progress_losses(gan) == {'l_g': '0.0704', 'l_d': '0.003'}


def test_a_failed_stage_shows_its_last_lines_and_one_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv('PYTHONPATH', subprocess_env()['PYTHONPATH'])  # the stage runs this checkout
    bad = {'name': 'broken_stage', 'model_type': 'ESRGANPSNRModel', 'scale': 4, 'datasets': {},
           'train': {'total_iter': 10}}
    with pytest.raises(UserFacingError, match=r'^training stage broken_stage failed \(exit code 2\)$'):
        train(bad, str(tmp_path))
    err = capsys.readouterr().err
    assert '--- last ' in err and 'nothing was run or written' in err  # the train command's own last line


# ----------------------------------------------------------------------------- the real-world variant
def demo_stage_options(degradation: str) -> dict:
    from types import SimpleNamespace

    from esrgan_plugin.demo import build_parser, psnr_options

    args = build_parser().parse_args(['--degradation', degradation])
    data = SimpleNamespace(dataroot_gt='data/train/gt.lmdb', dataroot_lq='data/train/lq_x4.lmdb')
    test_data = SimpleNamespace(dataroot_gt='data/test/gt', dataroot_lq='data/test/lq_x4')
    return psnr_options(args, data, test_data)


def test_the_realworld_variant_degrades_with_the_shipped_files_settings_at_the_demos_sizes():
    from conftest import REPO_ROOT
    from esrgan_plugin.config.checks import check_options

    with open(os.path.join(REPO_ROOT, 'options', 'train_RRDBNet_PSNR_x4_realworld.yml'), encoding='utf-8') as f:
        shipped = yaml.safe_load(f)['datasets']['train']
    bicubic, realworld = (demo_stage_options(d)['datasets']['train'] for d in ('bicubic', 'realworld'))
    assert bicubic['type'] == 'DIV2KPairedDataset' and bicubic['dataroot_lq'] == 'data/train/lq_x4.lmdb'
    assert realworld['type'] == 'GTOnlyDataset' and 'dataroot_lq' not in realworld
    # the degradations as the shipped file has them, a few written out here ...
    assert realworld['degradation'] == 'realworld' and realworld['gt_usm'] is True
    assert realworld['kernel_prob'] == [0.45, 0.25, 0.12, 0.03, 0.12, 0.03] and realworld['jpeg_range2'] == [30, 95]
    for key in ('kernel_list', 'blur_sigma', 'resize_prob', 'noise_range', 'second_blur_prob', 'resize_range2',
                'poisson_scale_range2', 'final_sinc_prob', 'blur_kernel_size2'):  # ... and the rest as read
        assert realworld[key] == shipped[key], key
    # the demo's sizes, data, augmentation and batch: the whole 96x96 sub-image degraded, its 64x64 crop
    assert (realworld['crop_pad_size'], realworld['gt_size'], realworld['batch_size_per_gpu']) == (96, 64, 16)
    assert realworld['queue_size'] == 15 * 16 and shipped['queue_size'] == 15 * shipped['batch_size_per_gpu']
    assert {k: v for k, v in realworld.items() if k in bicubic and k != 'type'} == {k: v for k, v in bicubic.items()
                                                                     if k not in ('type', 'dataroot_lq')}
    opt = demo_stage_options('realworld')
    assert check_options(opt, 'demo_psnr.yml', is_train=True, check_files=False).errors == []


def test_a_degradation_outside_the_choices_is_refused_by_name(capsys):
    from esrgan_plugin import demo

    result = run_command(capsys, demo.main, '--degradation', 'jpeg')
    assert result.code == 2 and "invalid choice: 'jpeg' (choose from 'realworld', 'bicubic')" in result.err


def test_a_reference_that_does_not_load_stops_the_demo_before_anything_is_written(tmp_path, capsys):
    from esrgan_plugin import demo

    not_a_checkpoint = tmp_path / 'weights.pth'
    not_a_checkpoint.write_text('not a checkpoint')
    for reference in (tmp_path / 'missing.pth', not_a_checkpoint):
        result = run_command(capsys, demo.main, '--out', tmp_path / 'demo', '--reference', reference)
        assert result.code == 1, result
        lines = result.err.strip().splitlines()
        assert len(lines) == 1 and str(reference) in lines[0], result.err
        assert not (tmp_path / 'demo').exists()


def textured_photo(seed: int, size: tuple) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.resize(rng.integers(0, 256, (size[0] // 8, size[1] // 8, 3), dtype=np.uint8), size[::-1],
                      interpolation=cv2.INTER_CUBIC)


def test_the_demos_realworld_test_set_is_what_prepare_data_writes(tmp_path, capsys):
    from esrgan_plugin import prepare_data
    from esrgan_plugin.demo_realworld import realworld_test_set

    photos = tmp_path / 'photos'
    photos.mkdir()
    for seed, name in enumerate(('coffee', 'chelsea')):
        cv2.imwrite(str(photos / f'{name}.png'), textured_photo(seed, (96, 120)))
    lq, gt = realworld_test_set(str(photos), str(tmp_path / 'demo'), 4)
    result = run_command(capsys, prepare_data.main, photos, tmp_path / 'command', '--realworld-test')
    assert result.code == 0, result.err
    for name in ('coffee', 'chelsea'):
        for ours, command in ((lq, tmp_path / 'command' / 'lq_x4'), (gt, tmp_path / 'command' / 'gt')):
            expected = cv2.imread(str(command / f'{name}.png'))
            assert np.array_equal(cv2.imread(os.path.join(ours, f'{name}.png')), expected)
    assert cv2.imread(os.path.join(lq, 'coffee.png')).shape == (24, 24, 3)  # the centred 96x96 square, x4 down


def test_lpips_is_scored_only_where_its_weights_are(tmp_path, monkeypatch):
    from esrgan_plugin.demo_realworld import score_names

    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    metrics, note = score_names()
    assert set(metrics) == {'psnr', 'niqe'} and 'LPIPS left out' in note and 'alexnet-owt-7be5be79.pth' in note
    (tmp_path / 'hub' / 'checkpoints').mkdir(parents=True)
    (tmp_path / 'hub' / 'checkpoints' / 'alexnet-owt-7be5be79.pth').write_bytes(b'')
    metrics, note = score_names()
    assert set(metrics) == {'psnr', 'niqe', 'lpips'} and note is None


def test_both_test_sets_are_scored_for_every_method_and_their_images_written(tmp_path):
    from basicsr.metrics import calculate_psnr

    from esrgan_plugin.data.bicubic import matlab_bicubic
    from esrgan_plugin.demo_realworld import SCORES, score_sets, score_table
    from esrgan_plugin.metrics.evaluation import image_upscaler

    sets = {}
    for index, label in enumerate(('bicubic LR', 'real-world LR')):
        for kind in ('gt', 'lq'):
            (tmp_path / label / kind).mkdir(parents=True)
        for seed in (0, 1):
            gt = textured_photo(10 * index + seed, (48, 64))
            cv2.imwrite(str(tmp_path / label / 'gt' / f'p{seed}.png'), gt)
            cv2.imwrite(str(tmp_path / label / 'lq' / f'p{seed}.png'), cv2.resize(gt, (16, 12)))
        sets[label] = (str(tmp_path / label / 'lq'), str(tmp_path / label / 'gt'))
    upscalers = {'bicubic': image_upscaler(lambda lr: matlab_bicubic(lr, 4)),
                 'nearest (x4)': image_upscaler(lambda lr: np.repeat(np.repeat(lr, 4, axis=0), 4, axis=1))}
    scores = score_sets(upscalers, sets, {'psnr': SCORES['psnr']}, str(tmp_path / 'out'))
    for label, folder in (('bicubic LR', 'bicubic_lr'), ('real-world LR', 'real-world_lr')):
        assert os.path.isfile(tmp_path / 'out' / folder / 'comparison.png')
        for method, method_folder in (('bicubic', 'bicubic'), ('nearest (x4)', 'nearest_x4')):
            psnrs = [calculate_psnr(cv2.imread(str(tmp_path / 'out' / folder / method_folder / f'p{i}.png')),
                                    cv2.imread(str(tmp_path / label / 'gt' / f'p{i}.png')), 4, test_y_channel=True)
                     for i in (0, 1)]
            assert scores[label][method]['psnr'] == pytest.approx(np.mean(psnrs), abs=1e-9)
    lines = score_table(scores, ('p0', 'p1'))
    assert lines[0].split() == ['means', 'over', 'p0,', 'p1', 'bicubic', 'LR', 'real-world', 'LR', '(prepare_data',
                                '--realworld-test', '--seed', '0)']
    assert lines[1].split() == ['method', 'PSNR-Y', 'PSNR-Y']
    assert lines[2].split() == ['bicubic'] + [f'{scores[s]["bicubic"]["psnr"]:.2f}' for s in sets]
