"""MATLAB's bicubic resize of a uint8 image: ``im2uint8(imresize(im2double(img), factor, 'bicubic'))``.

The benchmark LR sets (Set5, Set14, DIV2K's bicubic LR) were made this way, so ``prepare_data`` makes LR images
with it and the results page shows it as the bicubic baseline. basicsr's ``matlab_functions.imresize`` follows
MATLAB's kernel and its antialiasing when shrinking; PIL's and OpenCV's bicubic differ from it.
"""
from __future__ import annotations

import numpy as np


def matlab_bicubic(img: np.ndarray, factor: float) -> np.ndarray:
    """``img`` (uint8, HxW or HxWxC) resized by ``factor`` (< 1 shrinks), rounded back to uint8."""
    from basicsr.utils.matlab_functions import imresize  # imports torch; prepare_data's -h does not wait for it

    # imresize computes in float32, so the image is divided in float32 (for uint8 values the same as in float64).
    resized = imresize(img.astype(np.float32) / 255.0, factor)
    return np.clip(np.round(resized * 255.0), 0, 255).astype(np.uint8)
