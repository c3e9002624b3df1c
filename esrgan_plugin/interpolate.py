"""``python -m esrgan_plugin.interpolate``: network interpolation (paper section 4.4) and the perception-distortion sweep.

``python -m esrgan_plugin.interpolate --psnr A.pth --gan B.pth --alpha 0 0.2 0.5 0.8 1 -o out/``
``python -m esrgan_plugin.interpolate --psnr A.pth --gan B.pth --sweep 0:1:0.1 --eval options/test_set14.yml -o out/``
The library is ``inference.interpolation`` and ``inference.sweep``.
"""
from __future__ import annotations

import argparse
import os
from typing import Optional, Sequence

from esrgan_plugin.cli import run_main, say


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='python -m esrgan_plugin.interpolate',
        description='Blend a PSNR-oriented and a GAN generator parameter by parameter (ESRGAN paper, section 4.4): '
        'theta = (1 - alpha) * theta_PSNR + alpha * theta_GAN. Writes <output>/interp_<alpha>.pth in basicsr '
        'format; with --eval, evaluates each alpha on the test sets of an option file instead and writes '
        '<output>/sweep.csv and sweep.png (PSNR against NIQE/LPIPS, one point per alpha).')
    parser.add_argument('--psnr', required=True, help='the PSNR-oriented generator (any layout, .pth/.safetensors)')
    parser.add_argument('--gan', required=True, help='the GAN-trained generator (any layout)')
    which = parser.add_mutually_exclusive_group()
    which.add_argument('--alpha', type=float, nargs='+', default=None, metavar='A',
                       help='one or more weights of the GAN generator, 0..1 (default 0.8)')
    which.add_argument('--sweep', metavar='START:STOP:STEP', default=None,
                       help='a range of alphas, stop included, e.g. 0:1:0.1')
    parser.add_argument('--eval', metavar='YML', default=None,
                        help='test option file (e.g. options/test_set14.yml): evaluate each alpha on its datasets '
                        'with its val.metrics; writes sweep.csv and sweep.png, no networks')
    parser.add_argument('-o', '--output', required=True, help='output folder (created if missing)')
    parser.add_argument('--param_key', choices=['params', 'params_ema'], default=None,
                        help='which weights of basicsr files to use (default: EMA when present)')
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.sweep is not None:
        from esrgan_plugin.inference.sweep import parse_range
        alphas = parse_range(args.sweep)
    else:
        alphas = args.alpha if args.alpha is not None else [0.8]
    bad = [a for a in alphas if not 0.0 <= a <= 1.0]
    if bad:
        parser.error(f'--alpha {bad[0]:g} is outside 0..1; pass weights such as 0 0.2 0.5 0.8 1')
    if os.path.exists(args.output) and not os.path.isdir(args.output):
        parser.error(f'output {args.output} is a file; pass a folder')
    import esrgan_plugin
    esrgan_plugin.register()  # basicsr adaptations and registration, once the arguments are parsed
    if args.eval is not None:
        return evaluate_sweep(parser, args, alphas)
    from esrgan_plugin.inference.interpolation import interpolate_files
    for path in interpolate_files(args.psnr, args.gan, alphas, args.output, args.param_key):
        say(path)
    return 0


def evaluate_sweep(parser: argparse.ArgumentParser, args: argparse.Namespace, alphas: Sequence[float]) -> int:
    """--eval: the perception-distortion sweep (esrgan_plugin.inference.sweep), checked before any work starts."""
    from esrgan_plugin.config.loading import load_options
    from esrgan_plugin.inference.sweep import matplotlib_available, run_sweep

    # The test command's checks of the option file; its checkpoint is not needed (the sweep brings its own).
    loaded = load_options(args.eval, (), is_train=False, pretrained=False, resolve_network=False)
    if loaded.option_errors:
        parser.exit(2, ''.join(f'error: {line}\n' for line in loaded.option_errors + loaded.component_errors))
    if loaded.component_errors:
        parser.exit(1, ''.join(f'error: {line}\n' for line in loaded.component_errors))
    eval_opt = loaded.opt
    if not matplotlib_available():
        say('matplotlib is not installed: writing sweep.csv only (pip install -e ".[plot]" for sweep.png).')
    say(f'evaluating {len(alphas)} alphas ({", ".join(f"{a:g}" for a in alphas)}) on {args.eval}')
    result = run_sweep(args.psnr, args.gan, alphas, eval_opt, args.output, args.param_key, report=say)
    say(result['csv'])
    if result['png']:
        say(result['png'])
    return 0


if __name__ == '__main__':
    run_main(main)
