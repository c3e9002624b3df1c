"""ESRGANPSNRModel: the PSNR-oriented stage (L1 only), and the base of the GAN stage.

It is basicsr's ``SRModel`` with what the plugin needs on top:

* generators load through ``esrgan_plugin.checkpoint`` (every published layout,
  ``weights_only``, a one-line error naming the first key that does not fit);
* checkpoints and training states are written atomically (``fileio``), never
  silently skipped;
* runs on CPU and under DDP on CPU (gloo) as well as on CUDA;
* a non-finite loss skips the update and is logged; too many in a row stop
  training with a clear error;
* validation logs PSNR/SSIM per image and the mean, and writes SR images
  atomically;
* options are read, never modified.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from typing import Optional

import torch
from basicsr.archs import build_network
from basicsr.losses import build_loss
from basicsr.metrics import calculate_metric
from basicsr.models import lr_scheduler
from basicsr.models.sr_model import SRModel
from basicsr.utils import get_root_logger, tensor2img
from basicsr.utils.dist_util import master_only
from basicsr.utils.registry import MODEL_REGISTRY
from torch.nn.parallel import DataParallel, DistributedDataParallel

from . import checkpoint, fileio
from .errors import UserFacingError
from .rrdbnet_arch import ESRGANRRDBNet


class TrainingDiverged(UserFacingError):
    """Too many consecutive non-finite losses."""


def build_optimizer(optim_opt: dict, params) -> torch.optim.Optimizer:
    """An optimizer from an option dict such as ``{type: Adam, lr: 2e-4, betas: [0.9, 0.99]}``."""
    kwargs = {k: v for k, v in optim_opt.items() if k != 'type'}
    optim_type = optim_opt.get('type')
    if optim_type not in ('Adam', 'AdamW'):
        raise UserFacingError(f'Optimizer type {optim_type!r} is not supported; use Adam or AdamW.')
    if 'betas' in kwargs:
        kwargs['betas'] = tuple(kwargs['betas'])
    return getattr(torch.optim, optim_type)(params, **kwargs)


def build_scheduler(sched_opt: dict, optimizer: torch.optim.Optimizer):
    kwargs = {k: v for k, v in sched_opt.items() if k != 'type'}
    sched_type = sched_opt.get('type')
    if sched_type in ('MultiStepLR', 'MultiStepRestartLR'):
        return lr_scheduler.MultiStepRestartLR(optimizer, **kwargs)
    if sched_type == 'CosineAnnealingRestartLR':
        return lr_scheduler.CosineAnnealingRestartLR(optimizer, **kwargs)
    raise UserFacingError(f'Scheduler type {sched_type!r} is not supported; use MultiStepLR or '
                          'CosineAnnealingRestartLR.')


@MODEL_REGISTRY.register()
class ESRGANPSNRModel(SRModel):
    """PSNR-oriented ESRGAN training (paper section 4.1: L1 loss, then the GAN stage starts from it)."""

    def __init__(self, opt: dict) -> None:
        self.max_nonfinite = int(opt.get('train', {}).get('max_nonfinite_steps', 10)) if opt['is_train'] else 0
        self.nonfinite_in_a_row = 0
        self.log_dict = OrderedDict()
        super().__init__(opt)

    # ----------------------------------------------------------------- devices
    def model_to_device(self, net: torch.nn.Module) -> torch.nn.Module:
        """basicsr passes ``device_ids=[torch.cuda.current_device()]`` even on CPU; DDP on CPU needs none."""
        net = net.to(self.device)
        if self.opt['dist']:
            device_ids = [torch.cuda.current_device()] if self.device.type == 'cuda' else None
            return DistributedDataParallel(net, device_ids=device_ids,
                                           find_unused_parameters=self.opt.get('find_unused_parameters', False))
        if self.opt['num_gpu'] > 1:
            return DataParallel(net)
        return net

    # ----------------------------------------------------------- checkpoints
    def load_network(self, net: torch.nn.Module, load_path: str, strict: bool = True,
                     param_key: Optional[str] = 'params') -> None:
        """Generators load through the plugin's loader (any layout); other networks as basicsr does."""
        bare = self.get_bare_model(net)
        if isinstance(bare, ESRGANRRDBNet):
            key = param_key
            # basicsr passes 'params' by default; unless the option asks for it, prefer EMA weights. On resume
            # basicsr points pretrain_network_g at our own net_g_<iter>.pth, where 'params' is what net_g needs.
            if param_key == 'params' and not self.opt['path'].get('resume_state'):
                key = self.opt['path'].get('param_key_g')
            checkpoint.load_into(bare, load_path, key)
            get_root_logger().info(f'Loaded {load_path} into the generator (param key: {key or "EMA if present"}).')
            return
        state = checkpoint.unwrap_state_dict(checkpoint.read_checkpoint(load_path), param_key, f'Checkpoint {load_path}')
        if strict:
            checkpoint.check_fits(bare.state_dict(), state, f'Checkpoint {load_path}')
        bare.load_state_dict(state, strict=strict)

    @master_only
    def save_network(self, net, net_label: str, current_iter: int, param_key='params') -> None:
        nets = net if isinstance(net, list) else [net]
        keys = param_key if isinstance(param_key, list) else [param_key]
        payload = {key: {k: v.detach().cpu() for k, v in self.get_bare_model(n).state_dict().items()}
                   for n, key in zip(nets, keys)}
        name = 'latest' if current_iter == -1 else current_iter
        fileio.save_torch(payload, os.path.join(self.opt['path']['models'], f'{net_label}_{name}.pth'))

    def extra_networks_to_save(self) -> list:
        """(network, label) pairs saved besides the generator; the GAN stage adds its discriminator."""
        return []

    def save(self, epoch: int, current_iter: int, loop_state: Optional[dict] = None) -> None:
        """Networks first, the training state last: a state file on disk means its networks are complete.

        ``loop_state`` is what the training loop adds to the state (its position in the data, the generator
        states); see ``esrgan_plugin.train_loop``.
        """
        self.check_replicas_in_sync(current_iter)
        if hasattr(self, 'net_g_ema'):
            self.save_network([self.net_g, self.net_g_ema], 'net_g', current_iter, param_key=['params', 'params_ema'])
        else:
            self.save_network(self.net_g, 'net_g', current_iter)
        for net, label in self.extra_networks_to_save():
            self.save_network(net, label, current_iter)
        self.save_training_state(epoch, current_iter, loop_state)

    def check_replicas_in_sync(self, current_iter: int) -> None:
        """Under DDP, compare a checksum of the generator on every rank before saving.

        One all-gather of two numbers per checkpoint; a silent divergence
        between ranks would otherwise only show as a worse model.
        """
        if not self.opt['dist']:
            return
        params = [p.detach().double() for p in self.get_bare_model(self.net_g).parameters()]
        local = torch.stack([sum(p.sum() for p in params), sum(p.abs().sum() for p in params)])
        gathered = [torch.empty_like(local) for _ in range(self.opt['world_size'])]
        torch.distributed.all_gather(gathered, local)
        if any(not torch.equal(g, gathered[0]) for g in gathered):
            raise RuntimeError(f'iter {current_iter}: generator weights differ between ranks: '
                               f'{[g.tolist() for g in gathered]}')
        get_root_logger().info(f'iter {current_iter}: generator weights identical on all '
                               f'{self.opt["world_size"]} ranks.')

    # The model's part of a training state (the networks have their own files). Anything new that decides how
    # training continues (e.g. a gradient scaler) gets one entry in each of these two methods.
    def training_state(self) -> dict:
        return {'optimizers': [o.state_dict() for o in self.optimizers],
                'schedulers': [s.state_dict() for s in self.schedulers],
                'nonfinite_in_a_row': self.nonfinite_in_a_row}

    def resume_training(self, state: dict) -> None:
        for kind, objects in (('optimizers', self.optimizers), ('schedulers', self.schedulers)):
            if len(state[kind]) != len(objects):
                raise UserFacingError(f'the training state holds {len(state[kind])} {kind} but this model has '
                                      f'{len(objects)}; resume with the option file it was trained with')
            for obj, obj_state in zip(objects, state[kind]):
                obj.load_state_dict(obj_state)
        self.nonfinite_in_a_row = int(state.get('nonfinite_in_a_row', 0))

    @master_only
    def save_training_state(self, epoch: int, current_iter: int, loop_state: Optional[dict] = None) -> None:
        if current_iter == -1:
            return
        state = {'epoch': epoch, 'iter': current_iter, **(loop_state or {}), **self.training_state()}
        fileio.save_torch(state, os.path.join(self.opt['path']['training_states'], f'{current_iter}.state'))

    # -------------------------------------------------------------- training
    def init_training_settings(self) -> None:
        train_opt = self.opt['train']
        self.net_g.train()
        self.ema_decay = float(train_opt.get('ema_decay', 0))
        if self.ema_decay > 0:
            self.net_g_ema = build_network(self.opt['network_g']).to(self.device).eval()
            load_path = self.opt['path'].get('pretrain_network_g')
            if load_path is not None:
                self.load_network(self.net_g_ema, load_path, True, 'params_ema')
            else:
                self.model_ema(0)  # start from a copy of net_g
            for p in self.net_g_ema.parameters():
                p.requires_grad_(False)
            get_root_logger().info(f'Generator EMA with decay {self.ema_decay}.')
        self.cri_pix = build_loss(train_opt['pixel_opt']).to(self.device) if train_opt.get('pixel_opt') else None
        self.cri_perceptual = (build_loss(train_opt['perceptual_opt']).to(self.device)
                               if train_opt.get('perceptual_opt') else None)
        if self.cri_pix is None and self.cri_perceptual is None:
            raise UserFacingError('train.pixel_opt and train.perceptual_opt are both missing; set at least one.')
        self.setup_optimizers()
        self.setup_schedulers()

    def setup_optimizers(self) -> None:
        params = [p for p in self.net_g.parameters() if p.requires_grad]
        self.optimizer_g = build_optimizer(self.opt['train']['optim_g'], params)
        self.optimizers.append(self.optimizer_g)

    def setup_schedulers(self) -> None:
        sched_opt = self.opt['train'].get('scheduler')
        if sched_opt:
            self.schedulers = [build_scheduler(sched_opt, o) for o in self.optimizers]

    @torch.no_grad()
    def model_ema(self, decay: float = 0.999) -> None:
        ema = list(self.net_g_ema.parameters())
        live = [p.detach() for p in self.get_bare_model(self.net_g).parameters()]
        torch._foreach_lerp_(ema, live, 1.0 - decay)

    def loss_is_finite(self, loss: torch.Tensor, current_iter: int, what: str) -> bool:
        """False (and a warning) when ``loss`` is NaN/inf; raises after too many in a row."""
        if bool(torch.isfinite(loss)):
            self.nonfinite_in_a_row = 0
            return True
        self.nonfinite_in_a_row += 1
        get_root_logger().warning(f'iter {current_iter}: {what} is {loss.item()}; this update is skipped '
                                  f'({self.nonfinite_in_a_row} in a row).')
        if self.nonfinite_in_a_row >= self.max_nonfinite:
            raise TrainingDiverged(
                f'training diverged: {self.nonfinite_in_a_row} non-finite losses in a row up to iteration '
                f'{current_iter}; resume from the last checkpoint in {self.opt["path"]["models"]} with a lower '
                'learning rate, or raise train.max_nonfinite_steps.')
        return False

    def optimize_parameters(self, current_iter: int) -> None:
        self.optimizer_g.zero_grad(set_to_none=True)
        self.output = self.net_g(self.lq)
        losses = OrderedDict()
        if self.cri_pix:
            losses['l_pix'] = self.cri_pix(self.output, self.gt)
        if self.cri_perceptual:
            losses['l_percep'] = self.cri_perceptual(self.output, self.gt)
        l_total = sum(losses.values())
        if self.loss_is_finite(l_total, current_iter, 'the generator loss'):
            l_total.backward()
            self.optimizer_g.step()
            if self.ema_decay > 0:
                self.model_ema(self.ema_decay)
        self.log_dict = self.reduce_loss_dict(losses)

    # ------------------------------------------------------------ validation
    def nondist_validation(self, dataloader, current_iter, tb_logger, save_img: bool) -> None:
        """Metrics per image and their mean in the log; SR images written atomically."""
        dataset_name = dataloader.dataset.opt['name']
        metric_opts = self.opt['val'].get('metrics') or {}
        logger = get_root_logger()
        if metric_opts:
            self._initialize_best_metric_results(dataset_name)
        totals = {name: 0.0 for name in metric_opts}
        count = 0
        for data in dataloader:
            img_name = os.path.splitext(os.path.basename(data['lq_path'][0]))[0]
            self.feed_data(data)
            self.test()
            sr_img = tensor2img([self.output.detach().cpu()])
            metric_data = {'img': sr_img}
            if hasattr(self, 'gt'):
                metric_data['img2'] = tensor2img([self.gt.detach().cpu()])
                del self.gt
            del self.lq, self.output
            if save_img:
                fileio.save_image(sr_img, self._sr_image_path(dataset_name, img_name, current_iter))
            values = {name: calculate_metric(metric_data, o) for name, o in metric_opts.items()}
            for name, value in values.items():
                totals[name] += float(value)
            if values:
                logger.info(f'{dataset_name} {img_name}: ' + ', '.join(f'{k} {v:.4f}' for k, v in values.items()))
            count += 1
        if metric_opts and count:
            self.metric_results = {name: total / count for name, total in totals.items()}
            for name, value in self.metric_results.items():
                self._update_best_metric_result(dataset_name, name, value, current_iter)
            self._log_validation_metric_values(current_iter, dataset_name, tb_logger)

    def _sr_image_path(self, dataset_name: str, img_name: str, current_iter) -> str:
        vis = self.opt['path']['visualization']
        if self.opt['is_train']:
            return os.path.join(vis, img_name, f'{img_name}_{current_iter}.png')
        suffix = self.opt['val'].get('suffix') or self.opt['name']
        return os.path.join(vis, dataset_name, f'{img_name}_{suffix}.png')
