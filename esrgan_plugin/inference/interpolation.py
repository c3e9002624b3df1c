"""Network interpolation (paper section 4.4): blend a PSNR-oriented and a GAN generator.

theta = (1 - alpha) * theta_PSNR + alpha * theta_GAN, parameter by parameter,
trades perceptual quality (alpha -> 1) against PSNR (alpha -> 0) without
retraining, and avoids the noise that blending the two networks' *outputs*
gives. Both inputs are first brought to basicsr's key layout, so checkpoints of
different layouts combine; the results are basicsr ``{'params': ...}`` files
that ``pretrain_network_g`` and ``esrgan_plugin.infer`` load.

The command is ``python -m esrgan_plugin.interpolate``; the perception-distortion sweep over alphas is
``inference.sweep``.
"""
from __future__ import annotations

import os
from typing import Mapping, Optional, Sequence

import torch

from esrgan_plugin import fileio
from esrgan_plugin.archs.checkpoint import StateDict, check_same_keys, load_generator_state


def check_compatible(psnr: Mapping[str, torch.Tensor], gan: Mapping[str, torch.Tensor]) -> None:
    """Raise a CheckpointError naming the first key that the two generators do not share with the same shape."""
    check_same_keys(psnr, gan,
                    'the GAN generator lacks {key} (shape {a} in the PSNR one); interpolate only generators of the '
                    'same architecture.',
                    'the PSNR generator lacks {key} (shape {b} in the GAN one); interpolate only generators of the '
                    'same architecture.',
                    '{key} has shape {a} in the PSNR generator but {b} in the GAN one; interpolate only generators '
                    'of the same architecture (scale, num_feat, num_block, num_grow_ch).')


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
