"""``python -m esrgan_plugin.prepare_data HR_DIR OUT_DIR [options]``: training or test pairs from a folder of HR images.

Sub-images (or whole images) with aligned LR, as basicsr-format LMDBs and/or PNG folders; the library is
``data.preparation``, which says how the windows are placed and how outputs are replaced safely. With
``--realworld-test``: a fixed real-world test set (``data.realworld_test_set``), LR made by Real-ESRGAN's
degradations with a fixed seed.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

from esrgan_plugin.cli import run_main, say
from esrgan_plugin.data.image_store import STORAGE_FORMATS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='python -m esrgan_plugin.prepare_data',
        description='Make GT/LQ training pairs from a folder of HR images: sub-images (or whole images) with '
        'aligned LR, written as basicsr-format LMDBs and/or PNG folders under OUT_DIR.',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('hr_dir', help='folder of HR images, e.g. datasets/DIV2K/DIV2K_train_HR')
    parser.add_argument('out_dir', help='output folder; gets gt.lmdb and lq_x<scale>.lmdb (and/or gt/, lq_x<scale>/)')
    parser.add_argument('--scale', type=int, default=4, help='LR = HR / scale')
    parser.add_argument('--lr-dir', default=None, help='official LR images (DIV2K_train_LR_bicubic/X4 with '
                        '0001x4.png names, or the HR names); default: make LR with MATLAB-style bicubic')
    parser.add_argument('--crop', type=int, default=480, help='HR sub-image size (multiple of --scale)')
    parser.add_argument('--step', type=int, default=240, help='HR sub-image stride (multiple of --scale)')
    parser.add_argument('--thresh', type=int, default=0, help='edge strips wider than this get one more window '
                        'flush with the edge; narrower ones are dropped')
    parser.add_argument('--whole-image', action='store_true', help='one pair per image, no sub-images (test sets); '
                        'HR is cropped to a multiple of --scale')
    parser.add_argument('--format', choices=['lmdb', 'folder', 'both'], default='lmdb', help='output form')
    parser.add_argument('--storage', choices=STORAGE_FORMATS, default='png', help='value encoding in the LMDB: '
                        'png (basicsr format) or raw uint8 (faster to read, only DIV2KPairedDataset reads it)')
    parser.add_argument('--png-level', type=int, default=1, help='PNG compression level 0-9')
    parser.add_argument('--workers', type=int, default=os.cpu_count() or 1, help='worker processes')
    parser.add_argument('--overwrite', action='store_true', help='replace existing outputs')
    realworld = parser.add_argument_group('a fixed real-world test set')
    realworld.add_argument('--realworld-test', action='store_true', help='write gt/ and lq_x<scale>/ PNG folders: '
                           'the centred --crop square of each image (or the largest that fits) and its LR made by '
                           "Real-ESRGAN's degradations, drawn from --seed and the file name (only --scale, --crop, "
                           '--png-level and --overwrite apply)')
    realworld.add_argument('--seed', type=int, default=0, help='with --realworld-test: the seed of the draws')
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.realworld_test and (args.lr_dir or args.whole_image):
        parser.error('--realworld-test makes its own LR from centred squares; leave out --lr-dir and --whole-image')
    import esrgan_plugin
    esrgan_plugin.register()  # basicsr adaptations before basicsr is used, once the arguments are parsed
    if args.realworld_test:
        return _realworld_test(args)
    from esrgan_plugin.data.preparation import prepare

    result = prepare(args.hr_dir, args.out_dir, scale=args.scale, crop=args.crop, step=args.step,
                     thresh=args.thresh, lr_dir=args.lr_dir, whole_image=args.whole_image,
                     lmdb=args.format in ('lmdb', 'both'), folders=args.format in ('folder', 'both'),
                     storage=args.storage, png_level=args.png_level, workers=args.workers,
                     overwrite=args.overwrite)
    say(f'{result.num_pairs} pairs written:')
    for path in (result.gt_lmdb, result.lq_lmdb, result.gt_folder, result.lq_folder):
        if path:
            say(f'  {path}')
    return 0


def _realworld_test(args: argparse.Namespace) -> int:
    from esrgan_plugin.data.realworld_test_set import prepare_realworld_test

    gt, lq, count = prepare_realworld_test(args.hr_dir, args.out_dir, scale=args.scale, crop=args.crop,
                                           seed=args.seed, png_level=args.png_level, overwrite=args.overwrite)
    say(f'{count} real-world test pairs (seed {args.seed}) written:\n  {gt}\n  {lq}')
    return 0


if __name__ == '__main__':
    run_main(main, sys.argv[1:])
