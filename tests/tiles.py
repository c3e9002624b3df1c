"""The whole output of ``tiling.iter_tiles`` as one tensor, for tests that compare tiled runs with the network
run whole (the infer command paints the tiles straight into the image it writes, ``upscale.upscale_to_array``)."""
from typing import Callable, Optional

import torch

from esrgan_plugin.inference.tiling import iter_tiles


def tiled_output(net: torch.nn.Module, x: torch.Tensor, tile: int, pad: int,
                 progress: Optional[Callable[[], None]] = None) -> torch.Tensor:
    """(N, C', H*s, W*s) on ``x``'s device in its dtype; ``progress`` is called after each window. A pixel no tile
    covers stays NaN, so a comparison with the whole network's output shows it."""
    scale = int(getattr(net, 'scale', 4))
    out = None
    for piece in iter_tiles(net, x, tile, pad):
        if out is None:
            out = x.new_full((x.shape[0], piece.output.shape[1], x.shape[-2] * scale, x.shape[-1] * scale),
                             float('nan'))
        out[..., piece.rows, piece.cols] = piece.output.to(x.device, x.dtype)
        if progress and piece.window_done:
            progress()
    return out
