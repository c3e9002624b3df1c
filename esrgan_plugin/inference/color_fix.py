"""Colour fix of an upscaled image: its low frequencies brought back to the input's (``infer --color-fix``).

A super-resolution network may tint its output (a yellowish or bluish cast, white turned #FEFEFE). The input
fixes the colours (the low frequencies), the network adds detail (the high frequencies); both fixes keep the
output's detail and take its colours from the input:

* ``mean``: each channel is mapped affinely so that its mean and standard deviation equal the input's. The
  output's statistics are taken from its area-downscale to the input's size, so that both are compared at the
  same resolution: the detail the network adds (which no upscale of the input has) is left out of the match
  instead of being flattened towards a bicubic image's smaller spread. The area-downscale's mean is the
  output's mean, so the mean is matched to the input's exactly; a bicubic upscale of the input has that mean too
  (up to its border).
* ``wavelet``: the output's lowest band of an à-trous decomposition (``LEVELS`` Gaussian blurs, 3 x 3 kernel
  dilated 1, 2, 4, ...) is replaced with that band of a bicubic upscale of the input: output - blur(output) +
  blur(bicubic). The blur reaches ``wavelet_radius()`` output pixels, so the fix is local.

Both run after the network, on the output as it is written (``upscale_to_array``'s canvas), in bands of rows of
about ``BAND_PIXELS`` output pixels: memory stays bounded by a band, not the image, and the result does not
depend on how the network was tiled, because it depends only on the finished output, never on a tile. The
mean fix needs the whole output's statistics before it can change any pixel, which a single pass over the
tiles cannot give without holding the output in float or running the network twice; a pass over the written
output gives them at the cost of rounding twice (an 8-bit output's samples may differ by one level from a fix
applied before rounding). The wavelet fix reads each band with ``wavelet_radius()`` rows of context, the only
reach its blur has, so bands join without seams.
"""
from __future__ import annotations

from typing import Iterator

import cv2
import numpy as np

from esrgan_plugin.choices import COLOR_FIXES

# The à-trous levels of the wavelet fix: 5 levels (the colour-fix tools of the field use 5) blur over
# 2^5 - 1 = 31 output pixels, a few input pixels at x4: a colour cast, not detail.
LEVELS = 5
# Output pixels per band of the pass over the output: a few float copies of a band stay within tens of MB.
BAND_PIXELS = 1 << 20


def wavelet_radius(levels: int = LEVELS) -> int:
    """Output pixels on each side that the wavelet fix of one pixel reads: one per blur of dilation 1, 2, 4, ..."""
    return 2**levels - 1


def _as_float(samples: np.ndarray) -> np.ndarray:
    """Samples as float32 in [0, 1] (integers over their full scale), a new array."""
    if samples.dtype == np.float32:
        return samples.astype(np.float32, copy=True)
    return samples.astype(np.float32) / np.float32(np.iinfo(samples.dtype).max)


def _store(values: np.ndarray, target: np.ndarray) -> None:
    """Write floats in [0, 1] into ``target`` in its own sample type (integers rounded at full scale)."""
    np.clip(values, 0, 1, out=values)
    if target.dtype == np.float32:
        target[...] = values
    else:
        target[...] = np.round(values * np.iinfo(target.dtype).max)


def _bands(height: int, width: int, scale: int) -> Iterator[tuple[int, int]]:
    """(first row, end row) of the output's bands; each a multiple of ``scale`` rows, so it starts on an input row."""
    rows = max(BAND_PIXELS // max(width, 1) // scale, 1) * scale
    for top in range(0, height, rows):
        yield top, min(top + rows, height)


def low_band(img: np.ndarray, levels: int = LEVELS) -> np.ndarray:
    """The lowest band of the à-trous decomposition of ``img`` (H x W or H x W x C float32): ``levels`` blurs
    with the 3 x 3 kernel [1 2 1]/4 x [1 2 1]/4 dilated 1, 2, 4, ..., the image's edge replicated."""
    for level in range(levels):
        gap = 2**level
        kernel = np.zeros(2 * gap + 1, np.float32)
        kernel[[0, gap, 2 * gap]] = (0.25, 0.5, 0.25)
        img = cv2.sepFilter2D(img, cv2.CV_32F, kernel, kernel, borderType=cv2.BORDER_REPLICATE)
    return img


def bicubic_rows(lr: np.ndarray, scale: int, top: int, bottom: int) -> np.ndarray:
    """Rows ``top:bottom`` (output pixels, multiples of ``scale``) of the bicubic x``scale`` upscale of ``lr``
    (float32), computed from the input rows they need, so a band never upscales the whole image.

    OpenCV's bicubic reads two input pixels on each side of the one an output pixel falls in; with that much
    input context the band's values are those of the whole image's upscale.
    """
    first, last = top // scale, -(-bottom // scale)
    lo, hi = max(first - 2, 0), min(last + 2, lr.shape[0])
    # Output rows within two input pixels of a cut differ from the whole image's; they are outside top:bottom
    # unless the cut is the image's own edge, which the whole image's upscale has too.
    up = cv2.resize(lr[lo:hi], (lr.shape[1] * scale, (hi - lo) * scale), interpolation=cv2.INTER_CUBIC)
    return up[top - lo * scale:bottom - lo * scale]


def wavelet_fix(canvas: np.ndarray, lr: np.ndarray, scale: int) -> None:
    """Replace the lowest wavelet band of ``canvas`` (the output, H*s x W*s [x C]) with that of the bicubic upscale
    of ``lr`` (the input, H x W [x C] float32 in [0, 1], the canvas's channel order), in place, band by band."""
    radius = wavelet_radius()
    # Each band is computed with ``radius`` rows of context (rounded up to input rows) on each side and cropped:
    # the blurs' edge handling reaches only ``radius`` rows into the band, so the kept rows are the whole image's.
    margin = -(-radius // scale) * scale
    above = None  # the unfixed rows just above the band: the canvas holds them fixed already
    for top, bottom in _bands(canvas.shape[0], canvas.shape[1], scale):
        below = _as_float(canvas[top:min(bottom + margin, canvas.shape[0])])
        out = below if above is None else np.concatenate([above, below])
        lo = top - (0 if above is None else len(above))
        fixed = out - low_band(out)
        fixed += low_band(bicubic_rows(lr, scale, lo, lo + len(out)))
        above = out[max(bottom - margin, 0) - lo:bottom - lo].copy()
        _store(fixed[top - lo:bottom - lo], canvas[top:bottom])


def _channel_sums(img: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    flat = img.reshape(-1, img.shape[2] if img.ndim == 3 else 1).astype(np.float64)
    return flat.sum(0), np.square(flat).sum(0), flat.shape[0]


def _mean_std(sums: np.ndarray, squares: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    mean = sums / count
    return mean, np.sqrt(np.maximum(squares / count - mean**2, 0))


def mean_std_fix(canvas: np.ndarray, lr: np.ndarray, scale: int) -> None:
    """Map each channel of ``canvas`` (the output) affinely so that its area-downscale to ``lr``'s size has
    ``lr``'s mean and standard deviation, in place, band by band (two passes over the output)."""
    channels = canvas.shape[2] if canvas.ndim == 3 else 1
    width = lr.shape[1]
    totals = [np.zeros(channels), np.zeros(channels), 0], [np.zeros(channels), np.zeros(channels), 0]
    for top, bottom in _bands(canvas.shape[0], canvas.shape[1], scale):
        # The input's rows of this band, and the band's area-downscale to them (block means of scale x scale).
        blocks = _as_float(canvas[top:bottom]).reshape((bottom - top) // scale, scale, width, scale, channels)
        for total, part in zip(totals, (lr[top // scale:bottom // scale], blocks.mean(axis=(1, 3)))):
            sums, squares, count = _channel_sums(part)
            total[0] += sums
            total[1] += squares
            total[2] += count
    (lr_mean, lr_std), (out_mean, out_std) = (_mean_std(*total) for total in totals)
    # A flat output channel has no spread to scale: only its mean is moved.
    gain = np.where(out_std > 1e-6, lr_std / np.maximum(out_std, 1e-6), 1.0).astype(np.float32)
    offset = (lr_mean - gain * out_mean).astype(np.float32)
    if canvas.ndim == 2:
        gain, offset = gain[0], offset[0]
    for top, bottom in _bands(canvas.shape[0], canvas.shape[1], scale):
        values = _as_float(canvas[top:bottom])
        values *= gain
        values += offset
        _store(values, canvas[top:bottom])


def apply_color_fix(mode: str, canvas: np.ndarray, lr: np.ndarray, scale: int) -> None:
    """``infer --color-fix``: 'none', 'mean' or 'wavelet' (module docstring) on ``canvas``, the output of ``lr``
    upscaled x``scale`` (H*s x W*s [x C] in any sample type, channels in ``lr``'s order), in place."""
    if mode not in COLOR_FIXES:
        raise ValueError(f'color fix {mode!r} is not one of {", ".join(COLOR_FIXES)}')
    if mode == 'none':
        return
    if canvas.shape[:2] != (lr.shape[0] * scale, lr.shape[1] * scale):
        raise ValueError(f'the output {canvas.shape[:2]} is not the input {lr.shape[:2]} upscaled x{scale}')
    (mean_std_fix if mode == 'mean' else wavelet_fix)(canvas, lr, scale)
