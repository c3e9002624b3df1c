"""The one evaluation path: its values equal basicsr's metrics on images made here."""
import cv2
import numpy as np
import pytest
import torch
from basicsr.metrics import calculate_psnr, calculate_ssim

from esrgan_plugin.metrics import evaluation

METRICS = {'psnr_y': {'type': 'calculate_psnr', 'crop_border': 4, 'test_y_channel': True},
           'ssim_rgb': {'type': 'calculate_ssim', 'crop_border': 4}}


def textured(rng, h: int, w: int) -> np.ndarray:
    return cv2.GaussianBlur((rng.random((h, w, 3)) * 255).astype(np.uint8), (5, 5), 1.0)


def nearest_x4(lq: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.interpolate(lq, scale_factor=4, mode='nearest')


def test_values_equal_basicsrs_metrics_on_images_made_here():
    rng = np.random.default_rng(0)
    images = [(f'img{i}', textured(rng, 10, 12), textured(rng, 40, 48)) for i in range(3)]
    frozen = {k: dict(v) for k, v in METRICS.items()}
    results = list(evaluation.evaluate_pairs(nearest_x4, [evaluation.image_pair(*image) for image in images],
                                             METRICS))
    assert METRICS == frozen, 'the metric options must not be modified'
    assert [r.name for r in results] == ['img0', 'img1', 'img2']
    for result, (_, lq, gt) in zip(results, images):
        expected_sr = lq.repeat(4, axis=0).repeat(4, axis=1)  # nearest x4, by hand
        assert result.sr.dtype == np.uint8 and np.array_equal(result.sr, expected_sr)
        assert np.array_equal(result.gt, gt)  # the ground truth survives the tensor round trip exactly
        assert result.values['psnr_y'] == pytest.approx(
            calculate_psnr(expected_sr, gt, crop_border=4, test_y_channel=True), abs=1e-10)
        assert result.values['ssim_rgb'] == pytest.approx(calculate_ssim(expected_sr, gt, crop_border=4), abs=1e-10)
    means = evaluation.mean_values([r.values for r in results], METRICS)
    assert means == {m: pytest.approx(np.mean([r.values[m] for r in results]), abs=1e-12) for m in METRICS}


def test_dataset_items_and_dataloader_batches_give_the_same_result():
    rng = np.random.default_rng(1)
    pair = evaluation.image_pair('x', textured(rng, 10, 12), textured(rng, 40, 48))
    item = {'lq': pair['lq'], 'gt': pair['gt'], 'lq_path': '/data/lq/x.png'}  # as a basicsr dataset gives it
    batch = {'lq': pair['lq'][None], 'gt': pair['gt'][None], 'lq_path': ['/data/lq/x.png']}  # as its dataloader
    (a,), (b,) = (list(evaluation.evaluate_pairs(nearest_x4, [p], METRICS)) for p in (item, batch))
    assert a.name == b.name == 'x' and a.values == b.values and np.array_equal(a.sr, b.sr)
    assert b.item is batch  # callers read the paths of the pair they gave


def test_without_ground_truth_no_reference_metrics_only():
    rng = np.random.default_rng(2)
    (result,) = evaluation.evaluate_pairs(nearest_x4, [evaluation.image_pair('x', textured(rng, 10, 12))], {})
    assert result.gt is None and result.values == {} and result.sr.shape == (40, 48, 3)


def test_color_shift_is_per_channel_in_levels():
    gt = np.full((8, 8, 3), 100, np.uint8)
    sr = gt + np.array([1, 0, 0], np.uint8)
    sr[0, 0, 2] = 100 - 64  # one pixel of the red channel: its mean drops by one level
    assert evaluation.color_shift(sr, gt) == pytest.approx([1.0, 0.0, -1.0])
    assert evaluation.max_color_shift(sr, gt) == pytest.approx(1.0)
