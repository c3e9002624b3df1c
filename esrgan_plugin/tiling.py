"""Upscaling in tiles, so that memory stays bounded for arbitrarily large images.

Each tile is run with ``pad`` extra input pixels of context on every side
(clamped at the image border) and only its core is kept. The result equals
running the whole image at once (up to float rounding) when ``pad`` covers the
network's receptive field; ``receptive_radius`` gives that distance. For the
full ESRGAN generator it is 349 LR pixels, far more than practical paddings,
but the influence of distant pixels is tiny (README, "Upscaling your own
images", gives measured differences).
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import torch
from torch.nn import functional as F


def receptive_radius(num_block: int, scale: int = 4) -> int:
    """Input pixels on each side that can influence an output pixel of ``ESRGANRRDBNet``.

    Every 3x3 conv at LR resolution adds one pixel: ``conv_first``, five convs
    on the longest path through each of the three dense blocks of every RRDB,
    and ``conv_body``. The convs after each nearest x2 upsampling add a
    fraction of an LR pixel, which rounds up to 2 in all (checked against
    autograd in tests/test_tiling.py).
    """
    lr_radius = 1 + 15 * num_block + 1 + 2
    if scale == 8:
        return lr_radius  # the third stage's conv stays within the same 2 LR pixels
    factor = {1: 4, 2: 2}.get(scale, 1)
    # Scales 1 and 2 run the x4 body on the pixel-unshuffled input.
    return lr_radius * factor + factor - 1


def _net_device_dtype(net: torch.nn.Module) -> tuple[torch.device, torch.dtype]:
    param = next(net.parameters())
    return param.device, param.dtype


def count_tiles(height: int, width: int, tile: int) -> int:
    """Number of tiles ``upscale_tiled`` runs for an image of this size (1 when not tiling)."""
    if tile <= 0:
        return 1
    return math.ceil(height / tile) * math.ceil(width / tile)


def _pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad bottom/right so both sides divide by ``multiple`` (pixel-unshuffling nets need it)."""
    pad_h, pad_w = -x.shape[-2] % multiple, -x.shape[-1] % multiple
    if not pad_h and not pad_w:
        return x
    # Reflection keeps edge statistics natural; it needs the side to be longer than the pad.
    mode = 'reflect' if min(x.shape[-2:]) > max(pad_h, pad_w) else 'replicate'
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


@torch.inference_mode()
def upscale_tiled(net: torch.nn.Module, tensor: torch.Tensor, tile: int, pad: int,
                  progress: Optional[Callable[[], None]] = None) -> torch.Tensor:
    """Run ``net`` on ``tensor`` (N, C, H, W) tile by tile and return the (N, C', H*s, W*s) output.

    ``tile`` is the tile side in input pixels (0: the whole image at once),
    ``pad`` the context added on each side. Tiles run on the network's device
    and dtype; the output is assembled on ``tensor``'s device in its dtype, so
    on a GPU only one tile is resident at a time. ``progress`` is called after
    each tile.
    """
    scale = int(getattr(net, 'scale', 4))
    factor = int(getattr(net, 'unshuffle', 1))
    height, width = tensor.shape[-2:]
    x = _pad_to_multiple(tensor, factor)
    # Tile edges on multiples of the unshuffle factor keep every tile's pixel grouping the same as the whole image's.
    tile = math.ceil(tile / factor) * factor if tile > 0 else 0
    pad = math.ceil(pad / factor) * factor
    device, dtype = _net_device_dtype(net)
    full_h, full_w = x.shape[-2:]
    if tile <= 0 or (tile >= full_h and tile >= full_w):
        out = net(x.to(device, dtype)).to(tensor.device, tensor.dtype)
        if progress:
            progress()
        return out[..., :height * scale, :width * scale]

    out = None
    for top in range(0, full_h, tile):
        for left in range(0, full_w, tile):
            bottom, right = min(top + tile, full_h), min(left + tile, full_w)
            in_top, in_left = max(top - pad, 0), max(left - pad, 0)
            in_bottom, in_right = min(bottom + pad, full_h), min(right + pad, full_w)
            result = net(x[..., in_top:in_bottom, in_left:in_right].to(device, dtype))
            if out is None:
                out = tensor.new_empty((x.shape[0], result.shape[1], full_h * scale, full_w * scale))
            core = result[..., (top - in_top) * scale:(bottom - in_top) * scale,
                          (left - in_left) * scale:(right - in_left) * scale]
            out[..., top * scale:bottom * scale, left * scale:right * scale] = core.to(tensor.device, tensor.dtype)
            if progress:
                progress()
    return out[..., :height * scale, :width * scale]
