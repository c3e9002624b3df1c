"""Frames per second of video upscaling with ``infer --batch N`` against frame by frame (``--batch 1``).

A clip of moving-pattern frames is made with PyAV, then upscaled as ``infer`` does (``video_upscale.upscale_video``:
decode, the network on N whole frames at once, libx264 encode, the sound copied) with the trained x4 model in
fp32, each batch size once per round, the rounds interleaved so that other work on the machine disturbs all
sizes alike. Printed per batch size: the frames per second of each round, their median and its ratio to
batch 1.

    python scripts/benchmark_video_batch.py                    # 64x64 frames, batches 1 2 4 8, on the CPU
    python scripts/benchmark_video_batch.py --device cuda --size 256 --frames 64 --batch 1 4 8 16
"""
from __future__ import annotations

import argparse
import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(REPO), 'shared', 'data')


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--model', default=os.path.join(SHARED, 'weights', 'RealESRGAN_x4plus.pth'),
                        help='generator checkpoint (default: the shared RealESRGAN_x4plus.pth)')
    parser.add_argument('--size', type=int, default=64, help='side of the square input frames')
    parser.add_argument('--frames', type=int, default=16, help='frames of the clip')
    parser.add_argument('--batch', type=int, nargs='+', default=[1, 2, 4, 8], help='batch sizes to compare')
    parser.add_argument('--rounds', type=int, default=2, help='runs of each batch size, interleaved')
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    parser.add_argument('--precision', choices=['fp32', 'bf16', 'fp16'], default='fp32')
    parser.add_argument('--threads', type=int, default=2)
    return parser


if __name__ == '__main__':
    ARGS = build_parser().parse_args()  # -h and usage errors are answered here, before torch is imported

import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from fractions import Fraction  # noqa: E402

import av  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402


def make_clip(path: str, frames: int, size: int) -> None:
    """``frames`` frames at 25 fps of a bar sliding over a gradient, with a 440 Hz tone (AAC)."""
    out = av.open(path, 'w')
    video = out.add_stream('libx264', rate=25)
    video.width = video.height = size
    sound = out.add_stream('aac', rate=8000)
    sound.layout = 'mono'
    ramp = np.linspace(0, 200, size, dtype=np.uint8)
    for i in range(frames):
        img = np.stack([ramp[None, :].repeat(size, 0), ramp[:, None].repeat(size, 1),
                        np.full((size, size), i * 37 % 256, np.uint8)], axis=2)
        img[:, (3 * i) % (size - 4):(3 * i) % (size - 4) + 4] = 255
        out.mux(video.encode(av.VideoFrame.from_ndarray(img, format='rgb24')))
    out.mux(video.encode(None))
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(frames * 320) / 8000)).astype(np.float32)
    for start in range(0, len(tone) - 1023, 1024):
        piece = av.AudioFrame.from_ndarray(tone[None, start:start + 1024].copy(), format='flt', layout='mono')
        piece.sample_rate, piece.pts, piece.time_base = 8000, start, Fraction(1, 8000)
        out.mux(sound.encode(piece))
    out.mux(sound.encode(None))
    out.close()


def main(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    import esrgan_plugin
    esrgan_plugin.register()
    from esrgan_plugin.archs.checkpoint import load_generator
    from esrgan_plugin.inference.runtime import choose_dtype, prepare_generator
    from esrgan_plugin.inference.upscale_files import UpscaleSettings
    from esrgan_plugin.inference.video_upscale import upscale_video

    device = torch.device(args.device)
    dtype, _ = choose_dtype(args.precision, device)
    net = prepare_generator(load_generator(args.model), device, dtype, channels_last=args.precision != 'fp32')
    folder = tempfile.mkdtemp()
    clip = os.path.join(folder, 'clip.mp4')
    make_clip(clip, args.frames, args.size)
    seconds: dict[int, list[float]] = {b: [] for b in args.batch}
    upscale_video(net, clip, os.path.join(folder, 'warm.mp4'), settings(UpscaleSettings, 1, folder), print)
    for _ in range(args.rounds):
        for batch in args.batch:
            dst = os.path.join(folder, f'out{batch}.mp4')
            if os.path.exists(dst):
                os.remove(dst)
            if device.type == 'cuda':
                torch.cuda.synchronize()
            start = time.perf_counter()
            upscale_video(net, clip, dst, settings(UpscaleSettings, batch, folder), print)
            seconds[batch].append(time.perf_counter() - start)
    cpu = torch.backends.cpu.get_cpu_capability()
    print(f'{args.frames} frames of {args.size}x{args.size}, {args.device} ({cpu}, {args.threads} threads), '
          f'{args.precision}, median of {args.rounds} round(s), torch {torch.__version__}')
    print('| --batch | frames/s (median) | vs --batch 1 | frames/s of each round |\n|---|---|---|---|')
    base = args.frames / statistics.median(seconds[args.batch[0]])
    for batch in args.batch:
        fps = args.frames / statistics.median(seconds[batch])
        rounds = ', '.join(f'{args.frames / s:.3f}' for s in seconds[batch])
        print(f'| {batch} | {fps:.3f} | {fps / base:.2f}× | {rounds} |')


def settings(cls, batch: int, folder: str):
    """Whole frames (``--tile 0``), ``batch`` at once, the default encoder."""
    return cls(output=folder, suffix='', ext='auto', tile=0, tile_given=True, tile_pad=0, max_memory=None,
               outscale=None, alpha='net', color_fix='none', batch=batch)


if __name__ == '__main__':
    sys.exit(main(ARGS))
