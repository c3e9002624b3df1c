"""The one evaluation path: its values equal basicsr's metrics on images made here, and validation (the test
command's loop) and the sweep, which both go through it, give the same value for every image."""
import cv2
import numpy as np
import pytest
import torch
from basicsr.metrics import calculate_psnr, calculate_ssim

from builders import model_opt
from conftest import tiny_generator
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


def test_an_image_function_is_scored_on_the_same_path_exactly():
    """Bicubic, the baseline the demo compares with, is a function on images: its output is what gets scored."""
    from esrgan_plugin.data.bicubic import matlab_bicubic

    rng = np.random.default_rng(4)
    lq, gt = textured(rng, 10, 12), textured(rng, 40, 48)
    seen = []
    bicubic = evaluation.image_upscaler(lambda img: seen.append(img) or matlab_bicubic(img, 4))
    (result,) = evaluation.evaluate_pairs(bicubic, [evaluation.image_pair('x', lq, gt)], METRICS)
    assert np.array_equal(seen[0], lq) and np.array_equal(result.sr, matlab_bicubic(lq, 4))
    assert result.values['psnr_y'] == pytest.approx(
        calculate_psnr(matlab_bicubic(lq, 4), gt, crop_border=4, test_y_channel=True), abs=1e-10)


def write_pairs(root, count: int = 3) -> tuple[str, str]:
    rng = np.random.default_rng(3)
    for kind in ('gt', 'lq'):
        (root / kind).mkdir(parents=True)
    for i in range(count):
        gt = textured(rng, 40, 48)
        cv2.imwrite(str(root / 'gt' / f'im{i}.png'), gt)
        cv2.imwrite(str(root / 'lq' / f'im{i}.png'), cv2.resize(gt, (12, 10), interpolation=cv2.INTER_AREA))
    return str(root / 'gt'), str(root / 'lq')


def test_validation_and_the_sweep_give_the_same_value_for_every_image(tmp_path):
    """Same network, same files: the test command's loop and the sweep cannot drift apart."""
    from basicsr.data import build_dataloader
    from basicsr.models import build_model

    from esrgan_plugin.inference import sweep

    gt_dir, lq_dir = write_pairs(tmp_path / 'data')
    net = tiny_generator(seed=5)
    torch.save({'params': net.state_dict()}, tmp_path / 'g.pth')
    eval_opt = {'scale': 4, 'val': {'metrics': METRICS}, 'datasets': {'test_1': {
        'name': 'tiny', 'type': 'PairedImageDataset', 'dataroot_gt': gt_dir, 'dataroot_lq': lq_dir,
        'io_backend': {'type': 'disk'}}}}

    opt = model_opt(tmp_path, 'ESRGANPSNRModel', pretrain_network_g=str(tmp_path / 'g.pth'),
                    results_root=str(tmp_path / 'results'))
    opt.update(is_train=False, val={'metrics': METRICS, 'pbar': False})
    opt.pop('train')
    model = build_model(opt)
    (dataset,) = sweep.test_datasets(eval_opt)
    loader = build_dataloader(dataset, {'phase': 'test', 'num_worker_per_gpu': 0}, num_gpu=0, dist=False)
    model.validation(loader, 0, None, save_img=False)
    validated = {image.name: image.metrics for image in model.validation_record.tested_sets[-1].images}

    swept = {r.name: r.values for r in sweep.evaluate_images(net, dataset, METRICS, torch.device('cpu'))}
    assert sorted(validated) == sorted(swept) == ['im0', 'im1', 'im2']
    for name in validated:
        assert validated[name] == swept[name], name
    means = sweep.evaluate_network(net, [dataset], METRICS, torch.device('cpu'))['tiny']
    assert means == model.metric_results
