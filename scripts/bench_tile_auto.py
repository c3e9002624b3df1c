"""Time and peak memory of upscaling against the tile size, and `infer`'s defaults against fixed tiles.

Two measurements, each run in fresh processes, one at a time (their peaks are the kernel's high-water mark of
each process, ``VmHWM``, or of the command as the only child of a small wrapper):

``sweep``: one window per run, an image of each ``--sides`` upscaled whole (``upscale.upscale_to_array`` into an
8-bit canvas), so the time per window pixel shows whether larger windows compute faster: wall seconds, user and
kernel CPU seconds (the kernel's share is mostly page faults of fresh large allocations), and the growth of the
peak resident memory.

``compare``: a synthetic photo (smooth gradients and noise, JPEG) of ``--size`` upscaled by the command
``python -m esrgan_plugin.infer`` with its defaults and with each ``--tiles``, each in its own process: wall
seconds, CPU seconds, the command's peak, the memory available before it started and the default share of it
(``choices.DEFAULT_MEMORY_SHARE``), auto's choice as the command reported it, and the checks of the benchmark: the
default's peak within the share, and its time within 10 % of the best fixed tile. Also prints ``--plan`` for the
photo (and with ``--plan-size``, for a photo of that size, e.g. 48 megapixels, without upscaling it).

    python scripts/bench_tile_auto.py sweep --sides 64 128 192 256                     # the trained x4plus
    python scripts/bench_tile_auto.py sweep --num-feat 16 --num-grow-ch 8 --num-block 1 --sides 256 512 1024 2048
    python scripts/bench_tile_auto.py compare --num-feat 8 --num-grow-ch 4 --num-block 1 --size 4000x3000 \\
        --plan-size 8000x6000
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WEIGHTS = os.path.join(os.path.dirname(ROOT), 'shared', 'data', 'weights', 'RealESRGAN_x4plus.pth')

# One run of the sweep in a fresh interpreter: the net, one random image, one whole-image upscale.
SWEEP_CHILD = '''
import json, resource, sys, time
import numpy as np
import torch
from esrgan_plugin.archs.checkpoint import load_generator
from esrgan_plugin.inference.image_io import Picture
from esrgan_plugin.inference.upscale import upscale_to_array
model, side = sys.argv[1], int(sys.argv[2])
net = load_generator(model).eval()
picture = Picture(np.random.default_rng(0).random((side, side, 3), dtype=np.float32), None, np.dtype(np.uint8))


def status(key):
    with open('/proc/self/status') as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key + ':'))


with open('/proc/self/clear_refs', 'w') as f:
    f.write('5')  # VmHWM back to the resident memory now
before = status('VmRSS')
usage, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
upscale_to_array(net, picture, np.dtype(np.uint8), 0, 0)
seconds, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps(dict(seconds=seconds, user=after.ru_utime - usage.ru_utime, system=after.ru_stime - usage.ru_stime,
                      growth=status('VmHWM') - before)))
'''

# Runs its arguments as its only child; prints the child's exit code, peak resident memory (KiB) and CPU seconds.
WRAPPER = '''
import json, resource, subprocess, sys
result = subprocess.run(sys.argv[1:], capture_output=True, text=True)
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps(dict(code=result.returncode, peak=usage.ru_maxrss * 1024, user=usage.ru_utime,
                      system=usage.ru_stime, stderr=result.stderr[-3000:])))
'''


def env() -> dict:
    return dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))


def available() -> int:
    with open('/proc/meminfo') as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith('MemAvailable:'))


def gib(n: float) -> str:
    return f'{n / 2**30:.2f} GiB'


def machine() -> str:
    import torch
    model = next((line.split(':', 1)[1].strip() for line in open('/proc/cpuinfo') if line.startswith('model name')),
                 platform.processor())
    load = ', '.join(f'{x:.1f}' for x in os.getloadavg())
    return (f'{model}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads, '
            f'{torch.backends.cpu.get_cpu_capability()}); {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}; '
            f'load average {load}; MemAvailable {gib(available())}')


def model_file(args: argparse.Namespace, folder: str) -> tuple[str, str]:
    """The checkpoint to run and its description: --model, or a seeded random net of the given widths."""
    if args.num_feat is None:
        return args.model, os.path.basename(args.model)
    import torch

    from esrgan_plugin.archs.rrdbnet_arch import ESRGANRRDBNet
    torch.manual_seed(0)
    net = ESRGANRRDBNet(num_feat=args.num_feat, num_block=args.num_block, num_grow_ch=args.num_grow_ch)
    path = os.path.join(folder, 'small.pth')
    torch.save({'params': net.state_dict()}, path)
    return path, f'random RRDBNet x4, num_feat {args.num_feat}, num_grow_ch {args.num_grow_ch}, ' \
                 f'{args.num_block} block(s)'


def sweep(args: argparse.Namespace, folder: str) -> None:
    model, name = model_file(args, folder)
    print(f'{machine()}\n{name}; each side one whole-image window, a fresh process each\n')
    print('| window side | seconds | user s | kernel s | CPU µs per window pixel | kernel share | peak growth |')
    print('|---|---|---|---|---|---|---|')
    for side in args.sides:
        result = subprocess.run([sys.executable, '-c', SWEEP_CHILD, model, str(side)], capture_output=True, text=True,
                                env=env())
        if result.returncode:
            sys.exit(f'side {side} failed:\n{result.stderr[-2000:]}')
        got = json.loads(result.stdout.strip().splitlines()[-1])
        cpu = got['user'] + got['system']
        print(f'| {side} | {got["seconds"]:.1f} | {got["user"]:.1f} | {got["system"]:.1f} | '
              f'{1e6 * cpu / side**2:.2f} | {got["system"] / cpu:.0%} | {gib(got["growth"])} |', flush=True)


def synthetic_photo(path: str, width: int, height: int) -> None:
    """Smooth colour gradients with a little noise, as a JPEG (what a camera writes)."""
    import cv2
    import numpy as np
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    noise = np.random.default_rng(0).normal(0, 8, (height, width, 3)).astype(np.float32)
    image = np.stack([128 + 100 * np.sin(x / 97), 128 + 100 * np.cos(y / 61), 128 + 90 * np.sin((x + y) / 143)], -1)
    assert cv2.imwrite(path, np.clip(image + noise, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 92])


def infer(*argv: str) -> list[str]:
    return [sys.executable, '-m', 'esrgan_plugin.infer', *argv]


def compare(args: argparse.Namespace, folder: str) -> None:
    from esrgan_plugin.choices import DEFAULT_MEMORY_SHARE
    model, name = model_file(args, folder)
    width, height = map(int, args.size.split('x'))
    photo = os.path.join(folder, 'photo.jpg')
    synthetic_photo(photo, width, height)
    common = ['-i', photo, '-m', model, '--device', 'cpu']
    print(f'{machine()}\n{name}; photo {width}x{height} JPEG; default share {DEFAULT_MEMORY_SHARE:.0%}\n')
    plan = subprocess.run(infer(*common, '--plan'), capture_output=True, text=True, env=env())
    print(plan.stdout or plan.stderr)
    print('| tiles | seconds | user s | kernel s | peak | available before | within the share | auto chose |')
    print('|---|---|---|---|---|---|---|---|')
    rows = {}
    for tile in ['default', *args.tiles]:
        out = os.path.join(folder, f'out_{tile}')
        extra = [] if tile == 'default' else ['--tile', tile]
        free = available()
        start = time.perf_counter()
        result = subprocess.run([sys.executable, '-c', WRAPPER, *infer(*common, '-o', out, *extra)],
                                capture_output=True, text=True, env=env())
        seconds = time.perf_counter() - start
        got = json.loads(result.stdout.strip().splitlines()[-1])
        if got['code']:
            sys.exit(f'--tile {tile} failed:\n{got["stderr"]}')
        chose = next((line.split(': ', 1)[1] for line in got['stderr'].splitlines() if 'predicted peak' in line),
                     'the whole image')
        within = got['peak'] <= DEFAULT_MEMORY_SHARE * free
        rows[tile] = seconds
        print(f'| {tile} | {seconds:.1f} | {got["user"]:.1f} | {got["system"]:.1f} | {gib(got["peak"])} | '
              f'{gib(free)} | {"yes" if within else "no"} ({gib(DEFAULT_MEMORY_SHARE * free)}) | '
              f'{chose if tile == "default" else ""} |', flush=True)
        for entry in os.listdir(out):
            os.remove(os.path.join(out, entry))  # the outputs are large; only the times and peaks are kept
    best = min(rows[t] for t in args.tiles)
    print(f'\ndefault {rows["default"]:.1f} s against the best fixed tile {best:.1f} s: '
          f'{rows["default"] / best - 1:+.1%} (the benchmark asks for at most +10 %)')
    if args.plan_size:
        pw, ph = map(int, args.plan_size.split('x'))
        synthetic_photo(photo, pw, ph)
        plan = subprocess.run(infer(*common, '--plan'), capture_output=True, text=True, env=env())
        print(f'\n--plan for {pw}x{ph}:\n{plan.stdout or plan.stderr}')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('what', choices=('sweep', 'compare'))
    parser.add_argument('--model', default=WEIGHTS, help='generator checkpoint (default: the trained x4plus)')
    parser.add_argument('--num-feat', type=int, default=None, help='a random net of these widths instead of --model')
    parser.add_argument('--num-grow-ch', type=int, default=None)
    parser.add_argument('--num-block', type=int, default=1)
    parser.add_argument('--sides', type=int, nargs='+', default=[64, 128, 192, 256], help='sweep: window sides')
    parser.add_argument('--size', default='4000x3000', help='compare: the photo, WIDTHxHEIGHT')
    parser.add_argument('--tiles', nargs='+', default=['512', '1024', '2048'], help='compare: the fixed tiles')
    parser.add_argument('--plan-size', default=None, help='compare: also --plan a photo of this size')
    args = parser.parse_args()
    if args.num_feat is not None and args.num_grow_ch is None:
        args.num_grow_ch = args.num_feat // 2
    with tempfile.TemporaryDirectory() as folder:
        (sweep if args.what == 'sweep' else compare)(args, folder)


if __name__ == '__main__':
    main()
