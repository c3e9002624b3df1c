"""Upscaling in tiles, so that memory stays bounded for arbitrarily large images.

Each tile's core is run inside a window of ``pad`` extra input pixels of
context on every side; only the core's output is kept. Windows near the image
border slide inwards rather than shrink, so every window has the same size
(one shape to compile, and more context for border tiles). The result equals
running the whole image at once (up to float rounding) when ``pad`` covers the
network's receptive field; ``receptive_radius`` gives that distance. For the
full ESRGAN generator it is 349 LR pixels, far more than practical paddings,
but the influence of distant pixels decays fast (docs/benchmarks.md#tile-seams gives the
measured differences with trained weights).

``iter_tiles`` hands out the tiles one at a time, so a caller can turn each
into its final 8/16-bit form and never hold the whole output in float.
"""
from __future__ import annotations

import math
from typing import Iterator, NamedTuple

import torch
from torch.nn import functional as F


def receptive_radius(num_block: int, scale: int = 4) -> int:
    """Input pixels on each side that can influence an output pixel of ``ESRGANRRDBNet``.

    Every 3x3 conv at LR resolution adds one pixel: ``conv_first``, five convs
    on the longest path through each of the three dense blocks of every RRDB,
    and ``conv_body``. The convs after each nearest x2 upsampling add a
    fraction of an LR pixel, which rounds up to 2 in all (checked against
    autograd in tests/inference/test_tiling.py).
    """
    lr_radius = 1 + 15 * num_block + 1 + 2
    if scale == 8:
        return lr_radius  # the third stage's conv stays within the same 2 LR pixels
    factor = {1: 4, 2: 2}.get(scale, 1)
    # Scales 1 and 2 run the x4 body on the pixel-unshuffled input.
    return lr_radius * factor + factor - 1


def net_device_dtype(net: torch.nn.Module) -> tuple[torch.device, torch.dtype]:
    """Where and in which dtype ``net`` computes (its first parameter's)."""
    param = next(net.parameters())
    return param.device, param.dtype


def net_memory_format(net: torch.nn.Module) -> torch.memory_format:
    """channels_last when the net's first conv weight is laid out so (``fast_inference``), else contiguous NCHW.

    Windows are handed over in the net's own layout: a fp32 net then sees exactly
    the NCHW input it would get from the user, and its output stays bit-exact.
    """
    param = next(net.parameters())
    if param.dim() == 4 and not param.is_contiguous() and param.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def count_tiles(height: int, width: int, tile: int, pad: int = 0) -> int:
    """Number of tiles ``iter_tiles`` runs for an image of this size (1 when not tiling)."""
    if tile <= 0:
        return 1
    return len(_axis_windows(height, tile, pad)) * len(_axis_windows(width, tile, pad))


def _pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad bottom/right so both sides divide by ``multiple`` (pixel-unshuffling nets need it)."""
    pad_h, pad_w = -x.shape[-2] % multiple, -x.shape[-1] % multiple
    if not pad_h and not pad_w:
        return x
    # Reflection keeps edge statistics natural; it needs the side to be longer than the pad.
    mode = 'reflect' if min(x.shape[-2:]) > max(pad_h, pad_w) else 'replicate'
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


def _axis_windows(length: int, tile: int, pad: int) -> list[tuple[int, int, int]]:
    """Along one axis: (core start, core end, window start) of every tile; windows are all ``tile + 2 pad`` long.

    A window that would cross the border slides back inside, so its core gets
    more context on the inner side instead of less. When one window covers
    the whole axis there is one tile: splitting it would only repeat work.
    """
    size = tile + 2 * pad
    if size >= length:
        return [(0, length, 0)]
    return [(start, min(start + tile, length), min(max(start - pad, 0), length - size))
            for start in range(0, length, tile)]


def window_shape(height: int, width: int, tile: int, pad: int, factor: int = 1) -> tuple[int, int]:
    """Input pixels (rows, columns) of the windows ``iter_tiles`` runs on an image of this size; all have it.

    ``factor`` is the net's pixel-unshuffle factor: the image is padded to its multiple, and ``tile`` and
    ``pad`` are rounded up to it, as ``iter_tiles`` does.
    """
    full_h, full_w = -(-height // factor) * factor, -(-width // factor) * factor
    tile = -(-tile // factor) * factor if tile > 0 else max(full_h, full_w)
    pad = -(-pad // factor) * factor
    return tuple(full if len(_axis_windows(full, tile, pad)) == 1 else tile + 2 * pad
                 for full in (full_h, full_w))


class Tile(NamedTuple):
    """One piece of output: rows and columns of the full (cropped) output it fills, and the values there."""
    rows: slice
    cols: slice
    output: torch.Tensor  # N x C' x h x w, on the net's device and in its dtype
    window_done: bool = True  # the last piece of its window (progress counts windows)


# Output pixels of one band of the upsampling stage (``_core_outputs``): the feature maps there are the
# network's largest (num_feat channels at the output's resolution), and at this size they stay a few hundred MB.
BAND_PIXELS = 1 << 20


def band_rows(feature_cols: int, step: int) -> int:
    """Feature rows of one band of the upsampling stage that is ``feature_cols`` wide (``_core_outputs``).

    ``step`` is the output pixels per feature pixel (4 for the x4 body, 8 at x8).
    """
    return max(BAND_PIXELS // (feature_cols * step * step), 1)


def _core_outputs(net: torch.nn.Module, window: torch.Tensor, rows: tuple[int, int],
                  cols: tuple[int, int]) -> Iterator[tuple[int, int, torch.Tensor, bool]]:
    """The output of ``net`` on ``window`` within ``rows`` x ``cols`` (output pixels), in pieces.

    Each piece is (row, col, values, is_last), its place in output pixels of the window.

    A net that splits into ``forward_trunk`` and ``forward_upsample`` and says how far the latter reaches
    (``upsample_halo``: ``ESRGANRRDBNet``; a compiled net does not) runs its upsampling stage on the core's
    features only, with that many features of context,
    and in bands of about ``BAND_PIXELS`` output pixels: the same values (each output pixel sees the same
    features), without computing the context's output or holding the whole window's output at once.
    Other nets run whole and are cropped.
    """
    halo = getattr(type(net), 'upsample_halo', None)  # on the class: a compiled wrapper must run whole
    if halo is None:
        out = net(window)
        yield rows[0], cols[0], out[..., rows[0]:rows[1], cols[0]:cols[1]], True
        return
    feat = net.forward_trunk(window)
    step = window.shape[-1] * int(getattr(net, 'scale', 4)) // feat.shape[-1]  # output pixels per feature pixel
    feat_h, feat_w = feat.shape[-2:]
    # The core in feature pixels (rounded outwards), and the context columns its output needs.
    first, last = rows[0] // step, -(-rows[1] // step)
    left, right = max(cols[0] // step - halo, 0), min(-(-cols[1] // step) + halo, feat_w)
    band = band_rows(right - left, step)
    for top in range(first, last, band):
        bottom = min(top + band, last)
        lo, hi = max(top - halo, 0), min(bottom + halo, feat_h)
        out = net.forward_upsample(feat[..., lo:hi, left:right])
        # Crop to the band's own rows and the core's columns, in output pixels of the window.
        row0, row1 = max(top * step, rows[0]), min(bottom * step, rows[1])
        yield (row0, cols[0], out[..., row0 - lo * step:row1 - lo * step, cols[0] - left * step:cols[1] - left * step],
               bottom == last)


@torch.inference_mode()
def iter_tiles(net: torch.nn.Module, tensor: torch.Tensor, tile: int, pad: int) -> Iterator[Tile]:
    """Run ``net`` on ``tensor`` (N, C, H, W) window by window, yielding the output of each core in pieces.

    ``tile`` is the tile side in input pixels (0: the whole image at once),
    ``pad`` the context added on each side. The pieces together cover the
    (H*s, W*s) output exactly once; a window may give several (``Tile.window_done``
    marks its last). Tiles run on the network's device and dtype; only one window
    is resident there at a time.
    """
    scale = int(getattr(net, 'scale', 4))
    factor = int(getattr(net, 'unshuffle', 1))
    height, width = tensor.shape[-2:]
    x = _pad_to_multiple(tensor, factor)
    # Tile edges on multiples of the unshuffle factor keep every tile's pixel grouping the same as the whole image's.
    full_h, full_w = x.shape[-2:]
    win_h, win_w = window_shape(height, width, tile, pad, factor)
    tile = math.ceil(tile / factor) * factor if tile > 0 else max(full_h, full_w)
    pad = math.ceil(pad / factor) * factor
    device, dtype = net_device_dtype(net)
    layout = net_memory_format(net)
    row_windows, col_windows = _axis_windows(full_h, tile, pad), _axis_windows(full_w, tile, pad)
    for top, bottom, in_top in row_windows:
        for left, right, in_left in col_windows:
            window = x[..., in_top:in_top + win_h, in_left:in_left + win_w]
            # The core in output pixels of the window; cropping to the unpadded size drops what came from the
            # multiple-of-factor padding.
            rows = ((top - in_top) * scale, min(bottom, height) * scale - in_top * scale)
            cols = ((left - in_left) * scale, min(right, width) * scale - in_left * scale)
            if rows[1] <= rows[0] or cols[1] <= cols[0]:
                continue
            window = window.to(device, dtype).contiguous(memory_format=layout)
            for row, col, out, is_last in _core_outputs(net, window, rows, cols):
                yield Tile(slice(in_top * scale + row, in_top * scale + row + out.shape[-2]),
                           slice(in_left * scale + col, in_left * scale + col + out.shape[-1]), out, is_last)

