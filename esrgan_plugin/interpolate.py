"""Network interpolation (paper section 4.4): blend a PSNR-oriented and a GAN generator.

theta = (1 - alpha) * theta_PSNR + alpha * theta_GAN, parameter by parameter,
trades perceptual quality (alpha -> 1) against PSNR (alpha -> 0) without
retraining, and avoids the noise that blending the two networks' *outputs*
gives. Both inputs are first brought to basicsr's key layout, so checkpoints of
different layouts combine; the results are basicsr ``{'params': ...}`` files
that ``pretrain_network_g`` and ``esrgan_plugin.infer`` load.

``python -m esrgan_plugin.interpolate --psnr A.pth --gan B.pth --alpha 0 0.2 0.5 0.8 1 -o out/``
``python -m esrgan_plugin.interpolate --psnr A.pth --gan B.pth --sweep 0:1:0.1 --eval options/test_set14.yml -o out/``
(the perception-distortion sweep, ``sweep``)
"""
from __future__ import annotations

import argparse
import os
from typing import Mapping, Optional, Sequence

from esrgan_plugin.cli import run_main, say

# torch and the modules that use it are imported below build_parser(), so that the command answers -h and
# usage errors before paying for them; the functions here use them only when called.


def check_compatible(psnr: Mapping[str, torch.Tensor], gan: Mapping[str, torch.Tensor]) -> None:
    """Raise a CheckpointError naming the first key that the two generators do not share with the same shape."""
    difference = first_difference(psnr, gan)
    if difference is None:
        return
    key, psnr_shape, gan_shape = difference
    if gan_shape is None:
        raise CheckpointError(f'the GAN generator lacks {key} (shape {psnr_shape} in the PSNR one); '
                              'interpolate only generators of the same architecture.')
    if psnr_shape is None:
        raise CheckpointError(f'the PSNR generator lacks {key} (shape {gan_shape} in the GAN one); '
                              'interpolate only generators of the same architecture.')
    raise CheckpointError(f'{key} has shape {psnr_shape} in the PSNR generator but {gan_shape} in the GAN one; '
                          'interpolate only generators of the same architecture (scale, num_feat, num_block, '
                          'num_grow_ch).')


def interpolate(psnr: Mapping[str, torch.Tensor], gan: Mapping[str, torch.Tensor], alpha: float) -> StateDict:
    """``(1 - alpha) * psnr + alpha * gan`` per tensor, computed in float64 and returned as float32.

    alpha 0 and 1 return the inputs exactly (float32 -> float64 -> float32 is lossless).
    """
    check_compatible(psnr, gan)
    out = {}
    for key, a in psnr.items():
        a64, b64 = a.detach().to(torch.float64), gan[key].detach().to(torch.float64)
        out[key] = ((1.0 - alpha) * a64 + alpha * b64).to(torch.float32)
    return out


def output_name(out_dir: str, alpha: float) -> str:
    """``<out_dir>/interp_<alpha>.pth`` with alpha written the shortest way (0, 0.2, 1)."""
    return os.path.join(out_dir, f'interp_{alpha:g}.pth')


def interpolate_files(psnr_path: str, gan_path: str, alphas: Sequence[float], out_dir: str,
                      param_key: Optional[str] = None) -> list[str]:
    """Interpolate two generator checkpoints (any layouts) for each alpha; returns the written paths."""
    psnr = load_generator_state(psnr_path, param_key)
    gan = load_generator_state(gan_path, param_key)
    check_compatible(psnr, gan)
    written = []
    for alpha in alphas:
        path = output_name(out_dir, alpha)
        fileio.save_torch({'params': interpolate(psnr, gan, alpha)}, path)
        written.append(path)
    return written


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


if __name__ == '__main__':
    build_parser().parse_args()  # -h and usage errors are answered here, before the imports below

import torch  # noqa: E402

from esrgan_plugin import fileio, register  # noqa: E402

register()  # basicsr adaptations before the modules below import basicsr
from esrgan_plugin.archs.checkpoint import CheckpointError, StateDict, first_difference, load_generator_state  # noqa: E402


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
    if args.eval is not None:
        return evaluate_sweep(parser, args, alphas)
    for path in interpolate_files(args.psnr, args.gan, alphas, args.output, args.param_key):
        say(path)
    return 0


def evaluate_sweep(parser: argparse.ArgumentParser, args: argparse.Namespace, alphas: Sequence[float]) -> int:
    """--eval: the perception-distortion sweep (esrgan_plugin.inference.sweep), checked before any work starts."""
    from esrgan_plugin.metrics.scoring import check_weights_available
    from esrgan_plugin.config.checks import read_options
    from esrgan_plugin.inference.sweep import matplotlib_available, run_sweep

    # The test command's checks of the option file; its checkpoint is not needed (the sweep brings its own).
    eval_opt, report = read_options(args.eval, (), is_train=False, pretrained=False)
    if report.errors:
        parser.exit(2, ''.join(f'error: {line}\n' for line in report.errors))
    check_weights_available((eval_opt.get('val') or {}).get('metrics'))
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
