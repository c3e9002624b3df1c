"""The test command on Set14 with a tiny seeded generator: logged metrics and SR images checked independently."""
import glob
import os
import re

import cv2
import numpy as np
import pytest
import torch
import yaml

from conftest import REPO_ROOT, TINY_ARCH, run_command_in, tiny_generator
from esrgan_plugin import test as evaluation_command

OPTIONS = os.path.join(REPO_ROOT, 'options')
BORDER = 4


def y_channel(bgr_uint8: np.ndarray) -> np.ndarray:
    """MATLAB rgb2ycbcr luma (BT.601, studio range) on [0, 255] values, not rounded."""
    b, g, r = (bgr_uint8[..., i].astype(np.float64) for i in range(3))
    return 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    a = a[BORDER:-BORDER, BORDER:-BORDER].astype(np.float64)
    b = b[BORDER:-BORDER, BORDER:-BORDER].astype(np.float64)
    return float(10 * np.log10(255.0**2 / np.mean((a - b)**2)))


def parse_log(path: str) -> tuple[dict, dict]:
    """Per-image lines ('Set14 baboon: psnr_y 1.2345, ...') and the mean block ('# psnr_y: 1.2345')."""
    text = open(path, encoding='utf-8').read()
    per_image = {}
    for name, values in re.findall(r'INFO: Set14 (\w+): (.+)', text):
        per_image[name] = {k: float(v) for k, v in re.findall(r'(\w+) (-?[\d.]+)', values)}
    means = {k: float(v) for k, v in re.findall(r'# (\w+): (-?[\d.]+)', text)}
    return per_image, means


@pytest.mark.parametrize('option_file', ['test_set14.yml', 'test_set5.yml'])
def test_option_files_are_basicsr_layout(option_file):
    with open(os.path.join(OPTIONS, option_file), encoding='utf-8') as f:
        opt = yaml.safe_load(f)
    data = opt['datasets']['test_1']
    assert opt['model_type'] == 'ESRGANPSNRModel' and opt['network_g'] == {'type': 'auto'}  # read off the file
    assert data['type'] == 'PairedImageDataset' and data['io_backend'] == {'type': 'disk'}
    assert data['dataroot_gt'].startswith('datasets/') and data['dataroot_gt'].endswith('/GTmod12')
    assert data['dataroot_lq'].startswith('datasets/') and data['dataroot_lq'].endswith('/LRbicx4')
    metrics = opt['val']['metrics']
    assert list(metrics) == ['psnr_y', 'ssim_y', 'psnr_rgb', 'ssim_rgb', 'niqe', 'color_shift']
    assert all(m['crop_border'] == 4 for m in metrics.values())
    assert [metrics[m]['test_y_channel'] for m in list(metrics)[:4]] == [True, True, False, False]
    assert metrics['niqe'] == {'type': 'calculate_niqe', 'crop_border': 4, 'convert_to': 'y'}
    assert metrics['color_shift'] == {'type': 'calculate_color_shift', 'crop_border': 4}


@pytest.fixture(scope='module')
def set14_run(tmp_path_factory):
    shared = os.path.join(os.path.dirname(REPO_ROOT), 'shared', 'data', 'Set14')
    if not os.path.isdir(shared):
        pytest.skip('../shared/data/Set14 is not present')
    tmp_path = tmp_path_factory.mktemp('set14')
    net = tiny_generator(scale=4, seed=3)
    # Wrapped the way basicsr saves generators, so the basicsr layout goes through the loader.
    torch.save({'params': net.state_dict()}, tmp_path / 'tiny.pth')
    with open(os.path.join(OPTIONS, 'test_set14.yml'), encoding='utf-8') as f:
        opt = yaml.safe_load(f)
    opt['name'] = 'tiny_set14'
    opt['datasets']['test_1']['dataroot_gt'] = os.path.join(shared, 'GTmod12')
    opt['datasets']['test_1']['dataroot_lq'] = os.path.join(shared, 'LRbicx4')
    opt['network_g'] = {'type': 'ESRGANRRDBNet', **TINY_ARCH}
    opt['path']['pretrain_network_g'] = str(tmp_path / 'tiny.pth')
    opt_path = tmp_path / 'test_tiny.yml'
    opt_path.write_text(yaml.safe_dump(opt))
    result = run_command_in(tmp_path, evaluation_command.main, '-opt', opt_path)
    assert result.code == 0, result.err[-3000:]
    results = tmp_path / 'results' / 'tiny_set14'
    logs = glob.glob(str(results / 'test_tiny_set14_*.log'))
    assert len(logs) == 1
    return dict(shared=shared, net=net, results=results, log=logs[0])


def test_logged_metrics_equal_an_independent_computation(set14_run):
    from basicsr.metrics import calculate_ssim  # the reference for SSIM (MATLAB-style Gaussian window)

    per_image, means = parse_log(set14_run['log'])
    names = sorted(os.path.splitext(n)[0] for n in os.listdir(os.path.join(set14_run['shared'], 'GTmod12')))
    assert sorted(per_image) == names and len(names) == 14
    mine = {}
    for name in names:
        sr = cv2.imread(str(set14_run['results'] / 'visualization' / 'Set14' / f'{name}_tiny_set14.png'))
        gt = cv2.imread(os.path.join(set14_run['shared'], 'GTmod12', f'{name}.png'))
        assert sr.shape == gt.shape
        mine[name] = {
            'psnr_y': psnr(y_channel(sr), y_channel(gt)),
            'psnr_rgb': psnr(sr, gt),
            'ssim_y': calculate_ssim(sr, gt, crop_border=BORDER, test_y_channel=True),
            'ssim_rgb': calculate_ssim(sr, gt, crop_border=BORDER, test_y_channel=False),
            # the largest shift of a channel's mean, in levels, within the border
            'color_shift': float(np.abs(sr[BORDER:-BORDER, BORDER:-BORDER].reshape(-1, 3).mean(0)
                                        - gt[BORDER:-BORDER, BORDER:-BORDER].reshape(-1, 3).mean(0)).max()),
        }
        for metric, value in mine[name].items():
            assert per_image[name][metric] == pytest.approx(value, abs=1e-4), (name, metric)
    for metric in ('psnr_y', 'ssim_y', 'psnr_rgb', 'ssim_rgb', 'color_shift'):
        assert means[metric] == pytest.approx(np.mean([m[metric] for m in mine.values()]), abs=1e-4), metric


def test_sr_images_equal_basicsrs_rrdbnet_on_the_lr_images(set14_run):
    from basicsr.archs.rrdbnet_arch import RRDBNet

    reference = RRDBNet(num_in_ch=3, num_out_ch=3, scale=4, **TINY_ARCH).eval()
    reference.load_state_dict(set14_run['net'].state_dict())
    for name in ('baboon', 'comic', 'bridge'):
        lr = cv2.imread(os.path.join(set14_run['shared'], 'LRbicx4', f'{name}.png'))[..., ::-1]
        x = torch.from_numpy(np.ascontiguousarray(lr).transpose(2, 0, 1)).float().unsqueeze(0) / 255
        with torch.no_grad():
            out = reference(x)[0].clamp(0, 1).mul(255).round().byte().numpy().transpose(1, 2, 0)[..., ::-1]
        sr = cv2.imread(str(set14_run['results'] / 'visualization' / 'Set14' / f'{name}_tiny_set14.png'))
        assert np.array_equal(sr, out), name
