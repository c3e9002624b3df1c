"""Shared pieces of the command-line entry points: argument checks and clean failure."""
from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Optional, Sequence

import yaml

from .errors import UserFacingError, one_line


def add_basicsr_arguments(parser: argparse.ArgumentParser, is_train: bool) -> None:
    """The arguments basicsr's ``parse_options`` reads, with help texts.

    basicsr re-parses ``sys.argv`` itself; declaring the same arguments here
    gives ``-h`` and early, clear errors before anything heavy starts.
    """
    parser.add_argument('-opt', required=True, metavar='YML', help='option file (YAML), e.g. options/'
                        + ('train_ESRGAN_x4.yml' if is_train else 'test_set14.yml'))
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none',
                        help='distributed launcher: "pytorch" under torchrun (NCCL on CUDA, gloo on CPU)')
    if is_train:
        parser.add_argument('--auto_resume', action='store_true',
                            help='continue from the newest experiments/<name>/training_states/*.state')
    parser.add_argument('--debug', action='store_true', help="basicsr's debug mode (prefixes the name with debug_)")
    parser.add_argument('--local_rank', type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument('--force_yml', nargs='+', default=None, metavar='KEY=VALUE',
                        help='override options, nested keys joined by ":", e.g. train:ema_decay=0.999')


def check_option_file(parser: argparse.ArgumentParser, path: str) -> dict:
    """Read the option file, or exit with one line saying what is wrong with it."""
    if not os.path.isfile(path):
        parser.error(f'option file {path} does not exist; pass the path of a YAML file such as options/...yml')
    try:
        with open(path, encoding='utf-8') as f:
            opt = yaml.safe_load(f)
    except yaml.YAMLError as err:
        parser.error(f'option file {path} is not valid YAML ({str(err).splitlines()[0]}); fix the syntax')
    if not isinstance(opt, dict):
        parser.error(f'option file {path} does not hold a mapping of options; see the files in options/')
    return opt


def check_paths(parser: argparse.ArgumentParser, opt: dict, path: str, pretrained: bool = True) -> None:
    """Data folders and pretrained networks must exist before basicsr creates any folder.

    Paths are relative to the current directory, as basicsr reads them. ``pretrained=False`` skips the
    network files (on resume basicsr replaces them with the experiment's own). LMDBs, whichever dataset type
    reads them, are checked for truncation and for GT and LQ from different preparation runs (a DataError).
    """
    for phase, dataset in (opt.get('datasets') or {}).items():
        for key in ('dataroot_gt', 'dataroot_lq'):
            root = (dataset or {}).get(key)
            if root and not os.path.exists(os.path.expanduser(root)):
                parser.error(f'{path}: datasets.{phase}.{key} {root} does not exist; prepare the data (README, '
                             '"Data preparation") or fix the path')
        if ((dataset or {}).get('io_backend') or {}).get('type') == 'lmdb':
            from .lmdb_check import check_lmdb_pair
            gt, lq = (os.path.expanduser(dataset[key]) if dataset.get(key) else None
                      for key in ('dataroot_gt', 'dataroot_lq'))
            check_lmdb_pair(gt, lq)
    for key, value in (opt.get('path') or {}).items():
        if pretrained and key.startswith('pretrain_network') and value and not os.path.isfile(os.path.expanduser(value)):
            parser.error(f'{path}: path.{key} {value} does not exist; put the checkpoint there or fix the path')


def say(message: str, error: bool = False) -> None:
    """Terminal output of the commands (results, warnings); library code logs instead."""
    print(message, file=sys.stderr if error else sys.stdout, flush=True)


def run_main(main: Callable[[Optional[Sequence[str]]], int], argv: Optional[Sequence[str]] = None) -> None:
    """Run an entry point; a UserFacingError (also one raised in a DataLoader worker) becomes one line on stderr
    and exit code 1."""
    try:
        code = main(argv)
    except UserFacingError as err:
        print(f'error: {one_line(err)}', file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        print('interrupted', file=sys.stderr)
        code = 130
    sys.exit(code)
