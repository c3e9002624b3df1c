"""ESRGANPSNRModel: the PSNR-oriented stage of ESRGAN (paper section 4.1), whose generator the GAN stage starts from.

Its step is the L1 (pixel, optionally perceptual) loss of the generator; everything else (devices, checkpoints,
training state, accumulation, the non-finite policy, evaluation) is ``ESRGANBaseModel``'s.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from basicsr.utils.registry import MODEL_REGISTRY

from esrgan_plugin.models.base_model import ESRGANBaseModel


@MODEL_REGISTRY.register()
class ESRGANPSNRModel(ESRGANBaseModel):
    """PSNR-oriented ESRGAN training (paper section 4.1: L1 loss, then the GAN stage starts from it)."""

    def optimize_parameters(self, current_iter: int) -> None:
        """One step: the batch in ``train.accumulate`` micro-batches, their gradients summed, one update."""
        self.optimizer_g.zero_grad(set_to_none=True)
        terms, outputs = OrderedDict(), []
        parts = self.micro_batches()
        for i, (lq, gt, share) in enumerate(parts):
            with self.gradient_sync(self.net_g, last=i == len(parts) - 1):
                losses = OrderedDict()
                with self.autocast():  # network outputs back in float32 before any loss reduction
                    output = self.net_g_forward(lq).float()
                    if self.cri_pix:
                        losses['l_pix'] = self.cri_pix(output, gt)
                    if self.cri_perceptual:
                        losses['l_percep'] = self.perceptual_forward(output, gt)
                self.backward_share(losses, share, self.optimizer_g, terms)
            outputs.append(output.detach())
        self.output = torch.cat(outputs)
        nonfinite = self.nonfinite_terms(terms)
        if nonfinite:
            self.optimizer_g.zero_grad(set_to_none=True)
        elif self.step(self.optimizer_g) and self.ema_decay > 0:
            self.model_ema(self.ema_decay)
        self.log_dict = self.reduce_loss_dict(terms)
        self.check_losses(current_iter, {'generator': nonfinite}, terms)
