"""Reading pictures as ``infer`` does, any image OpenCV decodes, and what their outputs are written as.

Gray stays gray, an alpha channel is kept, 16-bit stays 16-bit where the output format can hold it
(``output_dtype``); ``output_path`` names the file, ``LOSSY_QUALITY`` sets JPEG and WebP quality. A picture is
floats in [0, 1] from reading to upscaling; ``inference.upscale.write_upscaled`` writes the result.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

from esrgan_plugin.data.image_store import IMAGE_EXTENSIONS  # the pictures infer reads, as prepare_data does
from esrgan_plugin.errors import UserFacingError


class ImageReadError(UserFacingError):
    """One input file that cannot be used; the command reports it and goes on with the others."""


@dataclass
class Picture:
    """An image as floats in [0, 1]: ``color`` is H x W x 3 (RGB) or H x W (gray); ``alpha`` H x W or None."""
    color: np.ndarray
    alpha: Optional[np.ndarray]
    dtype: np.dtype  # the file's sample type, kept for writing


def read_image(path: str) -> Picture:
    """Read any image OpenCV can decode, without changing its channels or bit depth.

    Raises:
        ImageReadError: the file is missing, not an image, corrupt, or of an unsupported sample type.
    """
    try:
        data = np.fromfile(path, dtype=np.uint8)  # np.fromfile + imdecode also handles non-ASCII paths
    except OSError as err:
        raise ImageReadError(f'cannot read {path}: {err.strerror}; skipped.') from None
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise ImageReadError(f'{path} is not an image OpenCV can decode (corrupt or unsupported format); skipped.')
    if img.dtype not in (np.uint8, np.uint16, np.float32):
        raise ImageReadError(f'{path} has {img.dtype} samples; only 8-bit, 16-bit and float32 images are '
                             'supported; skipped.')
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim == 3 and img.shape[2] not in (3, 4):
        raise ImageReadError(f'{path} has {img.shape[2]} channels; only gray, RGB and RGBA are supported; skipped.')
    color = img if img.ndim == 2 else img[..., 2::-1]  # OpenCV's BGR to RGB
    alpha = img[..., 3] if img.ndim == 3 and img.shape[2] == 4 else None
    return Picture(_unit_floats(color), None if alpha is None else _unit_floats(alpha), img.dtype)


def _unit_floats(samples: np.ndarray) -> np.ndarray:
    """Samples as a new C-ordered float32 array in [0, 1]: integers over their full scale, floats clipped.

    One float array is made, not two: for a large photo each copy is
    hundreds of megabytes.
    """
    if samples.dtype == np.float32:
        return np.ascontiguousarray(np.clip(samples, 0, 1))  # float TIFFs are taken to hold [0, 1]
    values = samples.astype(np.float32, order='C')
    values /= np.iinfo(samples.dtype).max
    return values


def full_scale(img: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Floats in [0, 1] as the values of ``dtype``'s samples (rounded, still float), floats unchanged."""
    if dtype == np.float32:
        return img
    img *= np.iinfo(dtype).max
    return np.round(img, out=img)


def resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize to (width, height): Lanczos when enlarging, area averaging when shrinking (no aliasing)."""
    if (img.shape[1], img.shape[0]) == size:
        return img
    shrinking = size[0] < img.shape[1] or size[1] < img.shape[0]
    resized = cv2.resize(img, size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LANCZOS4)
    return np.clip(resized, 0, 1) if img.dtype == np.float32 else resized  # integers saturate in OpenCV


def output_dtype(input_dtype: np.dtype, ext: str) -> np.dtype:
    """Keep 16-bit (and float TIFF) depth where the format can hold it; otherwise 8-bit."""
    if ext in ('.png', '.tif', '.tiff') and input_dtype in (np.uint16, np.float32):
        return np.dtype(np.float32) if (input_dtype == np.float32 and ext != '.png') else np.dtype(np.uint16)
    return np.dtype(np.uint8)


def output_path(input_path: str, out_dir: str, suffix: str, ext: str, has_alpha: bool) -> str:
    """``<out_dir>/<stem><suffix>.<ext>``; 'auto' keeps the input's format unless it cannot hold alpha."""
    stem, in_ext = os.path.splitext(os.path.basename(input_path))
    out_ext = in_ext.lower() if ext == 'auto' else f'.{ext}'
    if out_ext not in IMAGE_EXTENSIONS or (has_alpha and out_ext in ('.jpg', '.jpeg')):
        out_ext = '.png'
    return os.path.join(out_dir, f'{stem}{suffix}{out_ext}')


LOSSY_QUALITY = {'.jpg': [cv2.IMWRITE_JPEG_QUALITY, 95], '.jpeg': [cv2.IMWRITE_JPEG_QUALITY, 95],
                  '.webp': [cv2.IMWRITE_WEBP_QUALITY, 95]}
