"""Upscaling a picture with a generator, tiles painted straight into the output's sample type
(``upscale_to_array``), and writing it (``write_upscaled``); which files a run reads and writes (``list_inputs``,
``drop_earlier_outputs``, ``plan_outputs``) and where it runs (``choose_device``).

``inference.upscale_files`` takes ``python -m esrgan_plugin.infer`` over its files with these.
"""
from __future__ import annotations

import os
from typing import Callable, Optional

import cv2
import numpy as np
import torch

from esrgan_plugin import fileio
from esrgan_plugin.choices import DEFAULT_TILE_PAD, VIDEO_EXTENSIONS
from esrgan_plugin.errors import UserFacingError
from esrgan_plugin.inference.animation import save_animation
from esrgan_plugin.inference.color_fix import apply_color_fix
from esrgan_plugin.inference.image_io import (PHOTO_EXTENSIONS, Picture, encode, full_scale, output_dtype, output_path,
                                             picture_from_samples, resize)
from esrgan_plugin.inference.photo_metadata import PhotoMetadata
from esrgan_plugin.inference.tiling import iter_tiles
from esrgan_plugin.inference.video_io import is_video, video_output_path




def _to_tensor(img: np.ndarray, channels: int) -> torch.Tensor:
    """H x W or H x W x 3 floats as 1 x channels x H x W; gray is replicated, color turned gray.

    The tensor is a view of the (H x W x channels) array, not a copy: tiles are
    copied into the network's layout one window at a time (``iter_tiles``).
    """
    if img.ndim == 2:
        img = np.repeat(img[..., None], channels, axis=2)
    elif channels == 1:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)[..., None]
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).unsqueeze(0)


def paint_tile(out: torch.Tensor, target: np.ndarray, gray: bool, dtype: np.dtype) -> None:
    """Write a net output (1 x C x h x w) into ``target`` (h x w x 3 RGB or h x w) as ``dtype`` samples.

    Integers are at full scale. Colour goes one channel at a time, so the float
    temporaries are a third of a tile, not several copies of it: at the default
    tile they were the largest part of the command's memory.
    """
    if gray and out.shape[1] == 3:
        # A gray input went through the net as three equal channels; its luma is the gray output.
        img = out[0].float().clamp(0, 1).cpu().numpy().transpose(1, 2, 0)
        target[...] = full_scale(cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY), dtype)
        return
    channels = [target] if target.ndim == 2 else [target[..., c] for c in range(target.shape[2])]
    for c, channel in enumerate(channels):
        channel[...] = full_scale(out[0, c].float().clamp(0, 1).cpu().numpy(), dtype)


def upscale_to_array(net: torch.nn.Module, picture: Picture, dtype: np.dtype, tile: int = 0,
                     tile_pad: int = DEFAULT_TILE_PAD, outscale: Optional[float] = None, alpha_mode: str = 'net',
                     progress: Optional[Callable[[], None]] = None, color_fix: str = 'none') -> np.ndarray:
    """Upscale ``picture`` straight into the array that is written: OpenCV's layout, ``dtype`` samples.

    The layout is BGR, BGRA, or 2-D gray (gray with alpha is BGRA with three
    equal channels); floats are in [0, 1], integers at full scale. Each tile is
    converted as it comes, so the output exists once, in its final sample
    type, and never in float unless ``dtype`` is float32. The alpha channel
    goes through the net as a gray image (``alpha_mode='net'``), which keeps
    its edges as sharp as the color's, or is resized bicubically
    (``'bicubic'``, half the work). ``color_fix`` ('none', 'mean', 'wavelet'; ``inference.color_fix``) then
    matches the color's low frequencies to the input's, the alpha channel left as the net made it, and
    ``outscale`` resizes the result.
    """
    dtype = np.dtype(dtype)
    channels = net.conv_first.in_channels // int(getattr(net, 'unshuffle', 1))**2
    scale = int(getattr(net, 'scale', 4))
    height, width = picture.color.shape[:2]
    gray = picture.color.ndim == 2
    depth = 4 if picture.alpha is not None else (1 if gray else 3)
    canvas = np.empty((height * scale, width * scale) + ((depth,) if depth > 1 else ()), dtype)
    if depth == 1:
        color_view = canvas
    else:
        color_view = canvas[..., 0] if gray else canvas[..., 2::-1]  # RGB written into BGR(A) as a reversed view

    def paint(img: np.ndarray, target: np.ndarray, is_gray: bool) -> None:
        for piece in iter_tiles(net, _to_tensor(img, channels), tile, tile_pad):
            paint_tile(piece.output, target[piece.rows, piece.cols], is_gray, dtype)
            if progress and piece.window_done:
                progress()

    paint(picture.color, color_view, gray)
    apply_color_fix(color_fix, color_view, picture.color, scale)
    if picture.alpha is not None:
        if alpha_mode == 'net':
            paint(picture.alpha, canvas[..., 3], True)
        else:
            alpha = np.clip(cv2.resize(picture.alpha, (width * scale, height * scale), interpolation=cv2.INTER_CUBIC),
                            0, 1)
            canvas[..., 3] = alpha if dtype == np.float32 else np.round(alpha * np.iinfo(dtype).max)
        if gray:
            canvas[..., 1] = canvas[..., 2] = canvas[..., 0]
    if outscale is not None:
        canvas = resize(canvas, (max(1, round(width * outscale)), max(1, round(height * outscale))))
    return canvas


def write_upscaled(net: torch.nn.Module, picture: Picture, path: str, strip_metadata: bool = False,
                   **options) -> None:
    """Upscale and write atomically, the output held once in the file's sample type (``upscale_to_array``).

    The picture's colour profile, EXIF and XMP go into the output where its format holds them
    (``image_io.encode``), none of them with ``strip_metadata``. An animation has each of its frames upscaled
    (``options`` as for one picture) and is written with its timing (``animation.save_animation``).
    """
    metadata = PhotoMetadata() if strip_metadata else picture.metadata
    if picture.animation is not None:
        turn = picture.animation.orientation
        frames = (upscale_to_array(net, picture_from_samples(color, alpha, turn), np.dtype(np.uint8), **options)
                  for color, alpha in picture.animation.frames())
        save_animation(frames, picture.animation, path, metadata)
        return
    ext = os.path.splitext(path)[1].lower()
    array = upscale_to_array(net, picture, output_dtype(picture.dtype, ext), **options)
    pieces = encode(array, path, metadata)
    del array  # the encoded file is all that is left to write

    def write(tmp: str) -> None:
        with open(tmp, 'wb') as f:
            f.writelines(pieces)
    fileio.write_with(path, write)


def list_inputs(path: str) -> list[str]:
    """The files to process: the file itself, or a folder's images and videos (not recursive)."""
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise UserFacingError(f'input {path} does not exist; pass an image or video file or a folder of them.')
    readable = PHOTO_EXTENSIONS + VIDEO_EXTENSIONS
    files = sorted(os.path.join(path, n) for n in os.listdir(path)
                   if n.lower().endswith(readable) and os.path.isfile(os.path.join(path, n)))
    if not files:
        raise UserFacingError(f'folder {path} holds no images or videos ({", ".join(readable)}); pass another '
                              'folder.')
    return files


def planned_output(input_path: str, out_dir: str, suffix: str, ext: str) -> str:
    """Where an input goes before it is read: a video keeps its container, a picture follows ``ext``."""
    if is_video(input_path):
        return video_output_path(input_path, out_dir, suffix)
    return output_path(input_path, out_dir, suffix, ext, has_alpha=False)


def drop_earlier_outputs(inputs: list[str], out_dir: str, suffix: str, ext: str) -> list[str]:
    """The inputs without files that are outputs of other inputs (an earlier run into the input folder)."""
    own_output = {os.path.realpath(p): os.path.realpath(planned_output(p, out_dir, suffix, ext)) for p in inputs}
    others = {out for src, out in own_output.items() if out != src}
    return [p for p in inputs if os.path.realpath(p) not in others]


def plan_outputs(inputs: list[str], out_dir: str, suffix: str, ext: str, overwrite: bool = False) -> list[str]:
    """Output paths, refusing any that would overwrite an input, collide with another output, or (without
    ``overwrite``) replace an existing file."""
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise UserFacingError(f'output {out_dir} is a file; pass a folder (it is created if missing).')
    # Whether an image has alpha is only known once read; a PNG-or-same-extension guess is enough here.
    outputs = [planned_output(p, out_dir, suffix, ext) for p in inputs]
    real_inputs = {os.path.realpath(p) for p in inputs}
    seen = {}
    for src, dst in zip(inputs, outputs):
        if os.path.realpath(dst) in real_inputs:
            raise UserFacingError(f'the output for {src} would overwrite the input {dst}; choose another output '
                                  'folder or a non-empty --suffix.')
        if dst in seen:
            raise UserFacingError(f'{seen[dst]} and {src} would both be written to {dst}; use --ext auto or separate '
                                  'folders.')
        seen[dst] = src
    existing = [dst for dst in outputs if os.path.exists(dst)]
    if existing and not overwrite:
        raise UserFacingError(f'{len(existing)} of the {len(outputs)} output(s) already exist in {out_dir} (e.g. '
                              f'{os.path.basename(existing[0])}); pass --overwrite to replace them, or choose another '
                              'output folder or --suffix.')
    return outputs


def choose_device(name: str) -> torch.device:
    if name == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    if name == 'cuda' and not torch.cuda.is_available():
        raise UserFacingError('--device cuda was asked for but no CUDA device is available; use --device cpu.')
    return torch.device(name)
