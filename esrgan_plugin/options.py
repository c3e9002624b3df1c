"""``python -m esrgan_plugin.options --list | --copy DIR``: the option files that ship with the package.

Commands also take a shipped file by its bare name (``-opt train_ESRGAN_x4``); ``config.shipped`` finds them.
"""
from __future__ import annotations

import argparse
import os
from typing import Optional, Sequence

from esrgan_plugin.cli import run_main, say
from esrgan_plugin.config.shipped import copy_option_files, option_files_dir, shipped_option_files, summary


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='python -m esrgan_plugin.options',
        description='List the option files that ship with esrgan_plugin, or copy them into a folder to edit. '
        'Commands also take a shipped file by its bare name: -opt train_ESRGAN_x4.')
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument('--list', action='store_true', help='print the shipped option files and what each is for')
    action.add_argument('--copy', metavar='DIR', help='copy them into DIR (created if missing)')
    parser.add_argument('--overwrite', action='store_true', help='with --copy: replace files of the same name')
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.list:
        files = shipped_option_files()
        width = max(len(os.path.splitext(os.path.basename(p))[0]) for p in files)
        for path in files:
            say(f'{os.path.splitext(os.path.basename(path))[0]:<{width}}  {summary(path)}')
        say(f'\n(in {option_files_dir()}; use one with -opt NAME, or copy them with --copy DIR to edit)')
        return 0
    for path in copy_option_files(args.copy, args.overwrite):
        say(path)
    return 0


if __name__ == '__main__':
    run_main(main)
