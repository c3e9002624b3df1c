"""Pixels decoded by Pillow (``inference.image_io`` says which files): RGB, RGBA, gray or gray with alpha samples.

HEIF/HEIC files are read through the ``pillow-heif`` plugin, registered on first use rather than on import, so
that ``import esrgan_plugin`` stays light. A CMYK picture becomes RGB through its own ICC profile where it has
one (LittleCMS, by Pillow's ``ImageCms``), otherwise by Pillow's conversion, which is how viewers without colour
management show it.
"""
from __future__ import annotations

import functools
import io
from typing import Optional

import numpy as np
from PIL import Image, ImageCms


@functools.lru_cache(maxsize=None)
def register_heif() -> None:
    """Let Pillow open HEIF/HEIC (once per process)."""
    import pillow_heif
    pillow_heif.register_heif_opener()


def _cmyk_to_rgb(image: Image.Image) -> Image.Image:
    icc = image.info.get('icc_profile')
    if icc:
        try:
            return ImageCms.profileToProfile(image, ImageCms.ImageCmsProfile(io.BytesIO(icc)),
                                             ImageCms.createProfile('sRGB'), outputMode='RGB')
        except (ImageCms.PyCMSError, OSError):
            pass  # a damaged or non-CMYK profile: shown as if it had none
    return image.convert('RGB')


def has_transparency(image: Image.Image) -> bool:
    """Whether the opened frame has an alpha channel or a transparent colour."""
    return image.mode in ('RGBA', 'RGBa', 'LA', 'La', 'PA') or 'transparency' in image.info


def pillow_samples(image: Image.Image, keep_alpha: Optional[bool] = None) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """The current frame's samples as (color, alpha): color H x W x 3 RGB or H x W gray, alpha H x W or None.

    Samples stay integers (8 or 16 bits) or float32, as stored. ``keep_alpha`` forces an alpha channel on or
    off (every frame of an animation the same); None keeps the frame's own.
    """
    alpha_wanted = has_transparency(image) if keep_alpha is None else keep_alpha
    mode = image.mode
    if mode.startswith('I;16') or mode in ('I', 'F'):
        samples = np.asarray(image)
        color = samples.astype(np.float32) if mode == 'F' else np.clip(samples, 0, 65535).astype(np.uint16)
        return color, (np.full(color.shape, np.iinfo(np.uint16).max, np.uint16) if alpha_wanted else None)
    if mode == 'CMYK':
        image = _cmyk_to_rgb(image)
    elif mode in ('1', 'L', 'LA', 'La') and image.info.get('transparency') is None:
        image = image.convert('LA' if alpha_wanted else 'L')
    else:
        image = image.convert('RGBA' if alpha_wanted else 'RGB')
    samples = np.asarray(image)
    if samples.ndim == 3 and samples.shape[2] in (2, 4):
        return samples[..., :-1] if samples.shape[2] == 4 else samples[..., 0], samples[..., -1]
    return samples, None
