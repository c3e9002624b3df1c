"""Validation and the test report (metrics.validation): the log lines, TensorBoard scalars, SR file names and
results page a model's validation produces, and best-metric tracking in each metric's direction."""
import os

import cv2
import numpy as np
import pytest
import torch
from basicsr.data import build_dataloader, build_dataset
from basicsr.metrics import calculate_psnr

from conftest import basicsr_log_messages
from esrgan_plugin.metrics import validation

PSNR = {'psnr': {'type': 'calculate_psnr', 'crop_border': 4, 'test_y_channel': True}}
DIRECTED = {**PSNR, 'niqe': {'type': 'calculate_niqe', 'crop_border': 4},
            'lpips': {'type': 'calculate_lpips', 'net': 'alex'},
            'niqe_as_higher': {'type': 'calculate_niqe', 'crop_border': 4, 'better': 'higher'}}


def test_best_values_follow_each_metrics_direction():
    record = validation.ValidationRecord()
    record.start_tracking('Set14', DIRECTED)
    for it, value in ((1, 5.0), (2, 4.0), (3, 6.0), (4, 4.0)):
        for name in DIRECTED:
            record.update_best('Set14', name, value, it)
    best = record.best['Set14']
    assert (best['niqe']['val'], best['niqe']['iter']) == (4.0, 4)  # a tie moves the best on, as in basicsr
    assert (best['lpips']['val'], best['lpips']['iter']) == (4.0, 4)
    assert (best['psnr']['val'], best['psnr']['iter']) == (6.0, 3)
    assert (best['niqe_as_higher']['val'], best['niqe_as_higher']['iter']) == (6.0, 3)
    record.start_tracking('Set14', DIRECTED)  # a dataset seen again keeps its best values
    assert record.best['Set14']['psnr']['val'] == 6.0


def nearest_x4(lq: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.interpolate(lq, scale_factor=4, mode='nearest')


def pairs(root, name='tiny'):
    """A basicsr loader over two LR/GT pairs written here, and the images as written."""
    rng = np.random.default_rng(0)
    images = {}
    for kind in ('gt', 'lq'):
        os.makedirs(root / kind, exist_ok=True)
    for stem in ('a', 'b'):
        gt = cv2.GaussianBlur((rng.random((40, 48, 3)) * 255).astype(np.uint8), (5, 5), 1.0)
        lq = cv2.resize(gt, (12, 10), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(root / 'gt' / f'{stem}.png'), gt)
        cv2.imwrite(str(root / 'lq' / f'{stem}.png'), lq)
        images[stem] = (lq, gt)
    dataset = build_dataset({'name': name, 'type': 'PairedImageDataset', 'dataroot_gt': str(root / 'gt'),
                             'dataroot_lq': str(root / 'lq'), 'io_backend': {'type': 'disk'}, 'phase': 'val',
                             'scale': 4})
    return build_dataloader(dataset, {'phase': 'val', 'num_worker_per_gpu': 0}, num_gpu=0, dist=False), images


class Scalars:
    def __init__(self):
        self.added = []

    def add_scalar(self, tag, value, step):
        self.added.append((tag, value, step))


def test_training_validation_logs_saves_and_tracks_the_best(tmp_path):
    loader, images = pairs(tmp_path / 'data')
    opt = {'is_train': True, 'scale': 4, 'name': 'run', 'val': {'metrics': PSNR},
           'path': {'visualization': str(tmp_path / 'vis')}}
    expected = {stem: calculate_psnr(lq.repeat(4, axis=0).repeat(4, axis=1), gt, crop_border=4, test_y_channel=True)
                for stem, (lq, gt) in images.items()}
    mean = np.mean(list(expected.values()))
    record, tb = validation.ValidationRecord(), Scalars()
    with basicsr_log_messages() as lines:
        means = validation.validate(nearest_x4, loader, opt, 10, tb, True, record)
    assert means == {'psnr': pytest.approx(mean, abs=1e-10)}
    assert f'tiny a: psnr {expected["a"]:.4f}' in '\n'.join(lines)
    assert lines[-1] == (f'Validation tiny\n\t # psnr: {mean:.4f} (higher is better)\tBest: {mean:.4f} @ 10 iter\n')
    assert [(tag, step) for tag, _, step in tb.added] == [('metrics/tiny/psnr', 10)]
    for stem, (lq, _) in images.items():
        saved = cv2.imread(str(tmp_path / 'vis' / stem / f'{stem}_10.png'))
        assert np.array_equal(saved, lq.repeat(4, axis=0).repeat(4, axis=1))
    worse = validation.validate(lambda lq: nearest_x4(lq) * 0.5, loader, opt, 20, None, False, record)
    assert worse['psnr'] < mean and record.best['tiny']['psnr']['iter'] == 10
    assert sorted(os.listdir(tmp_path / 'vis' / 'a')) == ['a_10.png']  # save_img off: nothing written


def test_testing_writes_the_results_page_and_the_table_of_every_set(tmp_path):
    first, _ = pairs(tmp_path / 'one', name='one')
    second, _ = pairs(tmp_path / 'two', name='two')
    opt = {'is_train': False, 'scale': 4, 'name': 'exp', 'val': {'metrics': PSNR, 'pbar': False, 'suffix': 'x4'},
           'path': {'visualization': str(tmp_path / 'results' / 'vis'), 'results_root': str(tmp_path / 'results')}}
    record = validation.ValidationRecord()
    with basicsr_log_messages() as lines:
        for loader in (first, second, first):
            validation.validate(nearest_x4, loader, opt, 'exp', None, True, record)
    assert [t.name for t in record.tested_sets] == ['two', 'one']  # a set tested again replaces its results
    assert os.path.isfile(tmp_path / 'results' / 'index.html')
    assert f'Results page: {tmp_path / "results" / "index.html"}' in lines
    for name in ('one', 'two'):
        assert sorted(os.listdir(tmp_path / 'results' / 'vis' / name)) == ['a_x4.png', 'b_x4.png']
    table = [line for line in lines if line.startswith('Mean of each metric:')][-1]
    assert 'one' in table and 'two' in table
    opt['val']['suffix'] = None
    validation.validate(nearest_x4, first, opt, 'exp', None, False, record)
    assert validation.sr_image_path(opt, 'one', 'a', 'exp') == str(tmp_path / 'results' / 'vis' / 'one' / 'a_exp.png')
