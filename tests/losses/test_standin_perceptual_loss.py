"""The training-free perceptual stand-in: colour term exact, texture term blind to position but not to blur."""
import torch
from torch.nn import functional as F

from esrgan_plugin.losses.standin_perceptual_loss import ESRGANStandInPerceptualLoss, gram_matrix


def textured(seed: int = 0, size: int = 64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(2, 3, size, size, generator=g) * 0.6 + 0.2


def test_built_from_basicsrs_registry_with_no_trainable_weights():
    from basicsr.losses import build_loss

    loss = build_loss({'type': 'ESRGANStandInPerceptualLoss', 'loss_weight': 1.0, 'scale': 4})
    assert isinstance(loss, ESRGANStandInPerceptualLoss) and list(loss.parameters()) == []


def test_identical_images_cost_nothing():
    img = textured()
    assert ESRGANStandInPerceptualLoss()(img, img).item() == 0.0


def test_colour_term_is_the_l1_of_box_averages():
    img = textured()
    shifted = img + torch.tensor([0.1, -0.05, 0.0]).view(1, 3, 1, 1)
    loss = ESRGANStandInPerceptualLoss(texture_weight=0.0, loss_weight=2.0, color_weight=3.0)(shifted, img)
    assert abs(loss.item() - 2.0 * 3.0 * (0.1 + 0.05 + 0.0) / 3) < 1e-6
    # detail that averages out within each 4x4 box leaves it untouched
    checker = torch.tensor([[1.0, -1.0], [-1.0, 1.0]]).repeat(32, 32) * 0.05
    assert ESRGANStandInPerceptualLoss(texture_weight=0.0, color_weight=1.0)(img + checker, img).item() < 1e-7


def test_texture_term_ignores_where_detail_sits_but_not_blur():
    img = textured(size=96)
    loss = ESRGANStandInPerceptualLoss(color_weight=0.0)
    moved = torch.roll(img, shifts=(3, 5), dims=(2, 3))  # same texture, every detail elsewhere
    blurred = F.avg_pool2d(F.pad(img, (1, 1, 1, 1), mode='replicate'), 3, stride=1)
    assert F.l1_loss(moved, img) > F.l1_loss(blurred, img)  # pixel-wise, moving is the bigger change
    assert loss(moved, img) < 0.1 * loss(blurred, img)  # texture-wise, blurring is


def test_gram_matrix_formula():
    feat = torch.randn(1, 4, 5, 6)
    flat = feat.reshape(4, 30)
    assert torch.allclose(gram_matrix(feat)[0], flat @ flat.T / 30, atol=1e-6)


def test_gradient_reaches_the_output():
    out = textured(1).requires_grad_()
    ESRGANStandInPerceptualLoss()(out, textured(2)).backward()
    assert out.grad is not None and out.grad.abs().sum() > 0
