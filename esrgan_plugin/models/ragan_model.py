"""ESRGANRaGANModel: the GAN stage of ESRGAN (paper section 3).

Generator loss  L_G = L_percep + λ·L_G^Ra + η·L_1  (λ = 5e-3, η = 1e-2 in the
option file), discriminator loss L_D^Ra, both from ``ragan_loss``; with
``train.ldl_opt`` also the LDL term (``losses.ldl_loss``), which compares the
output with the EMA generator's (the option check requires ``ema_decay`` > 0).
``network_d`` is any registered discriminator: the paper's VGG-style one
(one logit per image) or basicsr's ``UNetDiscriminatorSN`` (one per pixel;
``ragan_loss`` says how the relativistic average treats them).

Per step the discriminator runs three times, where basicsr's ESRGANModel runs
it five times: its output on the real batch is computed once and serves the
generator loss (detached) and the discriminator loss (with its graph), which
is exact because the generator update does not change D's weights.

Under DDP the discriminator is *not* wrapped in DistributedDataParallel:
several forwards per backward and BatchNorm buffers broadcast between them
are what broke basicsr's RaGAN under DDP (BasicSR issue 322). Instead its
parameters are broadcast from rank 0 once and its gradients are averaged with
one all-reduce per step, which is what DDP would do, without the hooks.

With ``train.accumulate`` both networks' gradients are summed over the
micro-batches and each steps once; the relativistic means and D's BatchNorm
statistics are then the micro-batch's (docs/training.md#gradient-accumulation).

Precision (``train.amp`` etc.) applies to D as to G: its forwards run under
autocast, in the chosen memory format, compiled if asked; its logits are cast
to float32 before the loss, and in fp16 it has its own gradient scaler, so an
overflow in one network's gradients does not skip the other's step.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
import torch.distributed as dist
from basicsr.archs import build_network
from basicsr.losses import build_loss
from basicsr.utils.registry import MODEL_REGISTRY
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

from esrgan_plugin.losses.ldl_loss import ldl_term
from esrgan_plugin.models.base_model import ESRGANBaseModel
from esrgan_plugin.models.optimizers import build_optimizer
from esrgan_plugin.training import precision


def _set_requires_grad(net: torch.nn.Module, flag: bool) -> None:
    for p in net.parameters():
        p.requires_grad_(flag)


@MODEL_REGISTRY.register()
class ESRGANRaGANModel(ESRGANBaseModel):
    """ESRGAN GAN stage: generator from the PSNR model, VGG-style D, RaGAN + perceptual + L1."""

    network_names = ('generator', 'discriminator')

    def init_training_settings(self) -> None:
        train_opt = self.opt['train']
        assert train_opt.get('gan_opt'), 'train.gan_opt is required for a GAN model (config.checks)'
        self.net_d = precision.to_memory_format(build_network(self.opt['network_d']).to(self.device), self.precision)
        load_path = self.opt['path'].get('pretrain_network_d')
        if load_path is not None:
            self.load_network(self.net_d, load_path, self.opt['path'].get('strict_load_d', True),
                              self.opt['path'].get('param_key_d', 'params'))
        if self.opt['dist']:
            for tensor in list(self.net_d.parameters()) + list(self.net_d.buffers()):
                dist.broadcast(tensor.data, src=0)  # ranks are seeded differently
        self.net_d.train()
        self.net_d_forward = precision.compiled(self.net_d, self.precision)
        self.print_network(self.net_d)
        self.cri_gan = build_loss(train_opt['gan_opt']).to(self.device)
        self.net_d_iters = int(train_opt.get('net_d_iters', 1))
        self.net_d_init_iters = int(train_opt.get('net_d_init_iters', 0))
        super().init_training_settings()  # the generator's: EMA, pixel and perceptual losses, optimizers, ...
        assert not train_opt.get('ldl_opt') or self.ema_decay > 0, 'LDL needs the EMA generator (config.checks)'
        self.cri_ldl = build_loss(train_opt['ldl_opt']).to(self.device) if train_opt.get('ldl_opt') else None

    def setup_optimizers(self) -> None:
        super().setup_optimizers()
        self.optimizer_d = build_optimizer(self.opt['train']['optim_d'], self.net_d.parameters(), self.device.type)
        self.optimizers.append(self.optimizer_d)

    def _average_d_gradients(self) -> None:
        if not self.opt['dist']:
            return
        grads = [p.grad for p in self.net_d.parameters() if p.grad is not None]
        flat = _flatten_dense_tensors(grads)
        dist.all_reduce(flat)
        flat /= self.opt['world_size']
        for grad, averaged in zip(grads, _unflatten_dense_tensors(flat, grads)):
            grad.copy_(averaged)

    def optimize_parameters(self, current_iter: int) -> None:
        """One step of G and D: the batch in ``train.accumulate`` micro-batches, each network's gradients summed
        over them, one update of each (docs/training.md#gradient-accumulation)."""
        g_step = current_iter % self.net_d_iters == 0 and current_iter > self.net_d_init_iters
        self.optimizer_g.zero_grad(set_to_none=True)
        self.optimizer_d.zero_grad(set_to_none=True)
        g_terms, d_terms, d_outputs, outputs = OrderedDict(), OrderedDict(), OrderedDict(), []
        parts = self.micro_batches()
        for i, (lq, gt, share) in enumerate(parts):
            # D is not wrapped in DDP: its gradients are averaged once, by _average_d_gradients, before its step.
            with self.gradient_sync(self.net_g, last=i == len(parts) - 1):
                with self.autocast():  # network outputs back in float32 before any loss reduction
                    output = self.net_g_forward(lq).float()
                    real_pred = self.net_d_forward(gt).float()  # shared by both losses; see the module docstring
                if g_step:  # the generator's loss; its step comes after the last micro-batch
                    self.backward_share(self._generator_losses(lq, output, gt, real_pred), share, self.optimizer_g,
                                        g_terms)
            # The discriminator's loss on the output before G's update, as in one big batch: G steps afterwards.
            with self.autocast():
                fake_pred_d = self.net_d_forward(output.detach()).float()
            l_d_real, l_d_fake = self.cri_gan(real_pred, fake_pred_d, for_discriminator=True)
            self.backward_share({'l_d_real': l_d_real, 'l_d_fake': l_d_fake}, share, self.optimizer_d, d_terms)
            for name, pred in (('out_d_real', real_pred), ('out_d_fake', fake_pred_d)):
                d_outputs[name] = d_outputs.get(name, 0) + share * pred.detach().mean()
            outputs.append(output.detach())
        self.output = torch.cat(outputs)

        g_nonfinite = self.nonfinite_terms(g_terms)
        if g_nonfinite:
            self.optimizer_g.zero_grad(set_to_none=True)
        elif g_step and self.step(self.optimizer_g) and self.ema_decay > 0:
            self.model_ema(self.ema_decay)
        d_nonfinite = self.nonfinite_terms(d_terms)
        if d_nonfinite:
            self.optimizer_d.zero_grad(set_to_none=True)
        else:
            self.step(self.optimizer_d, before_step=self._average_d_gradients)
        terms = OrderedDict(**g_terms, **d_terms)
        self.log_dict = self.reduce_loss_dict(OrderedDict(**terms, **d_outputs))
        self.check_losses(current_iter, {'generator': g_nonfinite, 'discriminator': d_nonfinite}, terms)

    def _generator_losses(self, lq: torch.Tensor, output: torch.Tensor, gt: torch.Tensor,
                          real_pred: torch.Tensor) -> OrderedDict:
        """L1, LDL, perceptual and relativistic terms of the generator's loss on one micro-batch."""
        losses = OrderedDict()
        _set_requires_grad(self.net_d, False)  # no D weight gradients from the G loss
        with self.autocast():
            fake_pred = self.net_d_forward(output).float()
            if self.cri_pix:
                losses['l_g_pix'] = self.cri_pix(output, gt)
            if self.cri_perceptual:
                losses['l_g_percep'] = self.perceptual_forward(output, gt)
        _set_requires_grad(self.net_d, True)
        if self.cri_ldl:  # in float32: the artifact map's variances and 1/5 power
            with torch.no_grad(), self.autocast():
                output_ema = self.net_g_ema(lq).float()
            losses['l_g_ldl'] = ldl_term(self.cri_ldl, output, gt, output_ema)
        losses['l_g_gan'] = self.cri_gan(real_pred.detach(), fake_pred, for_discriminator=False)
        return losses

    def extra_networks_to_save(self) -> list:
        return [(self.net_d, 'net_d')]
