"""``python -m esrgan_plugin.degrade -opt FILE -o DIR``: the training pairs an option file makes, as images.

Writes ``<k>_gt.png``, ``<k>_lq.png`` for k < N and ``sheet.png`` (each GT crop beside its LR enlarged, labelled
with the degradations drawn), from the train dataset of the option file, without training. The library is
``esrgan_plugin/data/degradation_preview.py``.
"""
from __future__ import annotations

import argparse
import os
import re
from typing import Optional, Sequence

from esrgan_plugin.cli import run_main, say
from esrgan_plugin.errors import UserFacingError

# What the command writes into its folder; a folder holding anything else is not replaced.
_PREVIEW_FILE = re.compile(r'^(\d+_(gt|lq)\.png|sheet\.png)$')


def _count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError('at least 1 pair')
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='python -m esrgan_plugin.degrade',
        description='Show what the network is trained on: draw N items of the option file\'s train dataset '
        '(GTOnlyDataset), make their LR as training does (Real-ESRGAN\'s degradations, or MATLAB bicubic) on the '
        'CPU, and write DIR/<k>_gt.png, DIR/<k>_lq.png and DIR/sheet.png (each GT crop beside its LR enlarged, '
        'labelled with the degradations drawn). The same seed gives the same files.')
    parser.add_argument('-opt', required=True, help='training option file (datasets.train is used)')
    parser.add_argument('-n', type=_count, default=8, help='number of pairs (default 8)')
    parser.add_argument('--seed', type=int, default=0, help='seed of every draw (default 0)')
    parser.add_argument('-o', '--output', required=True, help='output folder; replaced if it holds only the '
                        'files of an earlier run')
    parser.add_argument('--force_yml', nargs='+', default=None, metavar='KEY=VALUE',
                        help='override options, as train does, e.g. datasets:train:gt_size=128')
    return parser


def _check_output(parser: argparse.ArgumentParser, output: str) -> None:
    if os.path.exists(output) and not os.path.isdir(output):
        parser.error(f'output {output} is a file; pass a folder')
    foreign = [n for n in (os.listdir(output) if os.path.isdir(output) else []) if not _PREVIEW_FILE.match(n)]
    if foreign:
        parser.error(f'output {output} holds other files ({foreign[0]}); pass an empty or new folder')


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_output(parser, args.output)
    import esrgan_plugin
    esrgan_plugin.register()  # basicsr adaptations and registration, once the arguments are parsed
    from esrgan_plugin.config.loading import load_options

    # train's checks of the option file; nothing on disk but the data is needed (no weights, no checkpoints)
    loaded = load_options(args.opt, args.force_yml or (), is_train=True, pretrained=False, check_files=False)
    if loaded.option_errors:
        parser.exit(2, ''.join(f'error: {line}\n' for line in loaded.option_errors + loaded.component_errors))
    if loaded.component_errors:
        parser.exit(1, ''.join(f'error: {line}\n' for line in loaded.component_errors))
    opt = loaded.opt
    train = (opt.get('datasets') or {}).get('train') or {}
    if train.get('type') != 'GTOnlyDataset':
        raise UserFacingError(f'{args.opt}: datasets.train is {train.get("type")}, not GTOnlyDataset; degrade shows '
                              'the LR a GTOnlyDataset makes (prepared LR is on disk already)')

    import torch
    from basicsr.data import build_dataset

    from esrgan_plugin.data.degradation_preview import sample_pairs, write_preview
    from esrgan_plugin.fileio import atomic_dirs

    dataset = build_dataset({**train, 'phase': 'train', 'scale': opt['scale']})
    pairs = sample_pairs(dataset, int(opt['scale']), args.n, args.seed, torch.device('cpu'))
    with atomic_dirs([args.output], overwrite=True) as partial:  # the folder appears whole or not at all
        write_preview(pairs, partial[os.path.abspath(args.output)])
    say(f'wrote {args.n} pairs and sheet.png to {args.output}')
    return 0


if __name__ == '__main__':
    run_main(main)
