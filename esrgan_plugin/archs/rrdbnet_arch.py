"""RRDBNet, the ESRGAN generator.

Wang et al., "ESRGAN: Enhanced Super-Resolution Generative Adversarial
Networks", ECCV Workshops 2018, section 3.1 and figure 4:

* no batch normalisation anywhere (BN causes artifacts in SR, section 3.1);
* Residual-in-Residual Dense Blocks: three 5-conv dense blocks per RRDB, each
  residual scaled by 0.2 before it is added, inside and around the RRDB;
* LeakyReLU(0.2) and Kaiming initialisation scaled by 0.1 in the dense blocks;
* a trunk conv and a long skip over all blocks, then nearest-neighbour x2
  upsampling stages each followed by a conv, an HR conv and the output conv.

Submodule names are basicsr's (``conv_first``, ``body.N.rdbK.convJ``,
``conv_body``, ``conv_up1``, ``conv_up2``, ``conv_hr``, ``conv_last``), so a
state dict moves between this class and ``basicsr.archs.rrdbnet_arch.RRDBNet``
unchanged. Scale 8 adds ``conv_up3``. Scales 1 and 2 pixel-unshuffle the input
first (as Real-ESRGAN's x2 models do) and then run the x4 network.
"""
from __future__ import annotations

import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn
from torch.nn import functional as F

SUPPORTED_SCALES = (1, 2, 4, 8)


def _kaiming_scaled_(convs: list[nn.Conv2d], scale: float) -> None:
    """Kaiming-normal init with the weights scaled down, biases zero.

    The 0.1 factor keeps the many residual branches close to identity at the
    start, which the paper found makes very deep RRDB stacks trainable.
    """
    with torch.no_grad():
        for conv in convs:
            nn.init.kaiming_normal_(conv.weight)
            conv.weight.mul_(scale)
            nn.init.zeros_(conv.bias)


class ResidualDenseBlock(nn.Module):
    """Five 3x3 convs, each seeing the block input and every earlier output."""

    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_grow_ch, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat + num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv3 = nn.Conv2d(num_feat + 2 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv4 = nn.Conv2d(num_feat + 3 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv5 = nn.Conv2d(num_feat + 4 * num_grow_ch, num_feat, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)
        _kaiming_scaled_([self.conv1, self.conv2, self.conv3, self.conv4, self.conv5], 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        return x5 * 0.2 + x  # residual scaling, paper section 3.1


class RRDB(nn.Module):
    """Residual in Residual Dense Block: three dense blocks and an outer skip."""

    def __init__(self, num_feat: int, num_grow_ch: int = 32) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


def num_upsample_stages(scale: int) -> int:
    """x2 stages after the trunk: scales 1 and 2 unshuffle to the x4 network."""
    return 3 if scale == 8 else 2


def unshuffle_factor(scale: int) -> int:
    """Pixel-unshuffle factor applied to the input (1 means none)."""
    return {1: 4, 2: 2}.get(scale, 1)


@ARCH_REGISTRY.register()
class ESRGANRRDBNet(nn.Module):
    """The ESRGAN generator; defaults are the paper's (16,697,987 parameters).

    Args:
        num_in_ch: input image channels.
        num_out_ch: output image channels.
        scale: upscaling factor, one of 1, 2, 4, 8.
        num_feat: trunk feature channels.
        num_block: number of RRDB blocks in the trunk.
        num_grow_ch: growth channels of each dense-block conv.
    """

    # Feature pixels on each side that reach an output pixel of ``forward_upsample``: after each nearest x2
    # upsampling a 3x3 conv reaches half as far (0.5 + 0.25 + 0.25 + 0.25 = 1.25 at x4, 1.125 at x8): 2 in all
    # (checked against the whole forward in tests/inference/test_tiling.py).
    upsample_halo = 2

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, scale: int = 4, num_feat: int = 64,
                 num_block: int = 23, num_grow_ch: int = 32) -> None:
        super().__init__()
        if scale not in SUPPORTED_SCALES:
            raise ValueError(f'ESRGANRRDBNet supports scale {SUPPORTED_SCALES}, got {scale}.')
        self.scale = scale
        self.unshuffle = unshuffle_factor(scale)
        self.conv_first = nn.Conv2d(num_in_ch * self.unshuffle**2, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*[RRDB(num_feat, num_grow_ch) for _ in range(num_block)])
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        if num_upsample_stages(scale) == 3:
            self.conv_up3 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def upsample_convs(self) -> list[nn.Conv2d]:
        return [getattr(self, f'conv_up{i}') for i in range(1, num_upsample_stages(self.scale) + 1)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_upsample(self.forward_trunk(x))

    def forward_trunk(self, x: torch.Tensor) -> torch.Tensor:
        """The trunk's features, at the input's resolution (divided by the unshuffle factor)."""
        if self.unshuffle > 1:
            x = F.pixel_unshuffle(x, self.unshuffle)
        feat = self.conv_first(x)
        return feat + self.conv_body(self.body(feat))  # long skip over the trunk

    def forward_upsample(self, feat: torch.Tensor) -> torch.Tensor:
        """The image from the trunk's features.

        Each output pixel depends on the features within ``upsample_halo`` pixels, so tiling can run this
        part in bands: at the output's resolution its feature maps are the largest of the network.
        """
        for conv_up in self.upsample_convs():
            feat = self.lrelu(conv_up(F.interpolate(feat, scale_factor=2, mode='nearest')))
        return self.conv_last(self.lrelu(self.conv_hr(feat)))
