"""What ``infer --color-fix`` changes: colour shift, PSNR-Y and NIQE of a trained x4 model on Set14, per fix.

Each LR image of Set14 is upscaled once, as ``infer`` does (``upscale_to_array``, 8-bit output, fp32 on the
CPU); each fix is then applied to a copy of that output (the fix is a pass over the written output, so this is
exactly what ``infer --color-fix`` writes) and scored on the evaluation path of validation and the test command
against the ground truth: colour shift (largest shift of a channel's mean, levels of 255), PSNR on Y and NIQE,
all with a 4-pixel border. Bicubic upscaling (MATLAB-style, as the LR images were made) is the reference row.
The table gives the means over the 14 images, the largest colour shift of any image, and the fix's time.

    python scripts/benchmark_color_fix.py          # the shared trained weights and Set14 beside the checkout
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
    parser.add_argument('--data', default=os.path.join(SHARED, 'Set14'),
                        help='folder with GTmod12/ and LRbicx4/ (default: the shared Set14)')
    parser.add_argument('--threads', type=int, default=2)
    return parser


if __name__ == '__main__':
    build_parser().parse_args()  # -h and usage errors are answered here, before the imports below

import time  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

METRICS = {'color_shift': {'type': 'calculate_color_shift', 'crop_border': 4},
           'psnr_y': {'type': 'calculate_psnr', 'crop_border': 4, 'test_y_channel': True},
           'niqe': {'type': 'calculate_niqe', 'crop_border': 4, 'convert_to': 'y'}}


def main() -> None:
    args = build_parser().parse_args()
    for path in (args.model, os.path.join(args.data, 'GTmod12'), os.path.join(args.data, 'LRbicx4')):
        if not os.path.exists(path):
            raise SystemExit(f'error: {path} does not exist; pass --model and --data.')

    import esrgan_plugin
    esrgan_plugin.register()  # basicsr adaptations and the plugin's classes
    from esrgan_plugin.archs.checkpoint import load_generator
    from esrgan_plugin.choices import COLOR_FIXES
    from esrgan_plugin.inference.color_fix import apply_color_fix
    from esrgan_plugin.inference.image_io import read_image
    from esrgan_plugin.inference.upscale import upscale_to_array
    from esrgan_plugin.metrics import scoring
    from esrgan_plugin.data.bicubic import matlab_bicubic

    torch.set_num_threads(args.threads)
    net = load_generator(args.model).eval()
    names = sorted(os.listdir(os.path.join(args.data, 'GTmod12')))
    rows = {label: [] for label in ('bicubic', *COLOR_FIXES)}
    fix_seconds = {mode: 0.0 for mode in COLOR_FIXES}
    net_seconds = 0.0
    for index, name in enumerate(names, 1):
        gt = cv2.imread(os.path.join(args.data, 'GTmod12', name))
        lr_path = os.path.join(args.data, 'LRbicx4', name)
        rows['bicubic'].append(scoring.evaluate(matlab_bicubic(cv2.imread(lr_path), 4), gt, METRICS))
        picture = read_image(lr_path)
        start = time.perf_counter()
        output = upscale_to_array(net, picture, np.dtype(np.uint8))  # BGR; the colour is its reversed view
        net_seconds += time.perf_counter() - start
        for mode in COLOR_FIXES:
            fixed = output.copy()
            start = time.perf_counter()
            apply_color_fix(mode, fixed[..., ::-1], picture.color, 4)
            fix_seconds[mode] += time.perf_counter() - start
            rows[mode].append(scoring.evaluate(fixed, gt, METRICS))
        print(f'{index}/{len(names)} {name}: colour shift ' + ', '.join(
            f'{label} {rows[label][-1]["color_shift"]:.2f}' for label in rows), flush=True)

    print(f'\n{len(names)} images of {args.data}, {os.path.basename(args.model)}, fp32, '
          f'{torch.get_num_threads()} threads; network {net_seconds / len(names):.2f} s per image')
    print(f'{"output":<20}{"colour shift":>13}{"worst":>8}{"PSNR-Y (dB)":>13}{"NIQE":>8}{"fix (s/image)":>15}')
    for label, values in rows.items():
        mean = {m: float(np.mean([v[m] for v in values])) for m in METRICS}
        worst = max(v['color_shift'] for v in values)
        seconds = f'{fix_seconds[label] / len(names):.3f}' if label in fix_seconds else '-'
        title = label if label == 'bicubic' else f'--color-fix {label}'
        print(f'{title:<20}{mean["color_shift"]:>13.2f}{worst:>8.2f}{mean["psnr_y"]:>13.2f}{mean["niqe"]:>8.2f}'
              f'{seconds:>15}')


if __name__ == '__main__':
    main()
