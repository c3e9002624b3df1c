"""``python -m esrgan_plugin.train -opt options/train_ESRGAN_x4.yml``: basicsr's launcher with the plugin registered.

experiments/, tb_logger/ (and results/ for testing) are created in the current
working directory, as basicsr's own train.py does in its checkout; an
installed package therefore never writes into site-packages.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence


from .cli import add_basicsr_arguments, check_option_file, check_paths, run_main


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog='python -m esrgan_plugin.train',
        description='Train ESRGAN (PSNR-oriented or GAN stage) with basicsr\'s launcher. '
        'Writes experiments/<name>/ and tb_logger/<name>/ under the current directory.')
    add_basicsr_arguments(parser, is_train=True)
    args = parser.parse_args(argv)
    opt = check_option_file(parser, args.opt)
    if not args.force_yml:  # an override may fix a path; basicsr then checks it
        check_paths(parser, opt, args.opt, pretrained=not args.auto_resume)

    import esrgan_plugin  # noqa: F401  registration and basicsr adaptations
    from basicsr.train import train_pipeline

    from .perceptual_loss import check_vgg19_available
    check_vgg19_available((opt.get('train') or {}).get('perceptual_opt'))  # before any folder is made
    from .precision import check_options, planned_device_type
    check_options(opt, planned_device_type(opt))  # e.g. fp16 on a CPU: one line, nothing written

    sys.argv = [parser.prog] + argv  # basicsr parses sys.argv itself
    train_pipeline(os.getcwd())
    return 0


if __name__ == '__main__':
    run_main(main)
