"""How much context a tile needs with trained weights: 8-bit differences against the untiled output by distance.

For each photo, a strip of ``--rows`` x ``--cols`` LR pixels is upscaled whole and, separately, only its left
half (a window cut in the middle of the photo content). Every output column of the half-window run is
compared with the whole run; its distance to the cut is the context that column had. The table gives, per
context distance, the share of 8-bit values that differ and the largest difference, and from it the share
of differing values a tile layout (``--tile`` with each ``--pad``) would give on a large image: a core
pixel at offset u of a T-pixel tile has P + u pixels of context on one side and P + T - u on the other,
and rows and columns both count (a union bound, so an over-estimate). Runs in float32 on the CPU.

    python scripts/measure_tile_seams.py                    # shared trained weights, three Set14 photos
"""
from __future__ import annotations

import argparse
import os

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--photos', nargs='+', default=['baboon', 'barbara', 'zebra'],
                        help='Set14 ground-truth photos used as LR inputs')
    parser.add_argument('--rows', type=int, default=24)
    parser.add_argument('--cols', type=int, default=256, help='strip width; the cut is in the middle')
    parser.add_argument('--tile', type=int, default=256, help='tile side for the layout estimate')
    parser.add_argument('--pads', type=int, nargs='+', default=[32, 48, 64, 80, 96, 112, 128])
    parser.add_argument('--threads', type=int, default=2)
    return parser


if __name__ == '__main__':
    build_parser().parse_args()  # -h and usage errors are answered here, before the imports below

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(REPO), 'shared', 'data')
TRAINED = os.path.join(SHARED, 'weights', 'RealESRGAN_x4plus.pth')


def to_8bit(out: torch.Tensor) -> np.ndarray:
    return np.round(out[0].clamp(0, 1).numpy() * 255).astype(np.int16)


def main() -> None:
    parser = build_parser()
    args = parser.parse_args()

    import esrgan_plugin
    esrgan_plugin.register()  # basicsr adaptations and the plugin's classes
    from esrgan_plugin.archs.checkpoint import load_generator
    torch.set_num_threads(args.threads)
    net = load_generator(TRAINED).eval()
    half = args.cols // 2
    changed = np.zeros(half)  # per distance 1..half: values that differ
    worst = np.zeros(half, dtype=int)
    total = np.zeros(half)
    for name in args.photos:
        img = cv2.imread(os.path.join(SHARED, 'Set14', 'GTmod12', f'{name}.png'))[..., ::-1]
        top, left = (img.shape[0] - args.rows) // 2, (img.shape[1] - args.cols) // 2
        strip = img[top:top + args.rows, left:left + args.cols] / np.float32(255)
        x = torch.from_numpy(np.ascontiguousarray(strip.transpose(2, 0, 1)))[None]
        with torch.inference_mode():
            whole, cut = to_8bit(net(x)), to_8bit(net(x[..., :half]))
        diff = np.abs(whole[..., :half * 4] - cut)  # C x H x W at HR
        for col in range(half):
            d = half - col  # context to the right of this LR column
            block = diff[..., col * 4:col * 4 + 4]
            changed[d - 1] += (block > 0).sum()
            total[d - 1] += block.size
            worst[d - 1] = max(worst[d - 1], int(block.max()))
        print(f'{name}: done', flush=True)
    share = changed / total
    print(f'\ncontext (LR px) | share of 8-bit values that differ | max difference (levels); '
          f'{len(args.photos)} photos, {args.rows}x{args.cols} strips')
    for d in (8, 16, 24, 32, 48, 64, 80, 96, 112, 128):
        if d <= half:
            print(f'{d:5d} | {share[d - 1] * 100:8.4f} % | {worst[d - 1]}')
    print(f'\nestimated for --tile {args.tile} on a large image (pad: share of differing values, max level '
          f'difference, compute overhead)')
    for pad in args.pads:
        def s(d: int) -> float:  # beyond the measured range the share is taken as that at the farthest distance
            return share[min(d, half) - 1]
        per_axis = [s(pad + u) + s(pad + args.tile - u) for u in range(args.tile)]
        estimate = 2 * np.mean(per_axis)
        max_diff = worst[min(pad, half) - 1:].max()
        overhead = ((args.tile + 2 * pad) / args.tile) ** 2
        print(f'pad {pad:4d}: {estimate * 100:7.4f} %, max {max_diff}, overhead {overhead:.2f}x')


if __name__ == '__main__':
    main()
