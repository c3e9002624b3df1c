"""A perceptual-loss stand-in for when the ImageNet VGG19 file is not available (the demo, offline machines).

The paper's perceptual loss compares VGG19 conv5_4 features of ImageNet-trained
weights. With *random* VGG19 weights the same loss is harmful (measured in the
demo; docs/demo.md#the-gan-stages-perceptual-loss): deep random features ignore the mean colour, so the GAN
stage drifts in colour, and their 16-pixel pooling grid comes back as a
cross-hatch texture. The stand-in keeps the two jobs a perceptual loss does in
ESRGAN, with parts that need no training:

* **colour and coarse structure**: L1 between ``scale`` x ``scale`` box averages
  of output and target. That is exactly what the LR image already determines;
  the GAN has no business changing it, and the term pins the mean colour.
* **texture**: L1 between Gram matrices (channel correlations, as in texture
  synthesis) of two fixed random 3x3 conv layers, at full and half resolution.
  Gram statistics of shallow random filters describe texture well (shown for
  texture synthesis by Ustyuzhaninov et al., 2017), are blind to where a detail
  sits, so the GAN may place high-frequency detail freely, and have no pooling
  grid to imprint.

Texture has no preferred direction, so neither may the loss. Independent random
filters have one: such a bank happens to respond more to detail along one axis,
so its Gram loss is not the same for an image pair and for the pair turned by
90 degrees, and the GAN stage learns to add detail along that axis (in the demo:
horizontal streaks). The filter banks here are therefore built *equivariant* to
the eight rotations and mirror images of the square (the dihedral group D4, as in
the group-equivariant networks of Cohen and Welling, 2016): every first-layer
filter comes in its eight orientations, and the second layer's weights are tied
so that turning or mirroring the input only permutes the channels of both
layers' features. A permutation of channels permutes the Gram matrix's rows and
columns alike, which leaves the L1 between two Gram matrices unchanged, so the
loss is exactly the same for a pair and for the pair turned or mirrored (for
sides divisible by ``2 * scale``, where the box averages and the half-resolution
pooling tile the image the same way in every orientation).

It is a stand-in, not the paper's loss: it knows nothing of objects and parts
(ImageNet features do), so its textures are generic.
"""
from __future__ import annotations

import torch
from basicsr.utils.registry import LOSS_REGISTRY
from torch import nn
from torch.nn import functional as F


# The eight symmetries of the square, as (quarter turns, mirrored first): element (k, m) mirrors left-right when
# m, then turns k quarter turns counter-clockwise.
SYMMETRIES = tuple((turns, mirrored) for turns in range(4) for mirrored in (False, True))


def transform(img: torch.Tensor, symmetry: tuple[int, bool]) -> torch.Tensor:
    """``img`` (... x H x W) turned and/or mirrored by one of ``SYMMETRIES``."""
    turns, mirrored = symmetry
    return torch.rot90(img.flip(-1) if mirrored else img, turns, dims=(-2, -1))


def _symmetry_tables() -> tuple[list[list[int]], list[int]]:
    """Composition (``compose[a][b]``: ``b`` first, then ``a``) and inverse of ``SYMMETRIES``, by their action on a
    3x3 grid of distinct values."""
    grid = torch.arange(9.0).reshape(3, 3)
    images = [transform(grid, s) for s in SYMMETRIES]

    def index(img: torch.Tensor) -> int:
        return next(i for i, other in enumerate(images) if torch.equal(other, img))

    compose = [[index(transform(images[b], a)) for b in range(len(SYMMETRIES))] for a in SYMMETRIES]
    inverse = [row.index(0) for row in compose]  # SYMMETRIES[0] is the identity
    return compose, inverse


def equivariant_filter_banks(num_features: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random 3x3 weights of two conv layers (3 -> ``num_features`` -> ``num_features``) equivariant to the eight
    symmetries of the square.

    Channel ``8 * b + g`` of either layer is orientation ``g`` of pattern ``b``. First layer: filter ``8 * b + g``
    is a random filter ``b`` transformed by ``g``. Second layer (a group convolution): the weights from input
    channel ``8 * c + h`` into output channel ``8 * b + g`` are the random filter ``(b, c, g^-1 h)`` transformed by
    ``g``. Then a transform ``t`` of the input maps output channel ``(b, g)`` to ``t`` of channel ``(b, t^-1 g)``
    in both layers, by induction over the layers.
    """
    order = len(SYMMETRIES)
    if num_features % order or num_features < order:
        raise ValueError(f'ESRGANStandInPerceptualLoss needs num_features to be a multiple of {order} (each filter '
                         f'comes in the {order} orientations of the square), got {num_features}.')
    patterns = num_features // order
    compose, inverse = _symmetry_tables()
    generator = torch.Generator().manual_seed(seed)
    # He-style scaling keeps the feature magnitudes of both layers comparable.
    base1 = torch.randn(patterns, 3, 3, 3, generator=generator) / 27 ** 0.5
    base2 = torch.randn(patterns, patterns, order, 3, 3, generator=generator) / (9 * num_features) ** 0.5
    conv1 = torch.stack([transform(base1[b], s) for b in range(patterns) for s in SYMMETRIES])
    conv2 = torch.stack([
        torch.stack([transform(base2[b, c, compose[inverse[g]][h]], SYMMETRIES[g])
                     for c in range(patterns) for h in range(order)])
        for b in range(patterns) for g in range(order)])
    return conv1, conv2


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """Channel correlations averaged over positions: B x C x C."""
    b, c, h, w = features.shape
    flat = features.reshape(b, c, h * w)
    return flat @ flat.transpose(1, 2) / (h * w)


@LOSS_REGISTRY.register()
class ESRGANStandInPerceptualLoss(nn.Module):
    """Colour/low-frequency L1 plus a random-feature Gram (texture) loss; needs no pretrained weights.

    Args:
        loss_weight: weight of the whole term in the generator loss (the paper's perceptual weight is 1.0).
        scale: box size of the colour term, the SR scale (the LR image fixes these averages).
        color_weight: weight of the colour/low-frequency L1 within the term. In the demo, 1 let the GAN stage
            shift a channel's mean by 2.5 levels, 5 by 1.3 (the PSNR model's own shift) with NIQE still below
            the PSNR model's, and 20 held the colours as well but left NIQE where the PSNR model's was.
        texture_weight: weight of the Gram loss within the term. In the demo's GAN stage, 1 left the direction
            that the PSNR model's and the discriminator's random initial weights favour in the output
            (chelsea 1.25 times the ground truth's direction ratio; docs/demo.md#measured-result); 5 held the
            direction statistics of the ground truth (1.12 times) and lowered NIQE further, though not with every run
            seed (1.48 times with seed 1).
        num_features: channels of each random conv layer; a multiple of 8 (each filter in the eight orientations of
            the square, so the loss has no preferred direction).
        seed: seed of the random filters (fixed, so runs and resumes see the same loss).
    """

    def __init__(self, loss_weight: float = 1.0, scale: int = 4, color_weight: float = 5.0,
                 texture_weight: float = 5.0, num_features: int = 48, seed: int = 0) -> None:
        super().__init__()
        self.loss_weight = loss_weight
        self.scale = int(scale)
        self.color_weight = color_weight
        self.texture_weight = texture_weight
        conv1, conv2 = equivariant_filter_banks(num_features, seed)
        self.register_buffer('conv1', conv1)
        self.register_buffer('conv2', conv2)

    def features(self, img: torch.Tensor) -> list[torch.Tensor]:
        first = F.relu(F.conv2d(img - 0.5, self.conv1, padding=1))
        return [first, F.relu(F.conv2d(first, self.conv2, padding=1))]

    def texture_loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = output.new_zeros(())
        for level in range(2):  # full and half resolution
            if level:
                output, target = F.avg_pool2d(output, 2), F.avg_pool2d(target, 2)
            for out_feat, target_feat in zip(self.features(output), self.features(target)):
                loss = loss + F.l1_loss(gram_matrix(out_feat), gram_matrix(target_feat).detach())
        return loss

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        color = F.l1_loss(F.avg_pool2d(output, self.scale), F.avg_pool2d(target, self.scale))
        return self.loss_weight * (self.color_weight * color + self.texture_weight * self.texture_loss(output, target))
