"""The fast inference paths: bf16 agrees with fp32 on trained weights, tiling is seam-free, compile and fp16 on CPU."""
import os

import cv2
import numpy as np
import pytest
import torch

from conftest import run_command, tiny_generator
from esrgan_plugin import infer
from esrgan_plugin import choices
from esrgan_plugin.inference.runtime import choose_dtype, prepare_generator
from tiles import tiled_output


def eight_bit(out: torch.Tensor) -> np.ndarray:
    return np.round(out[0].float().clamp(0, 1).permute(1, 2, 0).numpy() * 255)


def y_psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR on BT.601 luma of two 8-bit RGB images (MATLAB rgb2ycbcr's Y, as the field reports it)."""
    weights = np.array([65.481, 128.553, 24.966]) / 255
    mse = np.mean((a @ weights - b @ weights) ** 2)
    return 10 * np.log10(255 ** 2 / mse)


@pytest.fixture
def trained(shared_data):
    path = os.path.join(shared_data, 'weights', 'RealESRGAN_x4plus.pth')
    if not os.path.isfile(path):
        pytest.skip('the shared trained weights are not present')
    from esrgan_plugin.archs.checkpoint import load_generator
    return load_generator(path)


def photo(shared_data, rows: int, cols: int) -> torch.Tensor:
    """A rows x cols crop from the middle of a real photo (Set14 barbara), as a 1 x 3 x H x W tensor."""
    img = cv2.imread(os.path.join(shared_data, 'Set14', 'GTmod12', 'barbara.png'))[..., ::-1]
    top, left = (img.shape[0] - rows) // 2, (img.shape[1] - cols) // 2
    crop = img[top:top + rows, left:left + cols] / np.float32(255)
    return torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1)))[None]


def test_bf16_agrees_with_fp32_on_trained_weights(trained, shared_data):
    # The tolerance the issue sets for the fast path: at least 45 dB Y-PSNR against fp32 on 8-bit outputs.
    x = photo(shared_data, 20, 20)
    with torch.inference_mode():
        reference = eight_bit(trained(x))
        fast_net = prepare_generator(trained, torch.device('cpu'), torch.bfloat16)
        fast = eight_bit(fast_net(x.to(torch.bfloat16)))
    assert next(fast_net.parameters()).dtype == torch.bfloat16
    assert fast_net.conv_first.weight.is_contiguous(memory_format=torch.channels_last)
    assert 0 < np.abs(fast - reference).max()  # really computed in bf16
    assert y_psnr(fast, reference) >= 45


def test_tiled_equals_untiled_on_trained_weights(trained, shared_data):
    """Default padding: at most 1 level of difference, on under 0.1 % of values, next to the tile seams.

    The strip is as short as possible (4 rows) and just wider than one window, so that it holds
    seams whose cores have only the default context on one side; compared with a whole image, seams
    are over-represented here, which makes the bound stricter.
    """
    tile, pad = 64, choices.DEFAULT_TILE_PAD
    x = photo(shared_data, 4, tile + 2 * pad + 64)
    whole = eight_bit(tiled_output(trained, x, tile=0, pad=0))
    tiled = eight_bit(tiled_output(trained, x, tile=tile, pad=pad))
    diff = np.abs(whole - tiled)
    assert diff.max() <= 1 and np.mean(diff > 0) < 1e-3
    short = eight_bit(tiled_output(trained, x, tile=tile, pad=8))  # the check can fail: too little context shows
    assert np.abs(whole - short).max() > 1


def test_fp32_is_the_plain_network():
    net = tiny_generator(scale=4, seed=3)
    same = prepare_generator(tiny_generator(scale=4, seed=3), torch.device('cpu'))
    x = torch.rand(1, 3, 12, 10)
    with torch.no_grad():
        assert torch.equal(same(x), net(x))
    assert not same.conv_first.weight.is_contiguous(memory_format=torch.channels_last)


def test_compiled_generator_tiles_like_the_eager_one(monkeypatch):
    # The eager backend keeps this fast (inductor takes minutes on a small CPU; tests/test_cuda.py compiles for
    # real): what is checked is that a torch.compile wrapper goes through the tiling and the attribute look-ups.
    compile_for_real = torch.compile
    monkeypatch.setattr(torch, 'compile', lambda net, **kw: compile_for_real(net, backend='eager', **kw))
    net = tiny_generator(scale=4, seed=4)
    compiled = prepare_generator(tiny_generator(scale=4, seed=4), torch.device('cpu'), compile_mode=True)
    assert isinstance(compiled, torch._dynamo.eval_frame.OptimizedModule)
    x = torch.rand(1, 3, 24, 20)
    with torch.no_grad():
        eager = tiled_output(net, x, tile=8, pad=8)
    torch.testing.assert_close(tiled_output(compiled, x, tile=8, pad=8), eager, rtol=1e-4, atol=1e-5)


def test_fp16_on_cpu_runs_in_fp32_with_a_warning(tmp_path, monkeypatch, capsys):
    dtype, note = choose_dtype('fp16', torch.device('cpu'))
    assert dtype == torch.float32 and 'bf16' in note
    net = tiny_generator(scale=4, seed=5)
    torch.save({'params': net.state_dict()}, tmp_path / 'model.pth')
    bgr = np.random.default_rng(0).integers(0, 256, (6, 7, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / 'a.png'), bgr)
    monkeypatch.chdir(tmp_path)
    result = run_command(capsys, infer.main, '-i', 'a.png', '-o', 'out', '-m', 'model.pth', '--precision', 'fp16',
                         '--device', 'cpu')
    assert result.code == 0 and 'warning: fp16 is not used on the CPU' in result.err
    x = torch.from_numpy(np.ascontiguousarray(bgr[..., ::-1].transpose(2, 0, 1)) / np.float32(255))[None]
    with torch.no_grad():
        expected = eight_bit(net(x))[..., ::-1]
    assert np.array_equal(cv2.imread(str(tmp_path / 'out' / 'a_out.png')), expected.astype(np.uint8))
