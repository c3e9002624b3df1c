"""Animated GIF, WebP and PNG (APNG): their frames read one at a time, and written again with their timing.

Pillow composes each frame onto the canvas as the file says (disposal, blending), so every frame read is a whole
picture; the output is written as whole frames. The durations (milliseconds, per frame) and the loop count are
kept; a GIF without a loop count plays once, and so does its output in any format.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable, Iterator, Optional

import numpy as np
from PIL import Image

from esrgan_plugin import fileio
from esrgan_plugin.inference.photo_metadata import PhotoMetadata
from esrgan_plugin.inference.pillow_decode import has_transparency, pillow_samples

ANIMATED_FORMATS = ('GIF', 'PNG', 'WEBP')  # Pillow's names of the formats read as animations
ANIMATED_EXTENSIONS = ('.gif', '.png', '.apng', '.webp')  # the outputs that hold one
_WRITER = {'.gif': 'GIF', '.png': 'PNG', '.apng': 'PNG', '.webp': 'WEBP'}
_WEBP_QUALITY = 95  # as the still WebPs infer writes (image_io.LOSSY_QUALITY)
_GIF_TRANSPARENT = 255  # the palette index of transparent pixels in a GIF output


@dataclass(frozen=True)
class Animation:
    """An animated file's timing; its frames are read from ``path`` when they are upscaled (``frames``)."""
    path: str
    durations: tuple[int, ...]  # milliseconds each frame is shown
    loop: Optional[int]  # the file's loop count (0: forever); None: played once, no count stored (GIF)
    has_alpha: bool  # any frame has transparency: every frame is read with an alpha channel
    orientation: int = 1  # the file's EXIF orientation, applied to every frame (photo_metadata.orient)

    def frames(self) -> Iterator[tuple[np.ndarray, Optional[np.ndarray]]]:
        """Each frame's (color, alpha) samples, as ``pillow_decode.pillow_samples`` gives them."""
        with Image.open(self.path) as image:
            for index in range(len(self.durations)):
                image.seek(index)
                yield pillow_samples(image, keep_alpha=self.has_alpha)


def read_animation(image: Image.Image, path: str, orientation: int = 1) -> Animation:
    """The timing of an opened animated file (each frame is decoded once for it); ``image`` is left at frame 0."""
    durations, has_alpha = [], False
    for index in range(image.n_frames):
        image.seek(index)
        image.load()  # WebP gives a frame's duration only once it is decoded, GIF its mode
        durations.append(int(image.info.get('duration') or 0))
        has_alpha = has_alpha or has_transparency(image)
    image.seek(0)
    return Animation(path, tuple(durations), image.info.get('loop'), has_alpha, orientation)


def as_pillow(frame: np.ndarray) -> Image.Image:
    """An 8-bit frame in OpenCV's layout (BGR, BGRA or gray) as a Pillow image (RGB, RGBA or L)."""
    if frame.ndim == 2:
        return Image.fromarray(frame)
    return Image.fromarray(np.ascontiguousarray(frame[..., [2, 1, 0, 3][:frame.shape[2]]]))


def as_gif_frame(image: Image.Image) -> Image.Image:
    """An RGB or RGBA Pillow image as GIF holds it: 255 colours (median cut) and one transparent index for the
    pixels under half opacity. Pillow's own conversion drops all transparency where alpha has other values than
    0 and 255, as an upscaled alpha channel has at its edges."""
    if image.mode != 'RGBA':
        return image
    quantized = image.convert('RGB').quantize(_GIF_TRANSPARENT)
    indices = np.array(quantized)
    indices[np.asarray(image)[..., 3] < 128] = _GIF_TRANSPARENT
    frame = Image.fromarray(indices, 'P')
    frame.putpalette(quantized.getpalette()[:3 * _GIF_TRANSPARENT] + [0, 0, 0] * (256 - _GIF_TRANSPARENT))
    frame.info['transparency'] = _GIF_TRANSPARENT
    return frame


def save_animation(frames: Iterable[np.ndarray], animation: Animation, path: str, metadata: PhotoMetadata) -> None:
    """Write upscaled frames (OpenCV's layout: BGR, BGRA or gray, 8-bit) atomically as an animation.

    The format follows the extension of ``path`` (one of ``ANIMATED_EXTENSIONS``). PNG and WebP keep the colour
    profile and EXIF (WebP the XMP too); GIF holds none of them.
    """
    writer = _WRITER[os.path.splitext(path)[1].lower()]
    images = [as_gif_frame(as_pillow(f)) if writer == 'GIF' else as_pillow(f) for f in frames]
    options = {'save_all': True, 'append_images': images[1:], 'duration': list(animation.durations)}
    if writer == 'GIF':
        if animation.loop is not None:
            options['loop'] = animation.loop
        options['disposal'] = 2 if animation.has_alpha else 1  # whole frames: each replaces the one before
        if animation.has_alpha:
            options['transparency'] = _GIF_TRANSPARENT
    else:
        options['loop'] = 1 if animation.loop is None else animation.loop
        options.update({k: v for k, v in (('icc_profile', metadata.icc_profile), ('exif', metadata.exif))
                        if v is not None})
        if writer == 'WEBP':
            options.update(quality=_WEBP_QUALITY, **({'xmp': metadata.xmp} if metadata.xmp else {}))
        else:
            # Whole frames: each replaces the canvas, transparent parts too (APNG_DISPOSE_OP_NONE, BLEND_OP_SOURCE).
            options.update(disposal=0, blend=0)
    fileio.write_with(path, lambda tmp: images[0].save(tmp, format=writer, **options))
