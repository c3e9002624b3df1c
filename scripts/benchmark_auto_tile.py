"""Time upscaling with the tile ``--tile auto`` chooses against fixed tiles, on images of several sizes.

In one process (start-up is the same for every choice and left out): the generator (the trained
RealESRGAN_x4plus, or a random net of the paper's widths with ``--num-block`` blocks), a random image per size,
and for each ``--tiles`` value the seconds of ``upscale.upscale_to_array`` into an 8-bit canvas, the median of
``--repeats``, rows interleaved. ``auto`` is resolved as the command resolves it (``memory.choose_tile`` with the
default share of the available RAM and the CPU's tile cap). Also printed: the pixels the windows compute, against
the image's.

    python scripts/benchmark_auto_tile.py --sizes 256 1000 --precision bf16
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WEIGHTS = os.path.join(os.path.dirname(ROOT), 'shared', 'data', 'weights', 'RealESRGAN_x4plus.pth')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--model', default=WEIGHTS, help='generator checkpoint (default: the trained x4plus)')
    parser.add_argument('--num-block', type=int, default=None,
                        help='use a random net of the paper\'s widths with this many blocks instead of --model')
    parser.add_argument('--sizes', type=int, nargs='+', default=[256, 1000], help='square input sides')
    parser.add_argument('--tiles', nargs='+', default=['auto', '384'], help='tiles to compare (auto or pixels)')
    parser.add_argument('--tile-pad', type=int, default=96)
    parser.add_argument('--precision', default='fp32', choices=('fp32', 'bf16'))
    parser.add_argument('--repeats', type=int, default=1)
    args = parser.parse_args()

    import numpy as np
    import torch

    from esrgan_plugin.archs.checkpoint import load_generator
    from esrgan_plugin.archs.rrdbnet_arch import ESRGANRRDBNet
    from esrgan_plugin.inference import memory
    from esrgan_plugin.inference.image_io import Picture
    from esrgan_plugin.inference.runtime import choose_dtype, prepare_generator
    from esrgan_plugin.inference.tiling import window_shape
    from esrgan_plugin.inference.upscale import upscale_to_array

    device = torch.device('cpu')
    dtype, note = choose_dtype(args.precision, device)
    if note:
        print(note)
    net = ESRGANRRDBNet(num_block=args.num_block) if args.num_block is not None else load_generator(args.model)
    net = prepare_generator(net, device, dtype, channels_last=args.precision != 'fp32')
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability '
          f'{torch.backends.cpu.get_cpu_capability()}, {args.precision}, '
          f'{"random paper-width net, %d blocks" % args.num_block if args.num_block is not None else args.model}')
    print('| input | --tile | tile used | windows | window pixels / image pixels | seconds |')
    print('|---|---|---|---|---|---|')
    rng = np.random.default_rng(0)
    for side in args.sizes:
        picture = Picture(rng.random((side, side, 3), dtype=np.float32), None, np.dtype(np.uint8))
        tiles = {}
        for name in args.tiles:
            if name == 'auto':
                budget = memory.memory_budget(device)
                tiles[name] = memory.choose_tile(net, side, side, 3, 1, args.tile_pad, budget,
                                                 memory.fastest_tile_cap(device)).tile
            else:
                tiles[name] = int(name)
        times = {name: [] for name in args.tiles}
        for _ in range(args.repeats):
            for name, tile in tiles.items():
                start = time.perf_counter()
                upscale_to_array(net, picture, np.dtype(np.uint8), tile, args.tile_pad)
                times[name].append(time.perf_counter() - start)
        for name, tile in tiles.items():
            est = memory.estimate(net, side, side, 3, 1, tile, args.tile_pad, memory.memory_budget(device))
            win_h, win_w = window_shape(side, side, tile, args.tile_pad)
            work = est.tiles * win_h * win_w / side**2
            print(f'| {side}x{side} | {name} | {tile or "whole"} | {est.tiles} | {work:.2f} | '
                  f'{statistics.median(times[name]):.1f} |', flush=True)


if __name__ == '__main__':
    main()
