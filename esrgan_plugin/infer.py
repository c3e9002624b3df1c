"""``python -m esrgan_plugin.infer -i <file|folder> -o <folder> -m <checkpoint>``: upscale your own images.

Any checkpoint layout loads (``checkpoint.load_generator``); the architecture
and scale are read from the file. Images are read as OpenCV reads them
(``IMREAD_UNCHANGED``) and keep their kind: grayscale stays grayscale, an alpha
channel is upscaled too, 16-bit stays 16-bit where the output format allows.
The per-image steps (``read_image``, ``upscale_image``, ``write_image``) are
plain functions so they can be used and tested without the command line.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from esrgan_plugin.cli import run_main, say
from esrgan_plugin.errors import UserFacingError

# numpy, OpenCV, torch and the modules that use them are imported below build_parser(), so that the
# command answers -h and usage errors before paying for them; the functions here use them only when called.

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.webp', '.tif', '.tiff', '.bmp')
OUTPUT_EXTENSIONS = ('auto', 'png', 'jpg', 'webp', 'tiff')
# From measurements with trained weights (README, "Tiling"): 96 pixels of context keep tiled outputs within
# 1 level of untiled ones on ~0.01 % of values; 384-pixel tiles keep the compute overhead of that context at 2.25x.
DEFAULT_TILE = 384
DEFAULT_TILE_PAD = 96
PRECISION_NAMES = ('fp32', 'fp16', 'bf16')  # the keys of fast_inference.PRECISIONS


class ImageReadError(UserFacingError):
    """One input file that cannot be used; the command reports it and goes on with the others."""


@dataclass
class Picture:
    """An image as floats in [0, 1]: ``color`` is H x W x 3 (RGB) or H x W (gray); ``alpha`` H x W or None."""
    color: np.ndarray
    alpha: Optional[np.ndarray]
    dtype: np.dtype  # the file's sample type, kept for writing


# ------------------------------------------------------------------ reading
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


# ------------------------------------------------------------------ upscaling
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


def _paint_tile(out: torch.Tensor, target: np.ndarray, gray: bool, dtype: np.dtype) -> None:
    """Write a net output (1 x C x h x w) into ``target`` (h x w x 3 RGB or h x w) as ``dtype`` samples.

    Integers are at full scale. Colour goes one channel at a time, so the float
    temporaries are a third of a tile, not several copies of it: at the default
    tile they were the largest part of the command's memory.
    """
    if gray and out.shape[1] == 3:
        # A gray input went through the net as three equal channels; its luma is the gray output.
        img = out[0].float().clamp(0, 1).cpu().numpy().transpose(1, 2, 0)
        target[...] = _full_scale(cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY), dtype)
        return
    channels = [target] if target.ndim == 2 else [target[..., c] for c in range(target.shape[2])]
    for c, channel in enumerate(channels):
        channel[...] = _full_scale(out[0, c].float().clamp(0, 1).cpu().numpy(), dtype)


def _full_scale(img: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Floats in [0, 1] as the values of ``dtype``'s samples (rounded, still float), floats unchanged."""
    if dtype == np.float32:
        return img
    img *= np.iinfo(dtype).max
    return np.round(img, out=img)


def _resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize to (width, height): Lanczos when enlarging, area averaging when shrinking (no aliasing)."""
    if (img.shape[1], img.shape[0]) == size:
        return img
    shrinking = size[0] < img.shape[1] or size[1] < img.shape[0]
    resized = cv2.resize(img, size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LANCZOS4)
    return np.clip(resized, 0, 1) if img.dtype == np.float32 else resized  # integers saturate in OpenCV


def upscale_to_array(net: torch.nn.Module, picture: Picture, dtype: np.dtype, tile: int = 0,
                     tile_pad: int = DEFAULT_TILE_PAD, outscale: Optional[float] = None, alpha_mode: str = 'net',
                     progress: Optional[Callable[[], None]] = None) -> np.ndarray:
    """Upscale ``picture`` straight into the array that is written: OpenCV's layout, ``dtype`` samples.

    The layout is BGR, BGRA, or 2-D gray (gray with alpha is BGRA with three
    equal channels); floats are in [0, 1], integers at full scale. Each tile is
    converted as it comes, so the output exists once, in its final sample
    type, and never in float unless ``dtype`` is float32. The alpha channel
    goes through the net as a gray image (``alpha_mode='net'``), which keeps
    its edges as sharp as the color's, or is resized bicubically
    (``'bicubic'``, half the work). ``outscale`` then resizes the result.
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
            _paint_tile(piece.output, target[piece.rows, piece.cols], is_gray, dtype)
            if progress and piece.window_done:
                progress()

    paint(picture.color, color_view, gray)
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
        canvas = _resize(canvas, (max(1, round(width * outscale)), max(1, round(height * outscale))))
    return canvas


def upscale_image(net: torch.nn.Module, picture: Picture, tile: int = 0, tile_pad: int = DEFAULT_TILE_PAD,
                  outscale: Optional[float] = None, alpha_mode: str = 'net',
                  progress: Optional[Callable[[], None]] = None) -> Picture:
    """``upscale_to_array`` in float32, returned as a Picture (RGB floats in [0, 1])."""
    out = upscale_to_array(net, picture, np.dtype(np.float32), tile, tile_pad, outscale, alpha_mode, progress)
    gray = picture.color.ndim == 2
    if out.ndim == 2:
        return Picture(out, None, picture.dtype)
    color = out[..., 0] if gray else out[..., 2::-1]
    return Picture(color, out[..., 3] if picture.alpha is not None else None, picture.dtype)


# ------------------------------------------------------------------ writing
def output_dtype(input_dtype: np.dtype, ext: str) -> np.dtype:
    """Keep 16-bit (and float TIFF) depth where the format can hold it; otherwise 8-bit."""
    if ext in ('.png', '.tif', '.tiff') and input_dtype in (np.uint16, np.float32):
        return np.dtype(np.float32) if (input_dtype == np.float32 and ext != '.png') else np.dtype(np.uint16)
    return np.dtype(np.uint8)


def to_array(picture: Picture, dtype: np.dtype) -> np.ndarray:
    """The picture as an OpenCV array (BGR/BGRA or gray) of ``dtype``."""
    img = picture.color if picture.color.ndim == 2 else picture.color[..., ::-1]
    if picture.alpha is not None:
        if img.ndim == 2:  # OpenCV writes gray+alpha as BGRA
            img = np.repeat(img[..., None], 3, axis=2)
        img = np.concatenate([img, picture.alpha[..., None]], axis=2)
    if dtype == np.float32:
        return np.ascontiguousarray(img, dtype=np.float32)
    peak = np.iinfo(dtype).max
    return np.ascontiguousarray(np.round(img * peak)).astype(dtype)


def write_image(picture: Picture, path: str) -> None:
    """Write atomically; the extension picks format and depth (``output_dtype``)."""
    ext = os.path.splitext(path)[1].lower()
    fileio.save_image(to_array(picture, output_dtype(picture.dtype, ext)), path, _LOSSY_QUALITY.get(ext))


def output_path(input_path: str, out_dir: str, suffix: str, ext: str, has_alpha: bool) -> str:
    """``<out_dir>/<stem><suffix>.<ext>``; 'auto' keeps the input's format unless it cannot hold alpha."""
    stem, in_ext = os.path.splitext(os.path.basename(input_path))
    out_ext = in_ext.lower() if ext == 'auto' else f'.{ext}'
    if out_ext not in IMAGE_EXTENSIONS or (has_alpha and out_ext in ('.jpg', '.jpeg')):
        out_ext = '.png'
    return os.path.join(out_dir, f'{stem}{suffix}{out_ext}')


def write_upscaled(net: torch.nn.Module, picture: Picture, path: str, **options) -> None:
    """Upscale and write atomically, the output held once in the file's sample type (``upscale_to_array``)."""
    ext = os.path.splitext(path)[1].lower()
    array = upscale_to_array(net, picture, output_dtype(picture.dtype, ext), **options)
    fileio.save_image(array, path, _LOSSY_QUALITY.get(ext))


def process_file(net: torch.nn.Module, input_path: str, out_path: str, **options) -> str:
    """Read, upscale and write one image; ``options`` are ``upscale_image``'s. Returns the written path."""
    write_upscaled(net, read_image(input_path), out_path, **options)
    return out_path


# ------------------------------------------------------------------ command line
def list_inputs(path: str) -> list[str]:
    """The image files to process: the file itself, or a folder's images (not recursive)."""
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise UserFacingError(f'input {path} does not exist; pass an image file or a folder of images.')
    files = sorted(os.path.join(path, n) for n in os.listdir(path)
                   if n.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(path, n)))
    if not files:
        raise UserFacingError(f'folder {path} holds no images ({", ".join(IMAGE_EXTENSIONS)}); pass another folder.')
    return files


def drop_earlier_outputs(inputs: list[str], out_dir: str, suffix: str, ext: str) -> list[str]:
    """The inputs without files that are outputs of other inputs (an earlier run into the input folder)."""
    own_output = {os.path.realpath(p): os.path.realpath(output_path(p, out_dir, suffix, ext, has_alpha=False))
                  for p in inputs}
    others = {out for src, out in own_output.items() if out != src}
    return [p for p in inputs if os.path.realpath(p) not in others]


def plan_outputs(inputs: list[str], out_dir: str, suffix: str, ext: str, overwrite: bool = False) -> list[str]:
    """Output paths, refusing any that would overwrite an input, collide with another output, or (without
    ``overwrite``) replace an existing file."""
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise UserFacingError(f'output {out_dir} is a file; pass a folder (it is created if missing).')
    # Whether an image has alpha is only known once read; a PNG-or-same-extension guess is enough here.
    outputs = [output_path(p, out_dir, suffix, ext, has_alpha=False) for p in inputs]
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='python -m esrgan_plugin.infer',
        description='Upscale images with an ESRGAN/RRDBNet generator of any checkpoint layout. Gray, RGBA and '
        '16-bit images keep their kind; outputs are written atomically.')
    parser.add_argument('-i', '--input', required=True, help='an image file or a folder of images')
    parser.add_argument('-o', '--output', required=True, help='output folder (created if missing)')
    parser.add_argument('-m', '--model', required=True, help='generator checkpoint (.pth/.safetensors, any layout)')
    parser.add_argument('--tile', type=int, default=DEFAULT_TILE,
                        help=f'tile side in input pixels, bounds memory on large images; 0: whole image '
                        f'(default {DEFAULT_TILE})')
    parser.add_argument('--tile-pad', type=int, default=DEFAULT_TILE_PAD,
                        help=f'context pixels around each tile (default {DEFAULT_TILE_PAD}); see README for exactness')
    parser.add_argument('--precision', choices=PRECISION_NAMES, default='fp32',
                        help='compute precision: fp32 (default, exact); bf16: the fast path, weights in bf16 and '
                        'channels_last on CPUs with native bf16 (AVX512-BF16/AMX) and on CUDA, fp32 in channels_last '
                        'on other CPUs; fp16 for CUDA (on the CPU it falls back to fp32)')
    parser.add_argument('--compile', nargs='?', const=True, default=None, metavar='MODE',
                        choices=[True, 'default', 'reduce-overhead', 'max-autotune'],
                        help='torch.compile the generator (optionally with a mode): faster per tile, but the first '
                        'image waits for the compilation (minutes on a small CPU)')
    parser.add_argument('--device', choices=['auto', 'cpu', 'cuda'], default='auto',
                        help='where to run the net: auto takes CUDA when present, else the CPU (default auto)')
    parser.add_argument('--outscale', type=float, default=None,
                        help='final scale, e.g. 3.5: the net output is resized (Lanczos up, area down)')
    parser.add_argument('--suffix', default='_out', help='appended to each output file name (default _out)')
    parser.add_argument('--ext', choices=OUTPUT_EXTENSIONS, default='auto',
                        help='output format; auto keeps the input\'s (PNG when it has alpha and was JPEG)')
    parser.add_argument('--alpha', choices=['net', 'bicubic'], default='net',
                        help='how an alpha channel is upscaled (default: by the net, as a gray image)')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace outputs that already exist (by default the command refuses to start)')
    return parser


if __name__ == '__main__':
    build_parser().parse_args()  # -h and usage errors are answered here, before the imports below

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from esrgan_plugin import fileio, register  # noqa: E402

register()  # basicsr adaptations before the modules below import basicsr
from esrgan_plugin.archs.checkpoint import load_generator  # noqa: E402
from esrgan_plugin.inference.runtime import PRECISIONS, choose_dtype, prepare_generator  # noqa: E402,F401
from esrgan_plugin.inference.tiling import count_tiles, iter_tiles  # noqa: E402

_LOSSY_QUALITY = {'.jpg': [cv2.IMWRITE_JPEG_QUALITY, 95], '.jpeg': [cv2.IMWRITE_JPEG_QUALITY, 95],
                  '.webp': [cv2.IMWRITE_WEBP_QUALITY, 95]}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.tile < 0 or args.tile_pad < 0:
        parser.error('--tile and --tile-pad must be 0 or more')
    if args.outscale is not None and args.outscale <= 0:
        parser.error('--outscale must be positive, e.g. 2 or 3.5')
    inputs = drop_earlier_outputs(list_inputs(args.input), args.output, args.suffix, args.ext)
    outputs = plan_outputs(inputs, args.output, args.suffix, args.ext, args.overwrite)
    device = choose_device(args.device)
    dtype, note = choose_dtype(args.precision, device)
    if note:
        say(f'warning: {note}', error=True)

    # Any reduced-precision request is a request for speed: channels_last even where bf16 fell back to fp32.
    net = prepare_generator(load_generator(args.model), device, dtype, channels_last=args.precision != 'fp32',
                            compile_mode=args.compile)
    real_inputs = {os.path.realpath(p) for p in inputs}
    failed = 0
    bar = tqdm(list(zip(inputs, outputs)), unit='image', disable=len(inputs) == 1)
    for src, dst in bar:
        bar.set_postfix_str(os.path.basename(src))
        try:
            picture = read_image(src)
            dst = output_path(src, args.output, args.suffix, args.ext, picture.alpha is not None)
            if os.path.realpath(dst) in real_inputs:  # an alpha image's output may have turned into a PNG
                raise ImageReadError(f'the output for {src} would overwrite the input {dst}; skipped.')
            h, w = picture.color.shape[:2]
            passes = 2 if picture.alpha is not None and args.alpha == 'net' else 1
            runs = count_tiles(h, w, args.tile, args.tile_pad) * passes
            with tqdm(total=runs, unit='tile', leave=False, disable=runs == 1) as tiles:
                write_upscaled(net, picture, dst, tile=args.tile, tile_pad=args.tile_pad, outscale=args.outscale,
                               alpha_mode=args.alpha, progress=tiles.update)
        except ImageReadError as err:
            tqdm.write(f'error: {err}', file=sys.stderr)
            failed += 1
        except torch.OutOfMemoryError:
            raise UserFacingError(f'out of memory while upscaling {src}; pass a smaller --tile (now {args.tile}).') \
                from None
        except OSError as err:
            tqdm.write(f'error: cannot write {dst}: {err}; skipped.', file=sys.stderr)
            failed += 1
    done = len(inputs) - failed
    say(f'{done} of {len(inputs)} image(s) written to {args.output}' + (f', {failed} failed' if failed else ''),
        error=True)
    return 1 if failed else 0


if __name__ == '__main__':
    run_main(main)
