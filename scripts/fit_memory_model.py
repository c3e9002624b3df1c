"""Measure the memory of upscaling and fit the coefficients of ``esrgan_plugin.inference.memory``.

Every measurement runs in a fresh Python (so no earlier allocation is reused), which builds a generator, resets
its peak resident memory (``/proc/self/clear_refs``), runs one thing and reports the growth of the peak over the
memory in use before (VmHWM after less VmRSS before; on CUDA ``torch.cuda.max_memory_allocated`` growth):

* the trunk on windows of several sizes, and the upsampling stage on feature bands of several sizes, with 64/32
  channels (the paper's): the coefficients are fitted to these (least squares, a multiplier of the live channel
  count and a constant, for each dtype and layout);
* whole upscaling runs (``upscale.upscale_to_array``) with the 8/4-channel test net and the full 23-block
  generator at several tiles, whose measured growth is set against the prediction with the fitted coefficients
  (printed as predicted, measured and the relative error).

Paste the printed ``FITTED`` lines into ``esrgan_plugin/inference/memory.py``.

    python scripts/fit_memory_model.py              # the CPU, fp32, fp32 channels_last and bf16 (a few minutes)
    python scripts/fit_memory_model.py --device cuda
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WEIGHTS = os.path.join(os.path.dirname(ROOT), 'shared', 'data', 'weights', 'RealESRGAN_x4plus.pth')
LAYOUTS = {'fp32': ('float32', False), 'fp32-cl': ('float32', True), 'bf16': ('bfloat16', True),
           'fp16': ('float16', True)}
PAPER = dict(num_feat=64, num_grow_ch=32)


def child(spec: dict) -> None:
    """Run one measurement (in its own process) and print the result as JSON."""
    import numpy as np
    import torch

    from esrgan_plugin.archs.rrdbnet_arch import ESRGANRRDBNet
    from esrgan_plugin.inference.image_io import Picture
    from esrgan_plugin.inference.runtime import prepare_generator
    from esrgan_plugin.inference.upscale import upscale_to_array

    device = torch.device(spec['device'])
    dtype = getattr(torch, spec['dtype'])
    torch.manual_seed(0)
    net = ESRGANRRDBNet(num_feat=spec['num_feat'], num_block=spec['num_block'], num_grow_ch=spec['num_grow_ch'])
    net = prepare_generator(net, device, dtype, channels_last=spec['channels_last'])
    layout = torch.channels_last if spec['channels_last'] else torch.contiguous_format
    if spec['kind'] == 'trunk':
        x = torch.rand(1, 3, spec['h'], spec['w']).to(device, dtype).contiguous(memory_format=layout)
    elif spec['kind'] == 'upsample':
        x = torch.rand(1, spec['num_feat'], spec['h'], spec['w']).to(device, dtype).contiguous(memory_format=layout)
    else:
        rng = np.random.default_rng(0)
        picture = Picture(rng.random((spec['h'], spec['w'], 3), dtype=np.float32), None, np.dtype(np.uint8))

    def status():
        with open('/proc/self/status') as f:
            return {k: int(v.split()[0]) * 1024 for k, _, v in (line.partition(':') for line in f)
                    if k in ('VmRSS', 'VmHWM')}

    if device.type == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')  # resets VmHWM to the current resident memory
        before = status()['VmRSS']
    with torch.inference_mode():
        if spec['kind'] == 'trunk':
            out = net.forward_trunk(x)
        elif spec['kind'] == 'upsample':
            out = net.forward_upsample(x)
        else:
            out = upscale_to_array(net, picture, np.dtype(np.uint8), spec['tile'], spec['pad'])
    if device.type == 'cuda':
        torch.cuda.synchronize()
        growth = torch.cuda.max_memory_allocated() - before
    else:
        growth = status()['VmHWM'] - before
    del out
    print(json.dumps({'growth': growth}))


def serve(specs: list[dict]) -> None:
    """Each measurement in a process forked from one that has imported everything and computed nothing (so no
    thread pool or allocation is inherited): the imports are paid once, not once per measurement."""
    import numpy  # noqa: F401  the imports child() makes, done once here
    import torch  # noqa: F401

    import esrgan_plugin.inference.upscale  # noqa: F401
    for spec in specs:
        pid = os.fork()
        if pid == 0:
            try:
                child(spec)
                sys.stdout.flush()
            finally:
                os._exit(0)
        _, status = os.waitpid(pid, 0)
        if status:
            sys.exit(f'measurement {spec} failed')


def measure_all(specs: list[dict]) -> list[int]:
    """The growth of the peak of each measurement, in bytes."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    result = subprocess.run([sys.executable, __file__, '--serve', json.dumps(specs)], capture_output=True,
                            text=True, env=env)
    if result.returncode:
        sys.exit(f'measurements failed:\n{result.stderr[-2000:]}')
    return [json.loads(line)['growth'] for line in result.stdout.strip().splitlines() if line.startswith('{')]


def fit(rows: list[tuple[float, float, float]]) -> tuple[float, float, float]:
    """Least squares ``measured ≈ k * counted + e * pixels + c`` over rows (counted, pixels, measured), in bytes."""
    import numpy as np
    a = np.array([[counted, pixels, 1.0] for counted, pixels, _ in rows])
    k, e, c = np.linalg.lstsq(a, np.array([m for *_, m in rows]), rcond=None)[0]
    return float(k), float(e), float(c)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--device', default='cpu', choices=('cpu', 'cuda'))
    parser.add_argument('--layouts', nargs='+', default=None, choices=list(LAYOUTS),
                        help='dtypes and layouts to fit (default: fp32 fp32-cl bf16 on the CPU, fp32 fp16 on CUDA)')
    parser.add_argument('--child', help=argparse.SUPPRESS)
    parser.add_argument('--serve', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    if args.serve:
        serve(json.loads(args.serve))
        return
    layouts = args.layouts or (['fp32', 'fp32-cl', 'bf16'] if args.device == 'cpu' else ['fp32', 'fp16'])

    import torch
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability '
          f'{torch.backends.cpu.get_cpu_capability()}', flush=True)

    from esrgan_plugin.inference import memory
    from esrgan_plugin.inference.memory import ArchSize, Coefficients

    # Large windows (768 for the paper's widths, 1536 for the tiny net: 1.6 and 0.8 GB of growth) so that the
    # fit holds for the large tiles --tile auto chooses on large photos, not only for small ones.
    archs = {'paper': (ArchSize(3, 3, 64, 32, 4, 1, 2), (64, 128, 192, 256, 512, 768), (32, 64, 128, 256)),
             'tiny': (ArchSize(3, 3, 8, 4, 4, 1, 2), (64, 128, 256, 384, 1024, 1536), (32, 64, 128, 256))}
    big = 4 if args.device == 'cuda' else 1  # the GPU measures larger inputs in the same time
    fitted = {}
    for name in layouts:
        dtype_name, channels_last = LAYOUTS[name]
        size = getattr(torch, dtype_name).itemsize
        specs, rows = [], []
        for arch, trunk_sides, band_sides in archs.values():
            base = dict(device=args.device, dtype=dtype_name, channels_last=channels_last, num_block=1,
                        num_feat=arch.num_feat, num_grow_ch=arch.num_grow_ch)
            for s in trunk_sides:
                specs.append({**base, 'kind': 'trunk', 'h': s * big, 'w': s * big})
                rows.append(('trunk', memory.trunk_channels(arch) * (s * big)**2 * size, (s * big)**2 * size))
            for s in band_sides:
                specs.append({**base, 'kind': 'upsample', 'h': s * big, 'w': s * big})
                rows.append(('up', memory.upsample_channels(arch) * (4 * s * big)**2 * size, (4 * s * big)**2 * size))
        measured = measure_all(specs)
        trunk = [(c, p, m) for (kind, c, p), m in zip(rows, measured) if kind == 'trunk']
        up = [(c, p, m) for (kind, c, p), m in zip(rows, measured) if kind == 'up']
        kt, et, ct = fit(trunk)
        ku, eu, cu = fit(up)
        coef = Coefficients(round(kt, 3), round(et, 2), round(max(ct, 0), -5),
                            round(ku, 3), round(eu, 2), round(max(cu, 0), -5))
        fitted[name] = coef
        print(f'{name}: {coef}')
        for label, rows, k, e, c in (('trunk', trunk, coef.trunk, coef.trunk_extra, coef.trunk_constant),
                                     ('upsample', up, coef.upsample, coef.upsample_extra, coef.upsample_constant)):
            for counted, pixels, got in rows:
                pred = k * counted + e * pixels + c
                print(f'  {label:8s} counted {counted / 2**20:8.1f} MiB  measured {got / 2**20:8.1f} MiB  '
                      f'predicted {pred / 2**20:8.1f} MiB  ({(pred - got) / got:+.1%})', flush=True)
    print('\nFITTED entries for esrgan_plugin/inference/memory.py:')
    for name, coef in fitted.items():
        dtype_name, channels_last = LAYOUTS[name]
        key = torch.backends.cpu.get_cpu_capability() if args.device == 'cpu' else 'cuda'
        print(f"    ('{key}', torch.{dtype_name}, {channels_last}): {coef!r},")

    print('\nwhole upscaling runs, growth of the peak: predicted with these coefficients against measured')
    from esrgan_plugin.inference.tiling import window_shape
    tiny = dict(num_feat=8, num_grow_ch=4, num_block=2)
    full = dict(num_feat=64, num_grow_ch=32, num_block=23)
    cases = [('tiny', tiny, 256, t, 16) for t in (0, 128, 64, 32)]
    cases += [('23-block', full, 96, t, 8) for t in (0, 48, 32)]
    worst = 0.0
    for name in layouts:
        dtype_name, channels_last = LAYOUTS[name]
        size = getattr(torch, dtype_name).itemsize
        coef = fitted[name]
        specs = [dict(device=args.device, dtype=dtype_name, channels_last=channels_last, kind='whole', h=side, w=side,
                      tile=tile, pad=pad, **arch) for _, arch, side, tile, pad in cases]
        for (arch_name, arch, side, tile, pad), got in zip(cases, measure_all(specs)):
            sizes = ArchSize(3, 3, arch['num_feat'], arch['num_grow_ch'], 4, 1, 2)
            win = window_shape(side, side, tile, pad)
            core = min(tile, side) if tile else side
            pred = memory.window_bytes(sizes, *win, core, core, size, coef)
            if args.device == 'cpu':
                pred += memory.image_bytes(sizes, side, side, 3, 1, written=False)
            error = (pred - got) / got
            worst = max(worst, abs(error))
            print(f'  {name:8s} {arch_name:8s} {side}x{side} tile {tile:4d} pad {pad}: measured '
                  f'{got / 2**20:8.1f} MiB  predicted {pred / 2**20:8.1f} MiB  ({error:+.1%})')
    print(f"largest relative error {worst:.1%}")


if __name__ == '__main__':
    main()
