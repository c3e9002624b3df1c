"""The training-free perceptual stand-in: colour term exact, texture term blind to position but not to blur."""
import pytest
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


# The eight symmetries of the square, written out here independently of the module's tables.
SQUARE_SYMMETRIES = {
    'identity': lambda t: t, 'transpose': lambda t: t.transpose(-2, -1),
    'quarter turn': lambda t: torch.rot90(t, 1, (-2, -1)), 'half turn': lambda t: torch.rot90(t, 2, (-2, -1)),
    'three quarter turns': lambda t: torch.rot90(t, 3, (-2, -1)), 'mirror left-right': lambda t: t.flip(-1),
    'mirror up-down': lambda t: t.flip(-2), 'anti-transpose': lambda t: torch.rot90(t, 2, (-2, -1)).transpose(-2, -1),
}


def streaked_pair(size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """An output with horizontal streaks over a texture, and the texture as the target: neither is symmetric."""
    target = textured(3, size)
    rows = torch.arange(size, dtype=torch.float32).view(1, 1, size, 1)
    return (target + 0.1 * torch.sin(rows * 2.1)).clamp(0, 1), target


def direct_texture_loss(output: torch.Tensor, target: torch.Tensor, conv1: torch.Tensor,
                        conv2: torch.Tensor) -> torch.Tensor:
    """The documented texture term, written out: L1 of Gram matrices of relu(conv) features, full and half size."""
    total = torch.zeros(())
    for out, tgt in ((output, target), (F.avg_pool2d(output, 2), F.avg_pool2d(target, 2))):
        grams = []
        for img in (out, tgt):
            first = torch.relu(F.conv2d(img - 0.5, conv1, padding=1))
            second = torch.relu(F.conv2d(first, conv2, padding=1))
            grams.append([torch.einsum('bchw,bdhw->bcd', f, f) / (f.shape[2] * f.shape[3]) for f in (first, second)])
        total = total + sum((a - b).abs().mean() for a, b in zip(*grams))
    return total


def test_texture_term_is_the_documented_gram_l1():
    loss = ESRGANStandInPerceptualLoss()
    output, target = streaked_pair()
    assert torch.allclose(loss.texture_loss(output, target),
                          direct_texture_loss(output, target, loss.conv1, loss.conv2), rtol=1e-5)


def test_loss_has_no_preferred_direction():
    """The same value for a pair turned or mirrored: horizontal streaks cost what vertical ones cost."""
    loss = ESRGANStandInPerceptualLoss()
    output, target = streaked_pair()
    reference = loss(output, target).item()
    assert reference > 0
    for name, symmetry in SQUARE_SYMMETRIES.items():
        assert abs(loss(symmetry(output), symmetry(target)).item() - reference) < 1e-6 * reference, name


def test_independent_random_filters_would_prefer_a_direction():
    """The property above is not automatic: the same loss with unstructured random filters (as the texture
    synthesis papers draw them) gives a transposed pair a different value."""
    generator = torch.Generator().manual_seed(0)
    conv1 = torch.randn(48, 3, 3, 3, generator=generator) / 27 ** 0.5
    conv2 = torch.randn(48, 48, 3, 3, generator=generator) / (9 * 48) ** 0.5
    output, target = streaked_pair()
    plain = direct_texture_loss(output, target, conv1, conv2)
    transposed = direct_texture_loss(output.transpose(2, 3), target.transpose(2, 3), conv1, conv2)
    assert abs(plain - transposed) > 0.01 * plain


def test_filter_banks_are_closed_under_the_symmetries_of_the_square():
    """Turning or mirroring every first-layer filter permutes them, and the same permutation of the channels on
    both sides maps every second-layer filter to its turned or mirrored self."""
    loss = ESRGANStandInPerceptualLoss(num_features=16, seed=5)
    conv1, conv2 = loss.conv1, loss.conv2
    for name, symmetry in SQUARE_SYMMETRIES.items():
        turned = symmetry(conv1)
        # channel j of the transformed bank is channel perm[j] of the bank
        perm = [next(i for i in range(len(conv1)) if torch.equal(conv1[i], turned[j])) for j in range(len(conv1))]
        assert sorted(perm) == list(range(len(conv1))), name
        index = torch.tensor(perm)
        assert torch.equal(symmetry(conv2), conv2[index][:, index]), name


def test_num_features_must_give_every_orientation():
    with pytest.raises(ValueError, match='multiple of 8'):
        ESRGANStandInPerceptualLoss(num_features=12)
