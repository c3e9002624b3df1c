"""Shared pieces of the command-line entry points: argument checks and clean failure."""
from __future__ import annotations

import argparse
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
                        help='distributed launcher: "pytorch" under torchrun, "slurm" under srun (NCCL on CUDA, gloo '
                        'on CPU; docs/training.md#several-machines)')
    if is_train:
        parser.add_argument('--auto_resume', action='store_true',
                            help='continue from the newest intact experiments/<name>/training_states/*.state')
    parser.add_argument('--debug', action='store_true', help="basicsr's debug mode (prefixes the name with debug_)")
    parser.add_argument('--local_rank', type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument('--force_yml', nargs='+', default=None, metavar='KEY=VALUE',
                        help='override options, nested keys joined by ":", e.g. train:ema_decay=0.999')


def command_line(prog: str, args: argparse.Namespace) -> str:
    """The command as the experiment's copy of the option file records it (basicsr's ``# CMD:`` line)."""
    argv = [prog, '-opt', args.opt, '--launcher', args.launcher, '--local_rank', str(args.local_rank)]
    if getattr(args, 'auto_resume', False):
        argv.append('--auto_resume')
    if args.debug:
        argv.append('--debug')
    if args.force_yml:
        argv += ['--force_yml', *args.force_yml]
    return ' '.join(argv)


def load_options_or_exit(parser: argparse.ArgumentParser, args: argparse.Namespace, is_train: bool) -> dict:
    """The checked option dict the run will use (``config.loading``), before anything is created.

    Warnings are printed and the run goes on. Problems are printed one line each, all together: with any in the
    option file itself the command exits with code 2 and a count; with only missing weights or damaged data
    (``error: <sentence>``), code 1. Either way nothing is written. On resume, pretrained files are not required
    (basicsr loads the experiment's own).
    """
    import esrgan_plugin
    esrgan_plugin.register()  # basicsr adaptations and registration, now that the arguments are parsed
    from esrgan_plugin.config.loading import load_options  # imports the registries (torch, basicsr)

    loaded = load_options(args.opt, args.force_yml or (), is_train, pretrained=not getattr(args, 'auto_resume', False))
    for warning in loaded.warnings:
        say(f'warning: {warning}', error=True)
    problems = loaded.option_errors + loaded.component_errors
    if loaded.option_errors:
        count = len(problems)
        parser.exit(2, ''.join(f'error: {line}\n' for line in problems)
                    + f'{count} problem{"s" if count > 1 else ""} in the options; nothing was run or written\n')
    if problems:
        parser.exit(1, ''.join(f'error: {line}\n' for line in problems))
    for note in loaded.notes:
        say(note)
    return loaded.opt


# Units of a memory size: decimal (GB = 10^9 bytes) and binary (GiB = 2^30), as `infer --max-memory` reads them.
_SIZE_UNITS = {'': 1, 'b': 1, 'k': 10**3, 'kb': 10**3, 'm': 10**6, 'mb': 10**6, 'g': 10**9, 'gb': 10**9,
               't': 10**12, 'tb': 10**12, 'kib': 2**10, 'mib': 2**20, 'gib': 2**30, 'tib': 2**40}


def memory_size(text: str) -> int:
    """An argparse type: a memory size such as ``4GB``, ``512MB``, ``1.5GiB`` (a bare number is bytes)."""
    number = text.strip().rstrip('bBiIkKmMgGtT')
    unit = text.strip()[len(number):].lower()
    try:
        value = float(number) * _SIZE_UNITS[unit]
    except (ValueError, KeyError):
        raise argparse.ArgumentTypeError(f'{text!r} is not a memory size; write e.g. 4GB, 512MB or 1.5GiB') \
            from None
    if not value > 0 or value == float('inf'):
        raise argparse.ArgumentTypeError(f'{text!r} is not a positive memory size; write e.g. 4GB')
    return int(value)


def tile_size(text: str) -> int | str:
    """An argparse type: ``auto`` or a tile side of 0 (whole image) or more pixels."""
    if text == 'auto':
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is neither auto nor a number of pixels') from None
    if value < 0:
        raise argparse.ArgumentTypeError('a tile is 0 (the whole image) or more pixels')
    return value


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
