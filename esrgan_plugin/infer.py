"""``python -m esrgan_plugin.infer -i <file|folder> -o <folder> -m <checkpoint>``: upscale your own images.

Any checkpoint layout loads (``archs.checkpoint.load_generator``); the architecture and scale are read from the
file. Images keep their kind (``inference.image_io``): grayscale stays grayscale, an alpha channel is upscaled
too, 16-bit stays 16-bit where the output format allows.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

from esrgan_plugin.choices import (ALPHA_MODES, COLOR_FIXES, COMPILE_MODES, DEFAULT_TILE, DEFAULT_TILE_PAD,
                                   DEVICES, OUTPUT_FORMATS, PRECISIONS)
from esrgan_plugin.cli import memory_size, run_main, say, tile_size


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='python -m esrgan_plugin.infer',
        description='Upscale images with an ESRGAN/RRDBNet generator of any checkpoint layout. Gray, RGBA and '
        '16-bit images keep their kind; outputs are written atomically.')
    parser.add_argument('-i', '--input', required=True, help='an image file or a folder of images')
    parser.add_argument('-o', '--output', help='output folder (created if missing); not needed with --plan')
    parser.add_argument('-m', '--model', required=True, help='generator checkpoint (.pth/.safetensors, any layout)')
    # None stands for the default, so that a choice is announced only where --tile auto was asked for (sized_tile).
    parser.add_argument('--tile', type=tile_size, default=None,
                        help='tile side in input pixels, bounds memory on large images; 0: whole image; auto: the '
                        'whole image or the largest tile whose predicted peak memory fits --max-memory or the free '
                        f'memory (default {DEFAULT_TILE}); see docs/inference.md#memory-sized-tiles')
    parser.add_argument('--max-memory', type=memory_size, metavar='SIZE',
                        help='memory budget of --tile auto, e.g. 4GB, 512MB, 1.5GiB: the peak resident memory of '
                        'the command on the CPU, of allocated GPU memory on CUDA (default: the free memory)')
    parser.add_argument('--plan', action='store_true',
                        help='print, for each image, the predicted peak memory of the whole image and of several '
                        'tile sizes and the tile auto would choose, without running the network; writes nothing')
    parser.add_argument('--tile-pad', type=int, default=DEFAULT_TILE_PAD,
                        help=f'context pixels around each tile (default {DEFAULT_TILE_PAD}); see '
                        'docs/inference.md#tiling for exactness')
    parser.add_argument('--precision', choices=PRECISIONS, default='fp32',
                        help='compute precision: fp32 (default, exact); bf16: the fast path, weights in bf16 and '
                        'channels_last on CPUs with native bf16 (AVX512-BF16/AMX) and on CUDA, fp32 in channels_last '
                        'on other CPUs; fp16 for CUDA (on the CPU it falls back to fp32)')
    parser.add_argument('--compile', nargs='?', const=True, default=None, metavar='MODE',
                        choices=[True, *COMPILE_MODES],
                        help=f'torch.compile the generator, optionally with a mode ({", ".join(COMPILE_MODES)}): '
                        'faster per tile, but the first image waits for the compilation (minutes on a small CPU)')
    parser.add_argument('--device', choices=DEVICES, default='auto',
                        help='where to run the net: auto takes CUDA when present, else the CPU (default auto)')
    parser.add_argument('--outscale', type=float, default=None,
                        help='final scale, e.g. 3.5: the net output is resized (Lanczos up, area down)')
    parser.add_argument('--suffix', default='_out', help='appended to each output file name (default _out)')
    parser.add_argument('--ext', choices=OUTPUT_FORMATS, default='auto',
                        help='output format; auto keeps the input\'s (PNG when it has alpha and was JPEG)')
    parser.add_argument('--alpha', choices=ALPHA_MODES, default='net',
                        help='how an alpha channel is upscaled (default: by the net, as a gray image)')
    parser.add_argument('--color-fix', choices=COLOR_FIXES, default='none',
                        help='match the output\'s colours to the input\'s: mean (each channel\'s mean and spread), '
                        'wavelet (the lowest frequencies, from a bicubic upscale); default none; see '
                        'docs/inference.md#colour-fix')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace outputs that already exist (by default the command refuses to start)')
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.tile_given = args.tile is not None
    if args.tile is None:
        args.tile = DEFAULT_TILE
    if args.tile_pad < 0:
        parser.error('--tile-pad must be 0 or more')
    if args.output is None and not args.plan:
        parser.error('the following arguments are required: -o/--output (or --plan)')
    if args.max_memory is not None and args.tile != 'auto' and not args.plan:
        parser.error(f'--max-memory sizes the tiles of --tile auto; drop --tile {args.tile} or --max-memory')
    if args.outscale is not None and args.outscale <= 0:
        parser.error('--outscale must be positive, e.g. 2 or 3.5')

    import esrgan_plugin
    esrgan_plugin.register()  # basicsr adaptations and registration, once the arguments are parsed
    import torch
    from tqdm import tqdm

    from esrgan_plugin.archs.checkpoint import load_generator
    from esrgan_plugin.errors import UserFacingError
    from esrgan_plugin.inference.image_io import ImageReadError, output_path, read_image
    from esrgan_plugin.inference.memory import smaller_tile
    from esrgan_plugin.inference.runtime import choose_dtype, prepare_generator, release_cached_memory
    from esrgan_plugin.inference.tiling import count_tiles
    from esrgan_plugin.inference.upscale import choose_device, drop_earlier_outputs, list_inputs, plan_outputs, \
        write_upscaled

    if args.plan:
        inputs = outputs = list_inputs(args.input)
    else:
        inputs = drop_earlier_outputs(list_inputs(args.input), args.output, args.suffix, args.ext)
        outputs = plan_outputs(inputs, args.output, args.suffix, args.ext, args.overwrite)
    device = choose_device(args.device)
    dtype, note = choose_dtype(args.precision, device)
    if note:
        say(f'warning: {note}', error=True)

    # Any reduced-precision request is a request for speed: channels_last even where bf16 fell back to fp32.
    net = prepare_generator(load_generator(args.model), device, dtype, channels_last=args.precision != 'fp32',
                            compile_mode=args.compile)
    if args.plan:
        return print_plans(net, inputs, args)
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
            tile = sized_tile(net, picture, dst, args).tile if args.tile == 'auto' else args.tile
            passes = 2 if picture.alpha is not None and args.alpha == 'net' else 1
            while True:
                runs = count_tiles(h, w, tile, args.tile_pad) * passes
                try:
                    with tqdm(total=runs, unit='tile', leave=False, disable=runs == 1) as tiles:
                        write_upscaled(net, picture, dst, tile=tile, tile_pad=args.tile_pad,
                                       outscale=args.outscale, alpha_mode=args.alpha, progress=tiles.update,
                                       color_fix=args.color_fix)
                    break
                except torch.OutOfMemoryError:
                    # A chosen tile may still not fit (a prediction, others' memory): auto tries smaller ones.
                    retry = smaller_tile(h, w, tile) if args.tile == 'auto' else None
                    if retry is None:
                        raise
                    release_cached_memory(device)
                    what = 'the whole image' if tile == 0 else f'tile {tile}'
                    tqdm.write(f'{os.path.basename(dst)}: out of memory with {what}; trying tile {retry}',
                               file=sys.stderr)
                    tile = retry
        except ImageReadError as err:
            tqdm.write(f'error: {err}', file=sys.stderr)
            failed += 1
        except torch.OutOfMemoryError:
            if args.tile == 'auto':
                raise UserFacingError(f'out of memory while upscaling {src}, even in {tile}-pixel tiles; free '
                                      'memory or run on another device (--device).') from None
            raise UserFacingError(f'out of memory while upscaling {src}; pass a smaller --tile (now {tile}) or '
                                  '--tile auto.') from None
        except OSError as err:
            tqdm.write(f'error: cannot write {dst}: {err}; skipped.', file=sys.stderr)
            failed += 1
    done = len(inputs) - failed
    say(f'{done} of {len(inputs)} image(s) written to {args.output}' + (f', {failed} failed' if failed else ''),
        error=True)
    return 1 if failed else 0


def _canvas(picture, dst: str) -> tuple[int, int]:
    """Channels and sample size of the array ``upscale_to_array`` fills for ``picture`` written to ``dst``."""
    from esrgan_plugin.inference.image_io import output_dtype
    depth = 4 if picture.alpha is not None else (1 if picture.color.ndim == 2 else 3)
    return depth, output_dtype(picture.dtype, os.path.splitext(dst)[1].lower()).itemsize


def sized_tile(net, picture, dst: str, args: argparse.Namespace):
    """``--tile auto``: the tile whose predicted peak fits the budget (memory.choose_tile), said on one line where
    the image is tiled or ``--tile auto`` was given."""
    from tqdm import tqdm

    from esrgan_plugin.inference.memory import choose_tile, format_bytes, memory_budget
    budget = memory_budget(next(net.parameters()).device, args.max_memory)
    chosen = choose_tile(net, *picture.color.shape[:2], *_canvas(picture, dst), args.tile_pad, budget)
    if chosen.tile == 0 and not args.tile_given:
        return chosen  # the default ran the whole image: nothing a user needs to hear about
    what = 'the whole image' if chosen.tile == 0 else f'tile {chosen.tile} ({chosen.tiles} tiles)'
    tqdm.write(f'{os.path.basename(dst)}: {what}, predicted peak {format_bytes(chosen.peak)} (budget: '
               f'{budget.source}, {format_bytes(budget.limit or budget.in_use + budget.allowed)})', file=sys.stderr)
    return chosen


def print_plans(net, inputs: list[str], args: argparse.Namespace) -> int:
    """``--plan``: the predicted peaks of each image, for the whole image and several tiles, and auto's choice."""
    from esrgan_plugin.errors import UserFacingError
    from esrgan_plugin.inference.image_io import ImageReadError, output_path, read_image
    from esrgan_plugin.inference.memory import MARGIN, choose_tile, fits, format_bytes, memory_budget, plan
    failed = 0
    for src in inputs:
        try:
            picture = read_image(src)
        except ImageReadError as err:
            say(f'error: {err}', error=True)
            failed += 1
            continue
        h, w = picture.color.shape[:2]
        dst = output_path(src, args.output or '.', args.suffix, args.ext, picture.alpha is not None)
        depth, itemsize = _canvas(picture, dst)
        budget = memory_budget(next(net.parameters()).device, args.max_memory)
        say(f'{src}: {w}x{h}, {depth} channel(s) of {8 * itemsize} bits, --tile-pad {args.tile_pad}; in use now '
            f'{format_bytes(budget.in_use)}; budget ({budget.source}) '
            f'{format_bytes(budget.limit or budget.in_use + budget.allowed)}')
        say(f'  {"tile":>6}  {"window":>11}  {"tiles":>5}  {"predicted peak":>14}  fits (with {MARGIN:.0%} margin)')
        for est in plan(net, h, w, depth, itemsize, args.tile_pad, budget):
            window = f'{est.window[1]}x{est.window[0]}'
            say(f'  {est.tile or "whole":>6}  {window:>11}  {est.tiles:>5}  {format_bytes(est.peak):>14}  '
                f'{"yes" if fits(est, budget) else "no"}')
        try:
            chosen = choose_tile(net, h, w, depth, itemsize, args.tile_pad, budget)
            say(f'  auto: {"the whole image" if chosen.tile == 0 else f"tile {chosen.tile}"}, predicted peak '
                f'{format_bytes(chosen.peak)}')
        except UserFacingError as err:
            say(f'  auto: {err}')
    return 1 if failed else 0


if __name__ == '__main__':
    run_main(main)
