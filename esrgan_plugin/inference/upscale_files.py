"""The run of ``python -m esrgan_plugin.infer`` over its image files, and what ``--plan`` says about each.

Each image is read, gets its tile (``--tile auto``: the fastest the memory model predicts to fit, ``inference.memory``)
and is upscaled and written (``inference.upscale.write_upscaled``). A file that cannot be read or written is
reported and skipped; the run goes on. Running out of memory is not skipped: under ``--tile auto`` the image is
tried again in halved tiles (``memory.smaller_tile``), otherwise, or once no smaller tile is left, the run stops
with one line. Lines for the terminal go to the caller's ``report``; progress bars are tqdm's, on stderr.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Optional, Union

import torch
from tqdm import tqdm

from esrgan_plugin.errors import UserFacingError
from esrgan_plugin.inference.image_io import ImageReadError, Picture, output_dtype, output_path, read_image
from esrgan_plugin.inference.memory import (MARGIN, Estimate, choose_tile, fastest_tile_cap, fits, format_bytes,
                                            memory_budget, plan, smaller_tile)
from esrgan_plugin.inference.runtime import release_cached_memory
from esrgan_plugin.inference.tiling import count_tiles
from esrgan_plugin.inference.upscale import write_upscaled
from esrgan_plugin.inference.video_io import is_video
from esrgan_plugin.inference.video_upscale import upscale_video


@dataclass(frozen=True)
class UpscaleSettings:
    """How each image is upscaled and where it goes: infer's options (``python -m esrgan_plugin.infer -h``)."""
    output: Optional[str]  # the output folder (None with --plan)
    suffix: str
    ext: str
    tile: Union[int, str]  # pixels (0: the whole image) or 'auto'
    tile_given: bool  # --tile was on the command line (auto then says what it chose even for the whole image)
    tile_pad: int
    max_memory: Optional[int]
    outscale: Optional[float]
    alpha: str
    color_fix: str
    strip_metadata: bool = False  # --strip-metadata: outputs without the input's colour profile, EXIF and XMP
    video_codec: str = 'auto'  # videos (inference.video_upscale): encoder, quality, frames per network run
    crf: Optional[int] = None
    batch: int = 1


def _canvas(picture: Picture, dst: str) -> tuple[int, int]:
    """Channels and sample size of the array ``upscale_to_array`` fills for ``picture`` written to ``dst``."""
    depth = 4 if picture.alpha is not None else (1 if picture.color.ndim == 2 else 3)
    return depth, output_dtype(picture.dtype, os.path.splitext(dst)[1].lower()).itemsize


def _device(net: torch.nn.Module) -> torch.device:
    return next(net.parameters()).device


def auto_tile(net: torch.nn.Module, picture: Picture, dst: str, settings: UpscaleSettings,
              report: Callable[[str], None]) -> Estimate:
    """``--tile auto``: the fastest tile whose predicted peak fits the budget (``memory.choose_tile``), reported on
    one line where the image is tiled or ``--tile auto`` was given."""
    budget = memory_budget(_device(net), settings.max_memory)
    chosen = choose_tile(net, *picture.color.shape[:2], *_canvas(picture, dst), settings.tile_pad, budget,
                         fastest_tile_cap(_device(net)))
    if chosen.tile == 0 and not settings.tile_given:
        return chosen  # the default ran the whole image: nothing a user needs to hear about
    what = 'the whole image' if chosen.tile == 0 else f'tile {chosen.tile} ({chosen.tiles} tiles)'
    report(f'{os.path.basename(dst)}: {what}, predicted peak {format_bytes(chosen.peak)} (budget: '
           f'{budget.source}, {format_bytes(budget.limit or budget.in_use + budget.allowed)})')
    return chosen


def _write_with_retry(net: torch.nn.Module, picture: Picture, src: str, dst: str, tile: int,
                      settings: UpscaleSettings, report: Callable[[str], None]) -> None:
    """Upscale and write one image in ``tile``-pixel tiles; under ``--tile auto``, in halved tiles after running
    out of memory.

    Raises:
        UserFacingError: out of memory with a fixed tile, or with the smallest tile auto tries.
    """
    height, width = picture.color.shape[:2]
    passes = (2 if picture.alpha is not None and settings.alpha == 'net' else 1) * picture.frames
    while True:
        runs = count_tiles(height, width, tile, settings.tile_pad) * passes
        try:
            with tqdm(total=runs, unit='tile', leave=False, disable=runs == 1) as tiles:
                write_upscaled(net, picture, dst, tile=tile, tile_pad=settings.tile_pad, outscale=settings.outscale,
                               alpha_mode=settings.alpha, progress=tiles.update, color_fix=settings.color_fix,
                               strip_metadata=settings.strip_metadata)
            return
        except torch.OutOfMemoryError:
            # A chosen tile may still not fit (a prediction, others' memory): auto tries smaller ones.
            retry = smaller_tile(height, width, tile) if settings.tile == 'auto' else None
            if retry is None:
                break
            release_cached_memory(_device(net))
            what = 'the whole image' if tile == 0 else f'tile {tile}'
            report(f'{os.path.basename(dst)}: out of memory with {what}; trying tile {retry}')
            tile = retry
    if settings.tile == 'auto':
        raise UserFacingError(f'out of memory while upscaling {src}, even in {tile}-pixel tiles; free memory or run '
                              'on another device (--device).')
    raise UserFacingError(f'out of memory while upscaling {src}; pass a smaller --tile (now {tile}) or --tile '
                          'auto.')


def upscale_files(net: torch.nn.Module, inputs: list[str], outputs: list[str], settings: UpscaleSettings,
                  report: Callable[[str], None]) -> int:
    """Upscale each of ``inputs`` into its planned output (``upscale.plan_outputs``); returns how many failed.

    A file that cannot be read, or whose output cannot be written, is reported (``report``) and skipped. Videos
    are streamed through ``video_upscale.upscale_video``.
    """
    real_inputs = {os.path.realpath(p) for p in inputs}
    failed = 0
    bar = tqdm(list(zip(inputs, outputs)), unit='image', disable=len(inputs) == 1)
    for src, dst in bar:
        bar.set_postfix_str(os.path.basename(src))
        try:
            if is_video(src):
                upscale_video(net, src, dst, settings, report)
                continue
            picture = read_image(src)
            dst = output_path(src, settings.output, settings.suffix, settings.ext, picture.alpha is not None,
                              picture.animation is not None)
            if os.path.realpath(dst) in real_inputs:  # an alpha image's or animation's output may be a PNG
                raise ImageReadError(f'the output for {src} would overwrite the input {dst}; skipped.')
            tile = auto_tile(net, picture, dst, settings, report).tile if settings.tile == 'auto' else settings.tile
            _write_with_retry(net, picture, src, dst, tile, settings, report)
        except ImageReadError as err:
            report(f'error: {err}')
            failed += 1
        except OSError as err:
            report(f'error: cannot write {dst}: {err}; skipped.')
            failed += 1
    return failed


def plan_lines(net: torch.nn.Module, src: str, settings: UpscaleSettings) -> list[str]:
    """``--plan`` for one image: the predicted peaks of the whole image and of several tiles, and auto's choice.

    Raises:
        ImageReadError: ``src`` cannot be read.
    """
    if is_video(src):
        return [f'{src}: a video; --plan sizes the tiles of pictures (for videos see docs/inference.md#videos)']
    picture = read_image(src)
    height, width = picture.color.shape[:2]
    dst = output_path(src, settings.output or '.', settings.suffix, settings.ext, picture.alpha is not None)
    depth, itemsize = _canvas(picture, dst)
    budget = memory_budget(_device(net), settings.max_memory)
    lines = [f'{src}: {width}x{height}, {depth} channel(s) of {8 * itemsize} bits, --tile-pad {settings.tile_pad}; '
             f'in use now {format_bytes(budget.in_use)}; budget ({budget.source}) '
             f'{format_bytes(budget.limit or budget.in_use + budget.allowed)}',
             f'  {"tile":>6}  {"window":>11}  {"tiles":>5}  {"predicted peak":>14}  fits (with {MARGIN:.0%} margin)']
    for est in plan(net, height, width, depth, itemsize, settings.tile_pad, budget):
        window = f'{est.window[1]}x{est.window[0]}'
        lines.append(f'  {est.tile or "whole":>6}  {window:>11}  {est.tiles:>5}  {format_bytes(est.peak):>14}  '
                     f'{"yes" if fits(est, budget) else "no"}')
    cap = fastest_tile_cap(_device(net))
    try:
        chosen = choose_tile(net, height, width, depth, itemsize, settings.tile_pad, budget, cap)
        what = 'the whole image' if chosen.tile == 0 else f'tile {chosen.tile} ({chosen.tiles} tiles)'
        lines.append(f'  auto: {what}, predicted peak {format_bytes(chosen.peak)}: of the tiles that fit'
                     f'{f" up to {cap} pixels" if cap else ""}, the one computing the fewest pixels')
    except UserFacingError as err:
        lines.append(f'  auto: {err}')
    return lines
