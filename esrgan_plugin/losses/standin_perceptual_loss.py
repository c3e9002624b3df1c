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

It is a stand-in, not the paper's loss: it knows nothing of objects and parts
(ImageNet features do), so its textures are generic.
"""
from __future__ import annotations

import torch
from basicsr.utils.registry import LOSS_REGISTRY
from torch import nn
from torch.nn import functional as F


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
        texture_weight: weight of the Gram loss within the term.
        num_features: channels of each random conv layer.
        seed: seed of the random filters (fixed, so runs and resumes see the same loss).
    """

    def __init__(self, loss_weight: float = 1.0, scale: int = 4, color_weight: float = 5.0,
                 texture_weight: float = 1.0, num_features: int = 48, seed: int = 0) -> None:
        super().__init__()
        self.loss_weight = loss_weight
        self.scale = int(scale)
        self.color_weight = color_weight
        self.texture_weight = texture_weight
        generator = torch.Generator().manual_seed(seed)
        # He-style scaling keeps the feature magnitudes of both layers comparable.
        self.register_buffer('conv1', torch.randn(num_features, 3, 3, 3, generator=generator) / 27 ** 0.5)
        self.register_buffer('conv2', torch.randn(num_features, num_features, 3, 3, generator=generator)
                             / (9 * num_features) ** 0.5)

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
