"""``python -m esrgan_plugin.test -opt options/test_set14.yml``: basicsr's test pipeline with the plugin registered.

Results (log, metrics, SR images, index.html) go to results/<name>/ under the current directory.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

from esrgan_plugin.cli import add_basicsr_arguments, basicsr_argv, check_options_or_exit, run_main, say


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog='python -m esrgan_plugin.test',
        description='Evaluate a generator on test sets (the metrics of val.metrics: PSNR/SSIM, NIQE, LPIPS) '
        'with basicsr\'s test pipeline. Writes results/<name>/ under the current directory: the log, the SR '
        'images and index.html, a page comparing LR, bicubic, SR and ground truth.')
    add_basicsr_arguments(parser, is_train=False)
    args = parser.parse_args(argv)
    opt = check_options_or_exit(parser, args, is_train=False)  # exits 2 listing every problem

    import esrgan_plugin
    esrgan_plugin.register()  # basicsr adaptations and registration, once the arguments are parsed
    from basicsr.test import test_pipeline
    from esrgan_plugin.training.precision import check_options, planned_device_type
    check_options(opt, planned_device_type(opt))  # e.g. fp16 on a CPU: one line, nothing written

    from esrgan_plugin.metrics.scoring import check_weights_available
    check_weights_available((opt.get('val') or {}).get('metrics'))  # before any folder is made

    from esrgan_plugin.config.network_auto import option_file_for_basicsr
    # network_g read from the checkpoint when the file has none; a disagreeing one stops here, before any folder
    with option_file_for_basicsr(args.opt, opt, args.force_yml) as (opt_path, note):
        if note:
            say(note)
        sys.argv = basicsr_argv(parser.prog, args, opt_path)  # basicsr parses sys.argv itself
        test_pipeline(os.getcwd())
    return 0


if __name__ == '__main__':
    run_main(main)
