"""``infer --color-fix``: a known colour cast removed, each fix equal to its formula computed here, and the result
independent of the network's tiles and of the bands the fix runs in."""
import cv2
import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from conftest import tiny_generator
from esrgan_plugin.inference import color_fix, image_io, upscale
from esrgan_plugin.metrics.color_metric import calculate_color_shift

SCALE = 4
CAST = (12.0, -9.0, 6.0)  # levels of 255 the stand-in network adds to R, G, B


class TintingUpscaler(nn.Module):
    """A stand-in network with a known colour cast: bicubic x4 (torch's, not OpenCV's) plus ``CAST``."""
    scale = SCALE

    def __init__(self, cast=CAST):
        super().__init__()
        self.conv_first = nn.Conv2d(3, 3, 1)  # what upscale_to_array reads the input channels from
        self.register_buffer('cast', torch.tensor(cast).view(1, 3, 1, 1) / 255)

    def forward(self, x):
        return F.interpolate(x, scale_factor=SCALE, mode='bicubic', align_corners=False) + self.cast


def photo_like(rng, height: int, width: int) -> np.ndarray:
    """uint8 BGR with smooth colour regions and some texture, away from 0 and 255 so the cast is not clipped."""
    coarse = rng.uniform(60, 190, (height // 8, width // 8, 3)).astype(np.float32)
    img = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC) + rng.normal(0, 8, (height, width, 3))
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def lr_picture(gt_bgr: np.ndarray) -> image_io.Picture:
    """The LR input made from the ground truth by area averaging, as infer reads an 8-bit image."""
    lr = cv2.resize(gt_bgr, (gt_bgr.shape[1] // SCALE, gt_bgr.shape[0] // SCALE), interpolation=cv2.INTER_AREA)
    return image_io.Picture(lr[..., ::-1].astype(np.float32) / 255, None, np.dtype(np.uint8))


@pytest.mark.parametrize('mode', ['mean', 'wavelet'])
def test_a_known_colour_cast_is_brought_under_one_level(mode):
    gt = photo_like(np.random.default_rng(0), 96, 128)
    picture = lr_picture(gt)
    cast = upscale.upscale_to_array(TintingUpscaler(), picture, np.dtype(np.uint8))
    fixed = upscale.upscale_to_array(TintingUpscaler(), picture, np.dtype(np.uint8), color_fix=mode)
    assert calculate_color_shift(cast, gt) > 8  # the cast is there (BGR: R is the last channel)
    assert calculate_color_shift(fixed, gt) < 1


def mean_fix_reference(out: np.ndarray, lr: np.ndarray) -> np.ndarray:
    """The mean fix written out in float64: each channel's area-downscale given the input's mean and spread."""
    h, w, c = lr.shape
    down = out.reshape(h, SCALE, w, SCALE, c).mean(axis=(1, 3))
    gain = lr.reshape(-1, c).std(0) / down.reshape(-1, c).std(0)
    return np.clip(out * gain + lr.reshape(-1, c).mean(0) - gain * down.reshape(-1, c).mean(0), 0, 1)


def atrous_low_band(img: np.ndarray, levels: int = 5) -> np.ndarray:
    """Five blurs with [1 2 1]/4 in each direction, dilated 1, 2, 4, 8, 16, edges replicated (torch, float64)."""
    x = torch.from_numpy(img.transpose(2, 0, 1)).double().unsqueeze(1)  # channels as a batch
    k = torch.tensor([1.0, 2.0, 1.0], dtype=torch.float64)
    kernel = (k[:, None] * k[None, :] / 16).view(1, 1, 3, 3)
    for level in range(levels):
        gap = 2**level
        x = F.conv2d(F.pad(x, (gap, gap, gap, gap), mode='replicate'), kernel, dilation=gap)
    return x[:, 0].numpy().transpose(1, 2, 0)


def test_each_fix_equals_its_formula():
    rng = np.random.default_rng(1)
    lr = rng.uniform(0.2, 0.8, (17, 23, 3)).astype(np.float32)
    out = np.clip(cv2.resize(lr, (92, 68), interpolation=cv2.INTER_NEAREST) * 1.1 - 0.04
                  + rng.normal(0, 0.03, (68, 92, 3)), 0, 1).astype(np.float32)
    fixed = out.copy()
    color_fix.apply_color_fix('mean', fixed, lr, SCALE)
    np.testing.assert_allclose(fixed, mean_fix_reference(out.astype(np.float64), lr.astype(np.float64)), atol=2e-6)
    fixed = out.copy()
    color_fix.apply_color_fix('wavelet', fixed, lr, SCALE)
    bicubic = cv2.resize(lr, (92, 68), interpolation=cv2.INTER_CUBIC).astype(np.float64)
    expected = np.clip(out - atrous_low_band(out.astype(np.float64)) + atrous_low_band(bicubic), 0, 1)
    np.testing.assert_allclose(fixed, expected, atol=2e-6)


@pytest.mark.parametrize('mode', ['mean', 'wavelet'])
@pytest.mark.parametrize('dtype', [np.uint8, np.uint16, np.float32])
def test_bands_join_without_seams(monkeypatch, mode, dtype):
    """The fix in bands of 4 or 36 rows (context crossing several bands) equals the fix in one band, exactly."""
    rng = np.random.default_rng(2)
    lr = rng.uniform(0, 1, (30, 21, 3)).astype(np.float32)
    out = np.clip(cv2.resize(lr, (84, 120), interpolation=cv2.INTER_CUBIC) + 0.05, 0, 1)
    canvas = out if dtype == np.float32 else np.round(out * np.iinfo(dtype).max).astype(dtype)
    whole = canvas.copy()
    color_fix.apply_color_fix(mode, whole, lr, SCALE)
    for rows in (4, 36):
        monkeypatch.setattr(color_fix, 'BAND_PIXELS', 84 * rows)
        banded = canvas.copy()
        color_fix.apply_color_fix(mode, banded, lr, SCALE)
        assert np.array_equal(banded, whole), rows
    assert not np.array_equal(whole, canvas)


@pytest.mark.parametrize('mode', ['mean', 'wavelet'])
def test_tiled_equals_untiled_with_colour_fix(mode):
    net = tiny_generator(scale=SCALE, seed=2)
    with torch.no_grad():
        net.conv_last.bias += torch.tensor([0.05, -0.04, 0.03])  # a cast for the fix to remove
    rgb = cv2.resize(np.random.default_rng(3).uniform(0, 1, (10, 8, 3)).astype(np.float32), (29, 41))
    picture = image_io.Picture(rgb, None, np.dtype(np.uint8))
    kinds = {}
    for dtype in (np.float32, np.uint8):
        whole = upscale.upscale_to_array(net, picture, np.dtype(dtype), tile=0, color_fix=mode)
        # 12-pixel tiles with the tiny net's whole receptive field (34 input pixels) as context
        tiled = upscale.upscale_to_array(net, picture, np.dtype(dtype), tile=12, tile_pad=34, color_fix=mode)
        kinds[dtype] = whole, tiled
    whole, tiled = kinds[np.float32]
    plain = upscale.upscale_to_array(net, picture, np.dtype(np.float32), tile=0)
    assert np.abs(whole - plain).max() > 0.01  # the fix changed the output
    np.testing.assert_allclose(tiled, whole, atol=1e-5)
    whole, tiled = kinds[np.uint8]
    assert np.abs(whole.astype(int) - tiled).max() <= 1 and np.mean(whole != tiled) < 1e-3  # rounding ties only


def test_alpha_is_left_as_the_net_made_it_and_gray_stays_gray():
    net = tiny_generator(scale=SCALE, seed=4)
    rng = np.random.default_rng(4)
    rgba = image_io.Picture(rng.uniform(0, 1, (9, 7, 3)).astype(np.float32), rng.uniform(0, 1, (9, 7)).astype(
        np.float32), np.dtype(np.uint16))
    plain = upscale.upscale_to_array(net, rgba, np.dtype(np.uint16))
    fixed = upscale.upscale_to_array(net, rgba, np.dtype(np.uint16), color_fix='mean')
    assert fixed.dtype == np.uint16 and np.array_equal(fixed[..., 3], plain[..., 3])
    assert not np.array_equal(fixed[..., :3], plain[..., :3])
    gt = cv2.cvtColor(photo_like(rng, 48, 40), cv2.COLOR_BGR2GRAY)
    lr = cv2.resize(gt, (10, 12), interpolation=cv2.INTER_AREA)
    gray = image_io.Picture(lr.astype(np.float32) / 255, None, np.dtype(np.uint8))
    brighter = TintingUpscaler(cast=(10.0, 10.0, 10.0))
    plain = upscale.upscale_to_array(brighter, gray, np.dtype(np.uint8))
    for mode in ('mean', 'wavelet'):
        out = upscale.upscale_to_array(brighter, gray, np.dtype(np.uint8), color_fix=mode)
        assert out.shape == gt.shape and calculate_color_shift(out, gt) < 1 < calculate_color_shift(plain, gt)


def test_gray_with_alpha_keeps_three_equal_channels():
    net = tiny_generator(scale=SCALE, seed=5)
    rng = np.random.default_rng(5)
    picture = image_io.Picture(rng.uniform(0, 1, (8, 6)).astype(np.float32),
                               rng.uniform(0, 1, (8, 6)).astype(np.float32), np.dtype(np.uint8))
    out = upscale.upscale_to_array(net, picture, np.dtype(np.uint8), color_fix='mean')
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 0], out[..., 2])


def test_an_unknown_mode_or_a_wrong_size_is_refused():
    with pytest.raises(ValueError, match='not one of none, mean, wavelet'):
        color_fix.apply_color_fix('median', np.zeros((8, 8, 3), np.float32), np.zeros((2, 2, 3), np.float32), 4)
    with pytest.raises(ValueError, match='upscaled x4'):
        color_fix.apply_color_fix('mean', np.zeros((8, 9, 3), np.float32), np.zeros((2, 2, 3), np.float32), 4)
