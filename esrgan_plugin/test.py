"""``python -m esrgan_plugin.test -opt options/test_set14.yml``: basicsr's test pipeline with the plugin registered.

Results (log, metrics, SR images, index.html) go to results/<name>/ under the current directory.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

from esrgan_plugin.cli import add_basicsr_arguments, load_options_or_exit, run_main


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog='python -m esrgan_plugin.test',
        description='Evaluate a generator on test sets (the metrics of val.metrics: PSNR/SSIM, NIQE, LPIPS) '
        'with basicsr\'s test pipeline. Writes results/<name>/ under the current directory: the log, the SR '
        'images and index.html, a page comparing LR, bicubic, SR and ground truth.')
    add_basicsr_arguments(parser, is_train=False)
    args = parser.parse_args(argv)
    # every problem at once, nothing written; network_g read off the checkpoint where the file leaves it out
    opt = load_options_or_exit(parser, args, is_train=False)

    from esrgan_plugin.training.testing import run_test_sets
    from esrgan_plugin.training.launch import Launch, launch_options
    run_test_sets(launch_options(opt, Launch(args.launcher, False, args.debug), os.getcwd(), is_train=False))
    return 0


if __name__ == '__main__':
    run_main(main)
