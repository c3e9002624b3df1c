"""Reading pictures as ``infer`` does, photos as they are shown, and what their outputs are written as.

A photo's EXIF orientation is applied; its colour profile, EXIF and XMP travel with it (``inference.photo_metadata``)
and an animation's frames are read one at a time when written (``inference.animation``). Gray stays gray, an alpha
channel is kept, 16-bit stays 16-bit where the output format can hold it (``output_dtype``); ``output_path`` names
the file, ``encode`` makes its bytes, ``LOSSY_QUALITY`` sets JPEG and WebP quality. A picture is floats in [0, 1]
from reading to upscaling; ``inference.upscale.write_upscaled`` writes the result.
"""
from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass, replace
from typing import Optional

import cv2
import numpy as np
from PIL import Image

from esrgan_plugin.data.image_store import IMAGE_EXTENSIONS
from esrgan_plugin.errors import UserFacingError
from esrgan_plugin.inference.animation import (ANIMATED_EXTENSIONS, ANIMATED_FORMATS, Animation, as_gif_frame,
                                               as_pillow, read_animation)
from esrgan_plugin.inference.metadata_embed import Piece, embed_metadata
from esrgan_plugin.inference.photo_metadata import PhotoMetadata, orient, read_metadata
from esrgan_plugin.inference.pillow_decode import pillow_samples, register_heif

# The files infer reads: the datasets' images, and the formats of phones and the web, which only Pillow (and its
# pillow-heif plugin) decodes. Datasets leave them out: their lossy, 8-bit, often animated pictures make poor
# training targets, and data loaders read with OpenCV.
PHOTO_EXTENSIONS = IMAGE_EXTENSIONS + ('.gif', '.apng', '.heic', '.heif', '.avif')
# What infer writes. HEIF and AVIF become PNG: their encoders are slow and lossy at the sizes an upscale makes.
WRITTEN_EXTENSIONS = IMAGE_EXTENSIONS + ('.gif', '.apng')


class ImageReadError(UserFacingError):
    """One input file that cannot be used; the command reports it and goes on with the others."""


@dataclass
class Picture:
    """An image as floats in [0, 1]: ``color`` is H x W x 3 (RGB) or H x W (gray); ``alpha`` H x W or None."""
    color: np.ndarray
    alpha: Optional[np.ndarray]
    dtype: np.dtype  # the file's sample type, kept for writing
    metadata: PhotoMetadata = PhotoMetadata()  # what the output keeps: colour profile, EXIF, XMP
    animation: Optional[Animation] = None  # the frames of an animated file, this picture the first of them

    @property
    def frames(self) -> int:
        return 1 if self.animation is None else len(self.animation.durations)


def read_image(path: str) -> Picture:
    """Read a photo as it is shown: its EXIF orientation applied, its metadata and any animation kept.

    The pixels come from OpenCV where it decodes the format exactly (16-bit and float samples, gray, alpha),
    from Pillow where OpenCV would lose something or cannot read the file (``_decoded_by_pillow``).

    Raises:
        ImageReadError: the file is missing, not an image, corrupt, or of an unsupported sample type.
    """
    try:
        data = np.fromfile(path, dtype=np.uint8)  # np.fromfile + imdecode also handles non-ASCII paths
    except OSError as err:
        raise ImageReadError(f'cannot read {path}: {err.strerror}; skipped.') from None
    orientation, metadata, animation, samples = 1, PhotoMetadata(), None, None
    header = _open_with_pillow(path) if data.size else None
    if header is not None:
        with header:
            try:
                orientation, metadata = read_metadata(header)
                if getattr(header, 'n_frames', 1) > 1 and header.format in ANIMATED_FORMATS:
                    animation = read_animation(header, path, orientation)
                if _decoded_by_pillow(header):
                    samples = pillow_samples(header, animation and animation.has_alpha)
                    if header.mode == 'CMYK':  # now sRGB: the CMYK profile no longer describes it
                        metadata = replace(metadata, icc_profile=None)
            except (OSError, ValueError, SyntaxError, EOFError) as err:  # what Pillow raises on damaged data
                raise ImageReadError(f'{path} cannot be decoded ({err}); skipped.') from None
    if samples is not None:  # made into floats once Pillow's copy of the pixels is freed
        return picture_from_samples(*samples, orientation, metadata, animation)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise ImageReadError(f'{path} is not an image OpenCV or Pillow can decode (corrupt or unsupported '
                             'format); skipped.')
    if img.dtype not in (np.uint8, np.uint16, np.float32):
        raise ImageReadError(f'{path} has {img.dtype} samples; only 8-bit, 16-bit and float32 images are '
                             'supported; skipped.')
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim == 3 and img.shape[2] not in (3, 4):
        raise ImageReadError(f'{path} has {img.shape[2]} channels; only gray, RGB and RGBA are supported; skipped.')
    color = img if img.ndim == 2 else img[..., 2::-1]  # OpenCV's BGR to RGB
    alpha = img[..., 3] if img.ndim == 3 and img.shape[2] == 4 else None
    return picture_from_samples(color, alpha, orientation, metadata)


def picture_from_samples(color: np.ndarray, alpha: Optional[np.ndarray], orientation: int = 1,
                         metadata: PhotoMetadata = PhotoMetadata(), animation: Optional[Animation] = None) -> Picture:
    """A picture of decoded samples (RGB or gray, alpha or None), turned upright (``photo_metadata.orient``)."""
    color, alpha = orient(color, orientation), None if alpha is None else orient(alpha, orientation)
    return Picture(_unit_floats(color), None if alpha is None else _unit_floats(alpha), color.dtype, metadata,
                   animation)


def _open_with_pillow(path: str) -> Optional[Image.Image]:
    """The file opened by Pillow (its header read, not its pixels), or None where Pillow does not know it."""
    register_heif()
    try:
        with warnings.catch_warnings():
            # The user chose the file: Pillow's guard against small files of huge size is no reason to warn.
            warnings.simplefilter('ignore', Image.DecompressionBombWarning)
            return Image.open(path)
    except Image.DecompressionBombError:
        return None  # over Pillow's limit (about 179 megapixels): OpenCV reads up to 2**30 pixels, stored as is
    except (OSError, ValueError, SyntaxError):
        return None  # OpenCV may still read it; if not, the caller says so


def _decoded_by_pillow(header: Image.Image) -> bool:
    """Pillow where OpenCV loses something: JPEG (whose CMYK OpenCV renders without Adobe's inversion, and whose
    profile and orientation Pillow reads in the same pass), the formats OpenCV does not read (HEIF, AVIF, GIF),
    CMYK in any format, and animations. OpenCV everywhere else: it keeps 16-bit colour and float samples, which
    Pillow turns into 8-bit or cannot hold."""
    return (header.format in ('JPEG', 'MPO', 'HEIF', 'AVIF', 'GIF') or header.mode == 'CMYK'
            or (header.format in ANIMATED_FORMATS and getattr(header, 'n_frames', 1) > 1))


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


def output_path(input_path: str, out_dir: str, suffix: str, ext: str, has_alpha: bool,
                animated: bool = False) -> str:
    """``<out_dir>/<stem><suffix>.<ext>``; 'auto' keeps the input's format where it can be written well and can
    hold the picture (alpha, frames), PNG otherwise (HEIF and AVIF included; an animation becomes an APNG)."""
    stem, in_ext = os.path.splitext(os.path.basename(input_path))
    out_ext = in_ext.lower() if ext == 'auto' else f'.{ext}'
    if (out_ext not in WRITTEN_EXTENSIONS or (has_alpha and out_ext in ('.jpg', '.jpeg'))
            or (animated and out_ext not in ANIMATED_EXTENSIONS)):
        out_ext = '.png'
    return os.path.join(out_dir, f'{stem}{suffix}{out_ext}')


def encode(img: np.ndarray, path: str, metadata: PhotoMetadata) -> list[Piece]:
    """``img`` (OpenCV's layout) encoded as ``path``'s extension says, with ``metadata`` where the format holds it
    (``metadata_embed``): the pieces of the file, in order."""
    ext = os.path.splitext(path)[1].lower()
    if ext == '.gif':  # OpenCV's GIF writer gives a still picture a loop and a one-second frame, and frays alpha
        gif = io.BytesIO()
        frame = as_gif_frame(as_pillow(img))
        frame.save(gif, format='GIF', **{k: v for k, v in frame.info.items() if k == 'transparency'})
        return [gif.getvalue()]
    ok, buf = cv2.imencode('.png' if ext == '.apng' else ext, img, LOSSY_QUALITY.get(ext, []))
    if not ok:
        raise OSError(f'OpenCV could not encode an image as {ext} for {path}.')
    has_alpha = img.ndim == 3 and img.shape[2] == 4
    return embed_metadata(memoryview(buf).cast('B'), '.png' if ext == '.apng' else ext, metadata,
                          (img.shape[1], img.shape[0]), has_alpha)


LOSSY_QUALITY = {'.jpg': [cv2.IMWRITE_JPEG_QUALITY, 95], '.jpeg': [cv2.IMWRITE_JPEG_QUALITY, 95],
                  '.webp': [cv2.IMWRITE_WEBP_QUALITY, 95]}
