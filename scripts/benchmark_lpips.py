"""The plugin's LPIPS against the ``lpips`` package on the same weights and images: agreement and speed.

    python scripts/benchmark_lpips.py [--images ../shared/data/Set14/GTmod12] [--repeats 3] [--limit N] [--nets alex vgg]

The ImageNet backbones are not needed: both implementations get the same randomly initialised trunk (the
package's own ``pnet_rand=True`` network, saved as a torchvision-style ``features.*`` file for the plugin) and
the package's shipped linear layers. Each pair is (image, image blurred), so the distances are not trivial.
Timings are interleaved in one process (median seconds per pair, CPU, one thread unless OMP_NUM_THREADS says).
"""
from __future__ import annotations

import argparse
import glob
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--images', default='../shared/data/Set14/GTmod12', help='folder of PNG images')
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--limit', type=int, default=None, help='use only the first N images')
    parser.add_argument('--nets', nargs='+', choices=['alex', 'vgg'], default=['alex', 'vgg'])
    return parser


if __name__ == '__main__':
    build_parser().parse_args()  # -h and usage errors are answered here, before the imports below

import cv2  # noqa: E402
import torch  # noqa: E402

import esrgan_plugin  # noqa: E402
esrgan_plugin.register()  # basicsr adaptations and the plugin's classes
from esrgan_plugin.metrics import lpips_metric  # noqa: E402


def main() -> None:
    parser = build_parser()
    args = parser.parse_args()
    import lpips  # the reference implementation

    paths = sorted(glob.glob(os.path.join(args.images, '*.png')))[:args.limit]
    if not paths:
        parser.error(f'no PNG images in {args.images}')
    torch.set_grad_enabled(False)
    for net in args.nets:
        torch.manual_seed(0)
        reference = lpips.LPIPS(net=net, pnet_rand=True, verbose=False).eval()
        trunk = {}
        for slice_ in reference.net.children():
            for index, layer in slice_.named_children():
                trunk.update({f'features.{index}.{k}': v for k, v in layer.state_dict().items()})
        with tempfile.TemporaryDirectory() as tmp:
            backbone = os.path.join(tmp, 'trunk.pth')
            torch.save(trunk, backbone)
            _, linear = lpips_metric.resolve_weights(net, backbone)
            started = time.perf_counter()
            mine = lpips_metric.LPIPS(net, backbone, linear)
            build_mine = time.perf_counter() - started
        started = time.perf_counter()
        lpips.LPIPS(net=net, pnet_rand=True, verbose=False)
        build_reference = time.perf_counter() - started
        worst, times_ref, times_mine = 0.0, [], []
        for path in paths:
            img = cv2.imread(path)
            blurred = cv2.GaussianBlur(img, (5, 5), 1.5)
            x, y = lpips_metric.to_lpips_input(img), lpips_metric.to_lpips_input(blurred)
            for _ in range(args.repeats):
                started = time.perf_counter()
                ref = float(reference(x, y))
                times_ref.append(time.perf_counter() - started)
                started = time.perf_counter()
                got = float(mine(x, y)[0])
                times_mine.append(time.perf_counter() - started)
            worst = max(worst, abs(ref - got))
        print(f'{net}: {len(paths)} images, max |plugin - lpips package| = {worst:.2e}; median s/pair: '
              f'package {statistics.median(times_ref):.3f}, plugin {statistics.median(times_mine):.3f}; '
              f'build s: package {build_reference:.2f}, plugin {build_mine:.2f}')


if __name__ == '__main__':
    main()
