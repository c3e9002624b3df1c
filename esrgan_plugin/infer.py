"""``python -m esrgan_plugin.infer -i <file|folder> -o <folder> -m <checkpoint>``: upscale your own images.

Any checkpoint layout loads (``archs.checkpoint.load_generator``); the architecture and scale are read from the
file. Images keep their kind (``inference.image_io``): grayscale stays grayscale, an alpha channel is upscaled
too, 16-bit stays 16-bit where the output format allows.
"""
from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Optional, Sequence

from esrgan_plugin.choices import (ALPHA_MODES, COLOR_FIXES, COMPILE_MODES, CPU_FASTEST_TILE, DEFAULT_CRF,
                                   DEFAULT_MEMORY_SHARE, DEFAULT_TILE, DEFAULT_TILE_PAD, DEFAULT_VIDEO_BATCH, DEVICES,
                                   OUTPUT_FORMATS, PRECISIONS, VIDEO_CODECS, VIDEO_EXTENSIONS)
from esrgan_plugin.cli import memory_size, run_main, say, tile_size

if TYPE_CHECKING:  # annotations only: -h is answered before torch is imported
    import torch

    from esrgan_plugin.inference.upscale_files import UpscaleSettings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='python -m esrgan_plugin.infer',
        description='Upscale images and videos with an ESRGAN/RRDBNet generator of any checkpoint layout. Gray, '
        'RGBA and 16-bit images keep their kind; photos come out upright with their colour profile and metadata; '
        'HEIC, AVIF and animated GIF/WebP/PNG are read; videos keep their timing, audio and subtitles; outputs '
        'are written atomically.')
    parser.add_argument('-i', '--input', required=True,
                        help=f'an image or video file, or a folder of them (videos: {" ".join(VIDEO_EXTENSIONS)})')
    parser.add_argument('-o', '--output', help='output folder (created if missing); not needed with --plan')
    parser.add_argument('-m', '--model', required=True, help='generator checkpoint (.pth/.safetensors, any layout)')
    # None stands for the default, so that a choice is announced only where --tile auto was asked for
    # (upscale_files.auto_tile).
    parser.add_argument('--tile', type=tile_size, default=None,
                        help='tile side in input pixels, bounds memory on large images; 0: whole image; auto: of the '
                        'whole image and the tiles whose predicted peak memory fits the budget, the fastest (on the '
                        f'CPU at most {CPU_FASTEST_TILE} pixels) (default {DEFAULT_TILE}); see '
                        'docs/inference.md#memory-sized-tiles')
    parser.add_argument('--max-memory', type=memory_size, metavar='SIZE',
                        help='memory budget of --tile auto, e.g. 4GB, 512MB, 1.5GiB: the peak resident memory of '
                        'the command on the CPU, of allocated GPU memory on CUDA (default: '
                        f'{DEFAULT_MEMORY_SHARE * 100:.0f}%% of the memory available to the command, the rest left to other '
                        'programs)')
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
    parser.add_argument('--strip-metadata', action='store_true',
                        help='write outputs without the input\'s EXIF, XMP and colour profile (photos carry the '
                        'camera, the date and often the GPS position; a photo in another colour space than sRGB '
                        'then shows with other colours); by default they are kept where the format holds them')
    parser.add_argument('--video-codec', choices=VIDEO_CODECS, default='auto',
                        help='encoder of upscaled videos, in yuv420p; auto: libx264 (H.264), libvpx-vp9 for .webm; '
                        'a video keeps its container, frame timing, audio and subtitles (docs/inference.md#videos)')
    parser.add_argument('--crf', type=int, default=None,
                        help='constant-quality level of the video encoder, lower is better and larger (default: '
                        + ', '.join(f'{codec} {crf}' for codec, crf in DEFAULT_CRF.items()) + ')')
    parser.add_argument('--batch', type=int, default=DEFAULT_VIDEO_BATCH,
                        help='video frames run through the network at once (default '
                        f'{DEFAULT_VIDEO_BATCH}; under --tile auto fewer where memory is short)')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace outputs that already exist (by default the command refuses to start)')
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.tile_pad < 0:
        parser.error('--tile-pad must be 0 or more')
    if args.output is None and not args.plan:
        parser.error('the following arguments are required: -o/--output (or --plan)')
    tile = DEFAULT_TILE if args.tile is None else args.tile
    if args.max_memory is not None and tile != 'auto' and not args.plan:
        parser.error(f'--max-memory sizes the tiles of --tile auto; drop --tile {tile} or --max-memory')
    if args.outscale is not None and args.outscale <= 0:
        parser.error('--outscale must be positive, e.g. 2 or 3.5')
    if args.batch < 1:
        parser.error('--batch must be 1 or more')
    if args.crf is not None and not 0 <= args.crf <= 63:
        parser.error('--crf must be between 0 and 63 (51 for libx264 and libx265)')

    import esrgan_plugin
    esrgan_plugin.register()  # basicsr adaptations and registration, once the arguments are parsed
    from tqdm import tqdm

    from esrgan_plugin.archs.checkpoint import load_generator
    from esrgan_plugin.inference.runtime import choose_dtype, prepare_generator
    from esrgan_plugin.inference.upscale import choose_device, drop_earlier_outputs, list_inputs, plan_outputs
    from esrgan_plugin.inference.upscale_files import UpscaleSettings, upscale_files
    from esrgan_plugin.inference.video_upscale import VideoStopped

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
    settings = UpscaleSettings(output=args.output, suffix=args.suffix, ext=args.ext, tile=tile,
                               tile_given=args.tile is not None, tile_pad=args.tile_pad, max_memory=args.max_memory,
                               outscale=args.outscale, alpha=args.alpha, color_fix=args.color_fix,
                               strip_metadata=args.strip_metadata, video_codec=args.video_codec, crf=args.crf,
                               batch=args.batch)
    if args.plan:
        return print_plans(net, inputs, settings)
    try:  # lines written through tqdm keep its progress bars intact
        failed = upscale_files(net, inputs, outputs, settings, report=lambda line: tqdm.write(line, file=sys.stderr))
    except VideoStopped as stop:
        say(f'error: {stop}', error=True)
        return 128 + stop.signum
    say(f'{len(inputs) - failed} of {len(inputs)} file(s) written to {args.output}'
        + (f', {failed} failed' if failed else ''), error=True)
    return 1 if failed else 0


def print_plans(net: torch.nn.Module, inputs: list[str], settings: UpscaleSettings) -> int:
    """``--plan``: each image's predicted peaks (``upscale_files.plan_lines``); 1 if an image cannot be read."""
    from esrgan_plugin.inference.image_io import ImageReadError
    from esrgan_plugin.inference.upscale_files import plan_lines
    failed = 0
    for src in inputs:
        try:
            lines = plan_lines(net, src, settings)
        except ImageReadError as err:
            say(f'error: {err}', error=True)
            failed += 1
            continue
        for line in lines:
            say(line)
    return 1 if failed else 0


if __name__ == '__main__':
    run_main(main)
