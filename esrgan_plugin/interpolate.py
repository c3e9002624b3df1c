"""Network interpolation (paper section 4.4): blend a PSNR-oriented and a GAN generator.

theta = (1 - alpha) * theta_PSNR + alpha * theta_GAN, parameter by parameter,
trades perceptual quality (alpha -> 1) against PSNR (alpha -> 0) without
retraining, and avoids the noise that blending the two networks' *outputs*
gives. Both inputs are first brought to basicsr's key layout, so checkpoints of
different layouts combine; the results are basicsr ``{'params': ...}`` files
that ``pretrain_network_g`` and ``esrgan_plugin.infer`` load.

``python -m esrgan_plugin.interpolate --psnr A.pth --gan B.pth --alpha 0 0.2 0.5 0.8 1 -o out/``
"""
from __future__ import annotations

import argparse
import os
from typing import Mapping, Optional, Sequence

from .cli import run_main, say

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
        'format.')
    parser.add_argument('--psnr', required=True, help='the PSNR-oriented generator (any layout, .pth/.safetensors)')
    parser.add_argument('--gan', required=True, help='the GAN-trained generator (any layout)')
    parser.add_argument('--alpha', type=float, nargs='+', default=[0.8], metavar='A',
                        help='one or more weights of the GAN generator, 0..1 (default 0.8)')
    parser.add_argument('-o', '--output', required=True, help='output folder (created if missing)')
    parser.add_argument('--param_key', choices=['params', 'params_ema'], default=None,
                        help='which weights of basicsr files to use (default: EMA when present)')
    return parser


if __name__ == '__main__':
    build_parser().parse_args()  # -h and usage errors are answered here, before the imports below

import torch  # noqa: E402

from . import fileio, register  # noqa: E402

register()  # basicsr adaptations before the modules below import basicsr
from .checkpoint import CheckpointError, StateDict, first_difference, load_generator_state  # noqa: E402


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    bad = [a for a in args.alpha if not 0.0 <= a <= 1.0]
    if bad:
        parser.error(f'--alpha {bad[0]:g} is outside 0..1; pass weights such as 0 0.2 0.5 0.8 1')
    if os.path.exists(args.output) and not os.path.isdir(args.output):
        parser.error(f'output {args.output} is a file; pass a folder')
    for path in interpolate_files(args.psnr, args.gan, args.alpha, args.output, args.param_key):
        say(path)
    return 0


if __name__ == '__main__':
    run_main(main)
