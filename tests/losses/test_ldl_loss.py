"""The LDL term against its formula written out here with plain torch ops (Liang et al., CVPR 2022, eqs. 5-8)."""
import pytest
import torch
from basicsr.losses import build_loss

from esrgan_plugin.losses.ldl_loss import ldl_term


def local_variance(residual, window):
    """Unbiased variance of ``residual`` (N×1×H×W) over the window×window neighbourhood of each pixel, the image
    mirrored at its borders (reflect: the edge pixel itself is not repeated), by loops over the offsets."""
    half = window // 2
    n, _, h, w = residual.shape
    out = torch.empty_like(residual)
    for i in range(h):
        for j in range(w):
            rows = [abs(r) if r < 0 else (2 * (h - 1) - r if r >= h else r) for r in range(i - half, i + half + 1)]
            cols = [abs(c) if c < 0 else (2 * (w - 1) - c if c >= w else c) for c in range(j - half, j + half + 1)]
            values = residual[:, 0][:, rows][:, :, cols].reshape(n, -1)
            mean = values.mean(dim=1, keepdim=True)
            out[:, 0, i, j] = ((values - mean) ** 2).sum(dim=1) / (values.shape[1] - 1)
    return out


def expected_ldl(gt, sr, ema, loss_weight):
    residual_sr = (gt - sr).abs().sum(dim=1, keepdim=True)  # channels summed
    residual_ema = (gt - ema).abs().sum(dim=1, keepdim=True)
    flat = residual_sr.reshape(residual_sr.shape[0], -1)
    patch_variance = ((flat - flat.mean(dim=1, keepdim=True)) ** 2).sum(dim=1) / (flat.shape[1] - 1)
    artifact_map = patch_variance.reshape(-1, 1, 1, 1) ** 0.2 * local_variance(residual_sr, 7)
    artifact_map = torch.where(residual_sr < residual_ema, torch.zeros_like(artifact_map), artifact_map)
    # L1 between M⊙SR and M⊙GT, mean over every element (the map broadcast over the channels)
    return loss_weight * (artifact_map * sr - artifact_map * gt).abs().mean()


def fixed_batch():
    g = torch.Generator().manual_seed(3)
    gt = torch.rand(2, 3, 12, 10, generator=g, dtype=torch.float64)
    sr = (gt + 0.2 * torch.randn(gt.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    ema = (gt + 0.15 * torch.randn(gt.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    return gt, sr, ema


def test_ldl_term_equals_its_formula_on_a_fixed_batch():
    gt, sr, ema = fixed_batch()
    expected = expected_ldl(gt, sr, ema, loss_weight=0.5)
    got = ldl_term(build_loss({'type': 'L1Loss', 'loss_weight': 0.5}), sr, gt, ema)
    assert expected > 0
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=0)


def test_the_ema_mask_matters_and_zeroes_pixels_where_the_generator_beats_its_average():
    gt, sr, ema = fixed_batch()
    criterion = build_loss({'type': 'L1Loss', 'loss_weight': 1.0})
    # an EMA output that equals the GT everywhere: nothing is masked, the term is the largest
    unmasked = ldl_term(criterion, sr, gt, gt)
    assert unmasked > ldl_term(criterion, sr, gt, ema) > 0
    # an EMA output farther from the GT than the live output everywhere: every pixel is masked
    assert ldl_term(criterion, sr, gt, gt + 2) == 0


@pytest.mark.parametrize('shape', [(1, 3, 8, 8), (2, 1, 9, 11)])
def test_independent_formula_agrees_on_other_shapes(shape):
    g = torch.Generator().manual_seed(sum(shape))
    gt, sr, ema = (torch.rand(shape, generator=g, dtype=torch.float64) for _ in range(3))
    criterion = build_loss({'type': 'L1Loss', 'loss_weight': 1.0})
    torch.testing.assert_close(ldl_term(criterion, sr, gt, ema), expected_ldl(gt, sr, ema, 1.0), rtol=1e-10, atol=0)
