"""Inference speed and accuracy: basicsr's RRDBNet in fp32 against ours in fp32 and in each fast mode.

Every row runs the same generator weights on the same input in the same process, the rows interleaved
(one run of each, then the next round), and reports the median seconds, the ratio to basicsr, the achieved
GFLOP/s (FLOPs counted once with torch's FlopCounterMode) and the agreement of the 8-bit output with ours in
fp32 (PSNR on BT.601 luma, largest level difference). The trained weights of the shared data are used when
present (../shared/data/weights/RealESRGAN_x4plus.pth), a paper-initialised generator otherwise.

    python scripts/benchmark_infer.py                        # CPU, 64x64 crop, 2 threads
    python scripts/benchmark_infer.py --device cuda --size 256 --compile
    python scripts/benchmark_infer.py --command --size 256   # whole commands, start-up subtracted

``--command`` times whole commands instead: ``python -m esrgan_plugin.infer --precision bf16 --tile 0``
against a script that runs basicsr's RRDBNet in fp32 eager, each on the image and on an 8x8 image (start-up:
imports, loading the model), and reports both with start-up subtracted.
"""
from __future__ import annotations

import argparse
import copy
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--size', type=int, default=64, help='input side in pixels (default 64)')
    parser.add_argument('--repeats', type=int, default=5, help='timed runs per row, the median is reported')
    parser.add_argument('--threads', type=int, default=2, help='CPU threads (default 2)')
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    parser.add_argument('--compile', action='store_true', help='add a torch.compile row (compiles first, slow)')
    parser.add_argument('--num-block', type=int, default=23, help='RRDBs when the trained weights are absent')
    parser.add_argument('--skip', nargs='+', default=[], metavar='WORD',
                        help='leave out the rows whose name contains WORD, e.g. --skip NCHW (emulated bf16 in NCHW '
                        'takes minutes per forward on CPUs without native bf16)')
    parser.add_argument('--command', action='store_true', help='time whole commands as a user runs them instead')
    return parser


if __name__ == '__main__':
    build_parser().parse_args()  # -h and usage errors are answered here, before the imports below

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(REPO), 'shared', 'data')
TRAINED = os.path.join(SHARED, 'weights', 'RealESRGAN_x4plus.pth')
PHOTO = os.path.join(SHARED, 'Set14', 'LRbicx4', 'barbara.png')

# Runs basicsr's own RRDBNet in fp32 eager, as a user of basicsr would: the reference command.
BASICSR_SCRIPT = '''
import sys, cv2, numpy as np, torch
import esrgan_plugin  # makes basicsr importable on current torchvision; the net below is basicsr's
from basicsr.archs.rrdbnet_arch import RRDBNet
from esrgan_plugin.archs.checkpoint import load_generator_state
net = RRDBNet(3, 3, scale=4, num_feat=64, num_block=23, num_grow_ch=32).eval()
net.load_state_dict(load_generator_state(sys.argv[1]))
img = cv2.imread(sys.argv[2])[..., ::-1] / 255.0
x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float()[None]
with torch.no_grad():
    out = net(x)[0].clamp(0, 1).numpy().transpose(1, 2, 0)
cv2.imwrite(sys.argv[3], np.round(out * 255).astype(np.uint8)[..., ::-1])
'''


def test_image(size: int) -> np.ndarray:
    """A size x size RGB uint8 crop of a real photo (tiled by reflection when the photo is smaller)."""
    if os.path.isfile(PHOTO):
        img = cv2.imread(PHOTO)[..., ::-1]
    else:
        img = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    reps = (-(-size // img.shape[0]), -(-size // img.shape[1]), 1)
    return np.ascontiguousarray(np.tile(img, reps)[:size, :size])


def y_psnr_and_max_diff(a: np.ndarray, b: np.ndarray) -> tuple[float, int]:
    """PSNR of two 8-bit RGB images on BT.601 luma (MATLAB rgb2ycbcr), and their largest level difference."""
    weights = np.array([65.481, 128.553, 24.966]) / 255

    def luma(img):
        return img.astype(np.float64) @ weights + 16
    mse = np.mean((luma(a) - luma(b)) ** 2)
    return (float('inf') if mse == 0 else 10 * np.log10(255 ** 2 / mse)), int(np.abs(a.astype(int) - b).max())


def to_8bit(out: torch.Tensor) -> np.ndarray:
    return np.round(out[0].float().clamp(0, 1).cpu().permute(1, 2, 0).numpy() * 255).astype(np.uint8)


def build_modes(args: argparse.Namespace, device: torch.device) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """Each row's forward function; ours are prepared with esrgan_plugin.inference.runtime, as infer does."""
    import esrgan_plugin
    esrgan_plugin.register()  # basicsr adaptations and the plugin's classes
    from basicsr.archs.rrdbnet_arch import RRDBNet

    from esrgan_plugin.archs.checkpoint import load_generator
    from esrgan_plugin.inference.runtime import prepare_generator
    from esrgan_plugin.archs.rrdbnet_arch import ESRGANRRDBNet

    ours = load_generator(TRAINED) if os.path.isfile(TRAINED) else ESRGANRRDBNet(num_block=args.num_block)
    theirs = RRDBNet(3, 3, scale=4, num_feat=64, num_block=len(ours.body), num_grow_ch=32).eval()
    theirs.load_state_dict(ours.state_dict())
    theirs.to(device)
    low = torch.bfloat16 if device.type == 'cpu' else torch.float16
    low_name = 'bf16' if low == torch.bfloat16 else 'fp16'

    def plain(net):
        return lambda x: net(x)

    def autocast(net):
        def run(x):
            with torch.autocast(device.type, low):
                return net(x)
        return run

    def cast_input(net, dtype):
        return lambda x: net(x.to(dtype))

    fp32 = prepare_generator(copy.deepcopy(ours), device)
    fp32_cl = prepare_generator(copy.deepcopy(ours), device, channels_last=True)
    low_weights = prepare_generator(copy.deepcopy(ours), device, low, channels_last=False)
    fast = prepare_generator(copy.deepcopy(ours), device, low)  # what infer --precision bf16 (fp16 on CUDA) runs
    modes = {
        'basicsr RRDBNet fp32 eager': plain(theirs),
        'ours fp32': plain(fp32),
        'ours fp32 + channels_last': plain(fp32_cl),
        f'ours {low_name} autocast, NCHW': autocast(fp32),
        f'ours {low_name} autocast + channels_last': autocast(fp32_cl),
        f'ours {low_name} weights, NCHW': cast_input(low_weights, low),
        f'ours {low_name} weights + channels_last (infer)': cast_input(fast, low),
    }
    modes = {name: run for name, run in modes.items() if not any(word in name for word in args.skip)}
    if args.compile:
        compiled = prepare_generator(copy.deepcopy(ours), device, low, compile_mode=True)
        modes[f'ours {low_name} weights + channels_last + compile'] = cast_input(compiled, low)
    return modes


def bench_in_process(args: argparse.Namespace) -> None:
    from torch.utils.flop_counter import FlopCounterMode
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    modes = build_modes(args, device)
    img = test_image(args.size)
    x = torch.from_numpy(img.transpose(2, 0, 1) / np.float32(255)).float()[None].to(device)

    def timed(run):
        with torch.inference_mode():
            if device.type == 'cuda':
                torch.cuda.synchronize()
            start = time.perf_counter()
            out = run(x)
            if device.type == 'cuda':
                torch.cuda.synchronize()
        return time.perf_counter() - start, out

    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        modes['ours fp32'](x)
    flops = counter.get_total_flops()
    outputs = {}
    for name, run in modes.items():  # warm-up (and compilation), not timed
        seconds, out = timed(run)
        outputs[name] = to_8bit(out)
        print(f'warm-up {name}: {seconds:.2f} s', file=sys.stderr, flush=True)
    times = {name: [] for name in modes}
    for _ in range(args.repeats):
        for name, run in modes.items():
            times[name].append(timed(run)[0])
    from esrgan_plugin.training.precision import cpu_has_fast_bf16
    if device.type == 'cpu':
        print(f'CPU with native bf16 (AVX512-BF16/AMX): {cpu_has_fast_bf16()}')
    weights = 'trained RealESRGAN_x4plus' if os.path.isfile(TRAINED) else 'paper-initialised (no trained weights)'
    print(f'device {args.device}, {args.threads} threads, {args.size}x{args.size} input, {weights} weights, '
          f'{flops / 1e9:.1f} GFLOP per forward, median of {args.repeats}')
    print(f'{"mode":<52} {"seconds":>8} {"vs basicsr":>10} {"GFLOP/s":>8} {"Y-PSNR":>8} {"max diff":>8}')
    base = statistics.median(times['basicsr RRDBNet fp32 eager'])
    for name, samples in times.items():
        seconds = statistics.median(samples)
        psnr, diff = y_psnr_and_max_diff(outputs[name], outputs['ours fp32'])
        print(f'{name:<52} {seconds:8.3f} {base / seconds:9.2f}x {flops / seconds / 1e9:8.1f} {psnr:8.1f} {diff:8d}')


def bench_commands(args: argparse.Namespace) -> None:
    """Whole commands as a user runs them, each less its own time on an 8x8 image (start-up)."""
    if not os.path.isfile(TRAINED):
        sys.exit(f'--command needs the trained weights at {TRAINED}')
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), PYTHONPATH=REPO + os.pathsep + os.environ.get(
        'PYTHONPATH', ''))
    with tempfile.TemporaryDirectory() as tmp:
        for size in (8, args.size):
            cv2.imwrite(os.path.join(tmp, f'in{size}.png'), test_image(size)[..., ::-1])

        def basicsr_cmd(size):
            return [sys.executable, '-c', BASICSR_SCRIPT, TRAINED, os.path.join(tmp, f'in{size}.png'),
                    os.path.join(tmp, f'basicsr{size}.png')]

        def infer_cmd(size):
            return [sys.executable, '-m', 'esrgan_plugin.infer', '-i', os.path.join(tmp, f'in{size}.png'), '-o',
                    tmp, '--suffix', '_bf16', '-m', TRAINED, '--precision', 'bf16', '--tile', '0', '--device',
                    'cpu', '--overwrite']  # the same output on every repeat

        commands = {'basicsr RRDBNet fp32 eager script': basicsr_cmd, 'infer --precision bf16 --tile 0': infer_cmd}
        times = {(name, size): [] for name in commands for size in (8, args.size)}
        for _ in range(args.repeats):
            for name, cmd in commands.items():
                for size in (8, args.size):
                    start = time.perf_counter()
                    subprocess.run(cmd(size), check=True, env=env, capture_output=True)
                    times[name, size].append(time.perf_counter() - start)
        reference = cv2.imread(os.path.join(tmp, f'basicsr{args.size}.png'))[..., ::-1]
        fast = cv2.imread(os.path.join(tmp, f'in{args.size}_bf16.png'))[..., ::-1]
    print(f'whole commands, {args.threads} threads, {args.size}x{args.size} image, median of {args.repeats}')
    net_seconds = {}
    for name in commands:
        startup, total = statistics.median(times[name, 8]), statistics.median(times[name, args.size])
        net_seconds[name] = total - startup
        print(f'{name:<36} total {total:7.2f} s, start-up (8x8) {startup:5.2f} s, '
              f'less start-up {total - startup:7.2f} s')
    ratio = net_seconds['basicsr RRDBNet fp32 eager script'] / net_seconds['infer --precision bf16 --tile 0']
    psnr, diff = y_psnr_and_max_diff(fast, reference)
    print(f'speed-up {ratio:.2f}x; bf16 output against fp32: Y-PSNR {psnr:.1f} dB, max diff {diff} levels')


def main() -> None:
    parser = build_parser()
    args = parser.parse_args()
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: no CUDA device is available here; use --device cpu')
    bench_commands(args) if args.command else bench_in_process(args)


if __name__ == '__main__':
    main()
