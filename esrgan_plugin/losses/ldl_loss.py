"""LDL, the locally discriminative learning term (Liang et al., CVPR 2022, "Details or Artifacts: A Locally
Discriminative Learning Approach to Realistic Image Super-Resolution").

A GAN-trained generator makes two kinds of high-frequency content: realistic detail and artifacts. LDL tells them
apart per pixel with basicsr's ``get_refined_artifact_map`` (``basicsr/losses/loss_util.py``) and penalises only the
artifacts. With r = Σ_c |GT − SR| (the output's residual, summed over channels):

* M(i, j) = Var(r over the 7×7 window around (i, j)) · Var(r over the whole patch)^(1/5): large where the residual
  is large *and* irregular (artifacts), small where it is smooth;
* M is zeroed where the EMA generator's residual Σ_c |GT − SR_ema| is larger than r: there the live generator is
  already closer to the GT than its stable average, so that content is treated as detail, not artifact.

The term is ``criterion(M ⊙ SR, M ⊙ GT)`` with the loss of ``train.ldl_opt`` (e.g. basicsr's ``L1Loss`` with its
``loss_weight``), as basicsr's ``RealESRGANModel`` and the authors' code compute it; as there, the map is not
detached, so gradients also flow through it.
"""
from __future__ import annotations

import torch
from basicsr.losses.loss_util import get_refined_artifact_map

# The local window of the paper and of basicsr's RealESRGANModel.
LDL_WINDOW = 7


def ldl_term(criterion: torch.nn.Module, output: torch.Tensor, gt: torch.Tensor,
             output_ema: torch.Tensor) -> torch.Tensor:
    """The weighted LDL loss of one batch; ``output_ema`` is the EMA generator's output on the same LR batch."""
    artifact_map = get_refined_artifact_map(gt, output, output_ema, LDL_WINDOW)
    return criterion(artifact_map * output, artifact_map * gt)
