"""The relativistic average GAN loss of ESRGAN (paper section 3.2, after Jolicoeur-Martineau 2018).

With C the discriminator's raw output and σ the sigmoid,
D_Ra(x_r, x_f) = σ(C(x_r) − E[C(x_f)]) says how much more realistic real data
is than the average generated sample. Then

    L_D = −E[log D_Ra(x_r, x_f)] − E[log(1 − D_Ra(x_f, x_r))]
    L_G = −E[log(1 − D_Ra(x_r, x_f))] − E[log D_Ra(x_f, x_r)]

so the generator gets gradients from real and generated data alike. As in the
authors' released code each loss is the *average* of its two terms. The
logit form (``binary_cross_entropy_with_logits``) is the numerically stable
way to write log σ.

A discriminator may output one logit per image (N×1, the paper's VGG-style
one) or one per pixel (N×1×H×W, basicsr's ``UNetDiscriminatorSN``). Per pixel,
each logit judges the patch its receptive field sees, so every pixel of every
image is a sample of the real or generated distribution, and E[C(x_f)] is the
mean over the batch *and* the pixels (``Tensor.mean()`` over all elements);
the outer E of each term is likewise over batch and pixels. Averaging only
over the batch, pixel by pixel, would compare a patch with generated patches
at the same position in other random crops, where position carries no
meaning; with a batch of one it would degrade to comparing each real patch
with the generated patch at the same place (a paired, not an average,
relativistic loss), and it estimates E[C(x_f)] from N samples instead of
N·H·W. Real-ESRGAN uses this discriminator with a vanilla GAN, where no such
mean appears.
"""
from __future__ import annotations

import torch
from basicsr.utils.registry import LOSS_REGISTRY
from torch import nn
from torch.nn import functional as F


def _bce(logits: torch.Tensor, target_is_real: bool) -> torch.Tensor:
    target = torch.ones_like(logits) if target_is_real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)


def _average_logit(pred: torch.Tensor) -> torch.Tensor:
    """E[C(x)] of one side: the mean over the batch and, for a per-pixel discriminator, every pixel."""
    return pred.mean()


def ragan_d_terms(real_pred: torch.Tensor, fake_pred: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The discriminator's two terms (real, fake), each already halved; their sum is L_D."""
    l_real = _bce(real_pred - _average_logit(fake_pred), True) / 2
    l_fake = _bce(fake_pred - _average_logit(real_pred), False) / 2
    return l_real, l_fake


def ragan_g_loss(real_pred: torch.Tensor, fake_pred: torch.Tensor) -> torch.Tensor:
    """L_G (unweighted): the roles of real and generated data swapped."""
    return (_bce(real_pred - _average_logit(fake_pred), False) + _bce(fake_pred - _average_logit(real_pred), True)) / 2


@LOSS_REGISTRY.register()
class ESRGANRaGANLoss(nn.Module):
    """Weighted RaGAN loss; ``loss_weight`` is λ for the generator (5e-3 in the paper), 1 for D.

    ``forward(real_pred, fake_pred, for_discriminator)`` returns L_G·λ, or the
    pair of L_D terms (real, fake) unweighted.
    """

    def __init__(self, loss_weight: float = 5e-3) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, real_pred: torch.Tensor, fake_pred: torch.Tensor, for_discriminator: bool = False):
        if for_discriminator:
            return ragan_d_terms(real_pred, fake_pred)
        return self.loss_weight * ragan_g_loss(real_pred, fake_pred)
