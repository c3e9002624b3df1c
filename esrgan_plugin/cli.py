"""Shared pieces of the command-line entry points: argument checks and clean failure."""
from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Optional, Sequence

from esrgan_plugin.config.shipped import resolve_option_file
from esrgan_plugin.errors import UserFacingError, one_line


def add_basicsr_arguments(parser: argparse.ArgumentParser, is_train: bool) -> None:
    """The arguments basicsr's ``parse_options`` reads, with help texts.

    basicsr re-parses ``sys.argv`` itself; declaring the same arguments here
    gives ``-h`` and early, clear errors before anything heavy starts.
    """
    example = 'train_ESRGAN_x4' if is_train else 'test_set14'
    parser.add_argument('-opt', required=True, metavar='YML', type=resolve_option_file,
                        help=f'option file (YAML), e.g. options/{example}.yml, or the bare name of one that ships with '
                        f'the package, e.g. {example} (python -m esrgan_plugin.options --list)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none',
                        help='distributed launcher: "pytorch" under torchrun (NCCL on CUDA, gloo on CPU)')
    if is_train:
        parser.add_argument('--auto_resume', action='store_true',
                            help='continue from the newest intact experiments/<name>/training_states/*.state')
    parser.add_argument('--debug', action='store_true', help="basicsr's debug mode (prefixes the name with debug_)")
    parser.add_argument('--local_rank', type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument('--force_yml', nargs='+', default=None, metavar='KEY=VALUE',
                        help='override options, nested keys joined by ":", e.g. train:ema_decay=0.999')


def basicsr_argv(prog: str, args: argparse.Namespace, opt_path: Optional[str] = None) -> list[str]:
    """The command line to put in ``sys.argv`` for basicsr, which parses it again itself.

    Rebuilt from the parsed arguments, so that basicsr reads the option file found here (a shipped file named by
    its bare name, or ``opt_path``), not the text the user typed.
    """
    argv = [prog, '-opt', opt_path or args.opt, '--launcher', args.launcher, '--local_rank', str(args.local_rank)]
    if getattr(args, 'auto_resume', False):
        argv.append('--auto_resume')
    if args.debug:
        argv.append('--debug')
    if args.force_yml:
        argv += ['--force_yml', *args.force_yml]
    return argv


def check_options_or_exit(parser: argparse.ArgumentParser, args: argparse.Namespace, is_train: bool) -> dict:
    """The option dict the run will use (file plus ``--force_yml``), checked before anything is created.

    Every problem is printed, one line each, and the command exits with code 2;
    warnings (options passed unchecked to classes registered elsewhere) are printed
    and the run goes on. On resume, pretrained files are not required (basicsr loads
    the experiment's own).
    """
    from esrgan_plugin import register

    register()  # basicsr adaptations and registration, now that the arguments are parsed
    from esrgan_plugin.config.checks import read_options  # imports the registries (torch, basicsr)

    opt, report = read_options(args.opt, args.force_yml or (), is_train,
                               pretrained=not getattr(args, 'auto_resume', False))
    for warning in report.warnings:
        say(f'warning: {warning}', error=True)
    if report.errors:
        count = len(report.errors)
        parser.exit(2, ''.join(f'error: {line}\n' for line in report.errors)
                    + f'{count} problem{"s" if count > 1 else ""} in the options; nothing was run or written\n')
    check_lmdb_data(opt)
    return opt


def check_lmdb_data(opt: dict) -> None:
    """LMDBs, whichever dataset type reads them, are checked for truncation and for GT and LQ from different
    preparation runs (a DataError: one line, exit code 1) before any process maps them."""
    from esrgan_plugin.data.lmdb_check import check_lmdb_pair

    for dataset in opt['datasets'].values():
        backend = dataset.get('io_backend')
        if isinstance(backend, dict) and backend.get('type') == 'lmdb':
            gt, lq = (os.path.expanduser(dataset[key]) if dataset.get(key) else None
                      for key in ('dataroot_gt', 'dataroot_lq'))
            check_lmdb_pair(gt, lq)


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
