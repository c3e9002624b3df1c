"""The VGG-style discriminator of ESRGAN (and SRGAN, Ledig et al. 2017, figure 4).

Ten convs in five stages (3x3 stride 1, then 4x4 stride 2, channels 64 → 512),
batch norm after every conv but the first, LeakyReLU 0.2, then two linear
layers (100 units, then one logit). The paper trains it on 128x128 patches.

Unlike basicsr's ``VGGStyleDiscriminator`` (which asserts 128 or 256), the
input size may be any multiple of 32: the flattened feature size follows it.
For ``input_size=128`` parameter names and shapes equal basicsr's, so
checkpoints move between the two.
"""
from __future__ import annotations

import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn


@ARCH_REGISTRY.register()
class ESRGANVGGDiscriminator(nn.Module):
    """Args:
        num_in_ch: image channels.
        num_feat: channels of the first stage (doubled per stage up to 8x).
        input_size: patch size it is trained on (the dataset's ``gt_size``); a multiple of 32.
    """

    def __init__(self, num_in_ch: int = 3, num_feat: int = 64, input_size: int = 128) -> None:
        super().__init__()
        if input_size % 32 or input_size < 32:
            raise ValueError(f'ESRGANVGGDiscriminator needs input_size to be a multiple of 32 (five stride-2 '
                             f'stages), got {input_size}; set network_d.input_size to the dataset gt_size.')
        self.input_size = input_size
        widths = [num_feat, num_feat * 2, num_feat * 4, num_feat * 8, num_feat * 8]
        in_ch = num_in_ch
        for stage, width in enumerate(widths):
            setattr(self, f'conv{stage}_0', nn.Conv2d(in_ch, width, 3, 1, 1, bias=stage == 0))
            if stage > 0:
                setattr(self, f'bn{stage}_0', nn.BatchNorm2d(width, affine=True))
            setattr(self, f'conv{stage}_1', nn.Conv2d(width, width, 4, 2, 1, bias=False))
            setattr(self, f'bn{stage}_1', nn.BatchNorm2d(width, affine=True))
            in_ch = width
        side = input_size // 32
        self.linear1 = nn.Linear(widths[-1] * side * side, 100)
        self.linear2 = nn.Linear(100, 1)
        # Not in-place: under DDP, in-place activations after BN are what broke
        # basicsr's RaGAN backward (BasicSR issue 322).
        self.lrelu = nn.LeakyReLU(negative_slope=0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.input_size, self.input_size):
            raise ValueError(f'ESRGANVGGDiscriminator was built for {self.input_size}x{self.input_size} patches '
                             f'but got {tuple(x.shape[-2:])}; set network_d.input_size to the dataset gt_size.')
        feat = self.lrelu(self.conv0_0(x))
        feat = self.lrelu(self.bn0_1(self.conv0_1(feat)))
        for stage in range(1, 5):
            feat = self.lrelu(getattr(self, f'bn{stage}_0')(getattr(self, f'conv{stage}_0')(feat)))
            feat = self.lrelu(getattr(self, f'bn{stage}_1')(getattr(self, f'conv{stage}_1')(feat)))
        return self.linear2(self.lrelu(self.linear1(feat.flatten(1))))
