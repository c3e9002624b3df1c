"""LPIPS: equal to the lpips package on the same (random) weights, local files only, one-line errors when missing."""
import os

import cv2
import numpy as np
import pytest
import torch
import yaml

from conftest import REPO_ROOT, run_command
from esrgan_plugin import test as test_command
from esrgan_plugin.metrics import lpips_metric
from eval_fixtures import make_test_set, save_alexnet_trunk


def image_pair(seed: int, shape=(72, 88)) -> tuple[np.ndarray, np.ndarray]:
    """A smooth random uint8 BGR image and a blurred, noisy copy of it (a not-trivial distance)."""
    rng = np.random.default_rng(seed)
    img = cv2.resize(rng.integers(0, 256, (shape[0] // 4, shape[1] // 4, 3), dtype=np.uint8), shape[::-1],
                     interpolation=cv2.INTER_CUBIC)
    other = cv2.GaussianBlur(img, (5, 5), 1.2).astype(np.int16) + rng.integers(-12, 13, img.shape)
    return img, np.clip(other, 0, 255).astype(np.uint8)


def reference_value(reference, img: np.ndarray, img2: np.ndarray) -> float:
    import lpips
    rgb = [lpips.im2tensor(np.ascontiguousarray(x[..., ::-1])) for x in (img, img2)]
    with torch.no_grad():
        return float(reference(*rgb))


def test_registered_in_basicsr():
    from basicsr.utils.registry import METRIC_REGISTRY
    assert METRIC_REGISTRY.get('calculate_lpips') is lpips_metric.calculate_lpips


def test_alexnet_from_torchvision_cache_equals_lpips_package(tmp_path, monkeypatch):
    lpips = pytest.importorskip('lpips')
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    trunk = save_alexnet_trunk(tmp_path, seed=1)
    reference = lpips.LPIPS(net='alex', pnet_rand=True, verbose=False).eval()
    slices = [reference.net.slice1, reference.net.slice2, reference.net.slice3, reference.net.slice4,
              reference.net.slice5]
    for layers in slices:  # the same random trunk in the reference
        for index, layer in layers.named_children():
            layer.load_state_dict({k: trunk[f'features.{index}.{k}'] for k in layer.state_dict()})
    lpips_metric.cached_model.cache_clear()
    for seed in range(3):
        img, img2 = image_pair(seed)
        got = lpips_metric.calculate_lpips(img, img2, device='cpu')
        assert got == pytest.approx(reference_value(reference, img, img2), abs=1e-5)
        assert got > 1e-3  # not a trivial comparison
    assert lpips_metric.calculate_lpips(img, img, device='cpu') == pytest.approx(0, abs=1e-7)
    cropped = lpips_metric.calculate_lpips(img, img2, crop_border=4, device='cpu')
    assert cropped == pytest.approx(reference_value(reference, img[4:-4, 4:-4], img2[4:-4, 4:-4]), abs=1e-5)


def test_vgg_from_an_explicit_path_equals_lpips_package(tmp_path):
    lpips = pytest.importorskip('lpips')
    torch.manual_seed(2)
    reference = lpips.LPIPS(net='vgg', pnet_rand=True, verbose=False).eval()
    trunk = {}
    for layers in reference.net.children():
        for index, layer in layers.named_children():
            trunk.update({f'features.{index}.{k}': v for k, v in layer.state_dict().items()})
    torch.save(trunk, tmp_path / 'my_vgg.pth')
    img, img2 = image_pair(5, shape=(48, 56))
    got = lpips_metric.calculate_lpips(img, img2, net='vgg', backbone_weights=str(tmp_path / 'my_vgg.pth'),
                                       device='cpu')
    assert got == pytest.approx(reference_value(reference, img, img2), abs=1e-5) and got > 1e-3


def test_a_backbone_file_without_the_tapped_layers_is_refused(tmp_path):
    torch.save({'features.0.weight': torch.zeros(64, 3, 11, 11), 'features.0.bias': torch.zeros(64)},
               tmp_path / 'alex.pth')
    with pytest.raises(lpips_metric.LPIPSWeightsMissing) as refused:
        lpips_metric.LPIPS('alex', str(tmp_path / 'alex.pth'), str(tmp_path / 'unread.pth'))
    assert str(refused.value) == (f"{tmp_path / 'alex.pth'} is not torchvision's AlexNet file: it lacks "
                                  'features.3.weight; download '
                                  'https://download.pytorch.org/models/alexnet-owt-7be5be79.pth again.')


def test_missing_backbone_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'empty'))
    expected = str(tmp_path / 'empty' / 'hub' / 'checkpoints' / 'alexnet-owt-7be5be79.pth')
    with pytest.raises(lpips_metric.LPIPSWeightsMissing, match='AlexNet weights for the LPIPS metric are not at '
                       + expected.replace('\\', '\\\\')):
        lpips_metric.resolve_weights('alex')
    with pytest.raises(lpips_metric.LPIPSWeightsMissing, match='VGG16 weights .* not at /nowhere/vgg.pth'):
        lpips_metric.resolve_weights('vgg', backbone_weights='/nowhere/vgg.pth')
    (tmp_path / 'alex.pth').write_bytes(b'')
    with pytest.raises(lpips_metric.LPIPSWeightsMissing, match='linear-layer weights for alex are not at /nowhere'):
        lpips_metric.resolve_weights('alex', str(tmp_path / 'alex.pth'), lpips_weights='/nowhere/alex.pth')


def test_the_test_command_stops_before_any_folder_when_lpips_weights_are_missing(tmp_path, monkeypatch, capsys):
    gt_dir, lq_dir = make_test_set(tmp_path / 'data')
    torch.save({'params': {}}, tmp_path / 'net.pth')
    with open(os.path.join(REPO_ROOT, 'options', 'test_set14.yml'), encoding='utf-8') as f:
        opt = yaml.safe_load(f)
    opt['datasets']['test_1'].update(dataroot_gt=gt_dir, dataroot_lq=lq_dir)
    opt['path']['pretrain_network_g'] = str(tmp_path / 'net.pth')
    opt['val']['metrics']['lpips'] = {'type': 'calculate_lpips', 'net': 'alex', 'crop_border': 4}
    (tmp_path / 'opt.yml').write_text(yaml.safe_dump(opt))
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'no_torch_home'))
    run = tmp_path / 'run'
    run.mkdir()
    monkeypatch.chdir(run)
    result = run_command(capsys, test_command.main, '-opt', tmp_path / 'opt.yml')
    assert result.code == 1
    lines = result.err.strip().splitlines()
    assert lines[-1].startswith('error: the AlexNet weights for the LPIPS metric are not at '), result.err
    assert 'alexnet-owt-7be5be79.pth' in lines[-1] and 'Traceback' not in result.err
    assert os.listdir(run) == []  # no results/ folder, no log
