"""Network interpolation: endpoints exact, midpoint the mean, incompatible pairs refused, any layouts."""
import os

import pytest
import torch

from conftest import run_command, tiny_generator
from esrgan_plugin import interpolate as interp
from esrgan_plugin.inference import interpolation
from esrgan_plugin.archs.checkpoint import CheckpointError, load_generator
from layouts import in_layout


@pytest.fixture
def pair(tmp_path):
    psnr, gan = tiny_generator(seed=1).state_dict(), tiny_generator(seed=2).state_dict()
    # different layouts and containers on purpose: the original release's keys and a basicsr EMA file
    torch.save(in_layout(psnr, 'original'), tmp_path / 'psnr.pth')
    torch.save({'params_ema': gan}, tmp_path / 'gan.pth')
    return psnr, gan, str(tmp_path / 'psnr.pth'), str(tmp_path / 'gan.pth')


def test_endpoints_and_midpoint(tmp_path, pair):
    psnr, gan, psnr_path, gan_path = pair
    written = interpolation.interpolate_files(psnr_path, gan_path, [0, 0.5, 1], str(tmp_path / 'out'))
    assert [os.path.basename(p) for p in written] == ['interp_0.pth', 'interp_0.5.pth', 'interp_1.pth']
    files = [torch.load(p, weights_only=True) for p in written]
    assert all(set(f) == {'params'} for f in files)
    at0, at_half, at1 = (f['params'] for f in files)
    assert set(at0) == set(psnr)
    for key in psnr:
        assert torch.equal(at0[key], psnr[key]) and torch.equal(at1[key], gan[key])
        midpoint = (psnr[key].double() + gan[key].double()) / 2
        assert torch.equal(at_half[key], midpoint.float())
        assert at_half[key].dtype == torch.float32


def test_output_loads_in_the_plugin_loader_and_gives_the_same_net(tmp_path, pair):
    psnr, _, psnr_path, gan_path = pair
    (path,) = interpolation.interpolate_files(psnr_path, gan_path, [0], str(tmp_path))
    net = load_generator(path)
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(net(x), tiny_generator(seed=1)(x))


def test_different_architectures_are_refused_naming_key_and_shapes():
    small, wide = tiny_generator().state_dict(), tiny_generator(num_feat=12).state_dict()
    with pytest.raises(CheckpointError, match=r'conv_first.weight has shape \(8, 3, 3, 3\).*\(12, 3, 3, 3\)'):
        interpolation.interpolate(small, wide, 0.5)
    deeper = tiny_generator(num_block=3).state_dict()
    with pytest.raises(CheckpointError, match=r'PSNR generator lacks body.2.rdb1.conv1.weight'):
        interpolation.interpolate(small, deeper, 0.5)
    x8 = tiny_generator(scale=8).state_dict()
    with pytest.raises(CheckpointError, match='lacks conv_up3'):
        interpolation.interpolate(small, x8, 0.5)


def test_command(tmp_path, pair, monkeypatch, capsys):
    _, _, psnr_path, gan_path = pair
    monkeypatch.chdir(tmp_path)
    result = run_command(capsys, interp.main, '--psnr', psnr_path, '--gan', gan_path, '--alpha', '0.2', '0.8', '-o',
                         'nets')
    assert result.code == 0, result.err
    assert sorted(os.listdir(tmp_path / 'nets')) == ['interp_0.2.pth', 'interp_0.8.pth']
    torch.save(tiny_generator(num_feat=12).state_dict(), tmp_path / 'other.pth')
    result = run_command(capsys, interp.main, '--psnr', psnr_path, '--gan', 'other.pth', '--alpha', '0.5', '-o',
                         'bad')
    assert result.code == 1 and result.err.startswith('error: conv_first.weight has shape')
    assert not (tmp_path / 'bad').exists()
