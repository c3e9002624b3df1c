"""``python -m esrgan_plugin.train -opt options/train_ESRGAN_x4.yml``: the plugin's training loop (``train_loop``).

experiments/, tb_logger/ (and results/ for testing) are created in the current
working directory, as basicsr's own train.py does in its checkout; an
installed package therefore never writes into site-packages.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence


from esrgan_plugin.cli import add_basicsr_arguments, basicsr_argv, check_options_or_exit, run_main


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog='python -m esrgan_plugin.train',
        description='Train ESRGAN (PSNR-oriented or GAN stage) from a basicsr option file. '
        'Writes experiments/<name>/ and tb_logger/<name>/ under the current directory. Ctrl-C or SIGTERM '
        'stops after the current step with a checkpoint (exit code 130/143); --auto_resume continues exactly.')
    add_basicsr_arguments(parser, is_train=True)
    args = parser.parse_args(argv)
    opt = check_options_or_exit(parser, args, is_train=True)  # exits 2 listing every problem

    import esrgan_plugin
    esrgan_plugin.register()  # basicsr adaptations and registration, once the arguments are parsed

    from esrgan_plugin.training.train_loop import train_pipeline
    from esrgan_plugin.losses.perceptual_loss import check_vgg19_available
    check_vgg19_available((opt.get('train') or {}).get('perceptual_opt'))  # before any folder is made
    from esrgan_plugin.training.precision import check_options, planned_device_type
    check_options(opt, planned_device_type(opt))  # e.g. fp16 on a CPU: one line, nothing written

    from esrgan_plugin.metrics.scoring import check_weights_available
    check_weights_available((opt.get('val') or {}).get('metrics'))  # LPIPS weights, before any folder

    sys.argv = basicsr_argv(parser.prog, args)  # basicsr parses sys.argv itself
    return train_pipeline(os.getcwd())


if __name__ == '__main__':
    run_main(main)
