"""``python -m esrgan_plugin.train -opt options/train_ESRGAN_x4.yml``: the plugin's training loop (``training.train_loop``).

experiments/, tb_logger/ (and results/ for testing) are created in the current working directory, as basicsr's
own train.py does in its checkout; an installed package therefore never writes into site-packages.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

from esrgan_plugin.cli import add_basicsr_arguments, command_line, load_options_or_exit, run_main


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog='python -m esrgan_plugin.train',
        description='Train ESRGAN (PSNR-oriented or GAN stage) from a basicsr option file. '
        'Writes experiments/<name>/ and tb_logger/<name>/ under the current directory. Ctrl-C or SIGTERM '
        'stops after the current step with a checkpoint (exit code 130/143); --auto_resume continues exactly.')
    add_basicsr_arguments(parser, is_train=True)
    args = parser.parse_args(argv)
    opt = load_options_or_exit(parser, args, is_train=True)  # every problem at once; nothing written

    from esrgan_plugin.training.launch import Launch, launch_options
    from esrgan_plugin.training.train_loop import train_pipeline
    launched = launch_options(opt, Launch(args.launcher, args.auto_resume, args.debug), os.getcwd(), is_train=True)
    return train_pipeline(launched, args.opt, command_line(parser.prog, args))


if __name__ == '__main__':
    run_main(main)
