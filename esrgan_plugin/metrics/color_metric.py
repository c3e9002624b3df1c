"""Colour shift as a basicsr metric: ``type: calculate_color_shift`` in ``val.metrics``.

The largest shift of a colour channel's mean against the ground truth, in levels of 255 (lower is better). A
network that tints its outputs (a yellowish or bluish cast, white turned #FEFEFE) moves a channel's mean by a
level or more, which PSNR mixes with every other error and NIQE cannot see at all; this number isolates it.
The demo, validation, the test command and the sweep all compute it here.
"""
from __future__ import annotations

import numpy as np
from basicsr.metrics.metric_util import reorder_image
from basicsr.utils.registry import METRIC_REGISTRY

from esrgan_plugin.errors import UserFacingError


def channel_mean_shift(img: np.ndarray, img2: np.ndarray, crop_border: int = 0,
                       input_order: str = 'HWC') -> np.ndarray:
    """Mean of each channel of ``img`` minus that of ``img2``, in levels of 255, channels in the images' order
    (basicsr's metrics take BGR). Samples are taken in basicsr's metric range, 0..255."""
    if img.shape != img2.shape:
        raise UserFacingError(f'color_shift metric: image shapes differ: {img.shape} and {img2.shape}.')
    img, img2 = reorder_image(img, input_order=input_order), reorder_image(img2, input_order=input_order)
    if crop_border:
        img = img[crop_border:-crop_border, crop_border:-crop_border]
        img2 = img2[crop_border:-crop_border, crop_border:-crop_border]
    channels = img.shape[2]
    # float64 sums: an 8-bit image of 100 megapixels sums exactly, and the difference of two means of ~100 is
    # wanted to a hundredth of a level.
    return (img.reshape(-1, channels).mean(0, dtype=np.float64)
            - img2.reshape(-1, channels).mean(0, dtype=np.float64))


@METRIC_REGISTRY.register()
def calculate_color_shift(img: np.ndarray, img2: np.ndarray, crop_border: int = 0, input_order: str = 'HWC',
                          **kwargs) -> float:
    """Largest |shift of a colour channel's mean| of ``img`` against ``img2``, in levels of 255; lower is better.

    Images as basicsr's metrics take them: HWC (or ``input_order``) with values 0..255, ``crop_border`` pixels
    cut off each side. A gray image is one channel.
    """
    return float(np.abs(channel_mean_shift(img, img2, crop_border, input_order)).max())
