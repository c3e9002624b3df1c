"""ESRGANBaseModel: what every model of the plugin shares; the PSNR and GAN stages add their step.

It is basicsr's ``BaseModel`` with the generator every model here has (built, loaded, trained and evaluated as
basicsr's ``SRModel`` does) and what the plugin needs on top:

* generators load through ``esrgan_plugin.models.pretrained_weights`` (every layout ``archs.checkpoint`` reads,
  ``weights_only``, a one-line error naming the file and what does not fit);
* checkpoints and training states are written atomically (``fileio``), never silently skipped; under DDP the
  generator's replicas are compared before each save;
* runs on CPU and under DDP on CPU (gloo) as well as on CUDA;
* ``train.accumulate``: the batch in micro-batches whose gradients are summed before one update
  (docs/training.md#gradient-accumulation): ``micro_batches``, ``gradient_sync``, ``backward_share``, ``step``;
* a non-finite loss term skips its network's update (``models.nonfinite_losses``);
* mixed precision (bf16, or fp16 with a gradient scaler per optimizer), channels_last and torch.compile from
  ``train.amp`` / ``train.channels_last`` / ``train.compile``, in training and (``val.*`` overriding) in
  validation and test; see ``esrgan_plugin.training.precision``;
* validation and the test report are ``metrics.validation``'s; the model only runs the network for them;
* options are read, never modified.
"""
from __future__ import annotations

import contextlib
import logging
import os
from collections import OrderedDict
from typing import Callable, ContextManager, Optional

import torch
from basicsr.archs import build_network
from basicsr.losses import build_loss
from basicsr.models.base_model import BaseModel
from basicsr.utils import get_root_logger
from basicsr.utils.dist_util import master_only
from torch.nn.parallel import DataParallel, DistributedDataParallel

from esrgan_plugin import fileio
from esrgan_plugin.errors import UserFacingError
from esrgan_plugin.metrics import validation
from esrgan_plugin.models import nonfinite_losses, pretrained_weights, realworld_batches
from esrgan_plugin.models.optimizers import build_optimizer, build_scheduler
from esrgan_plugin.training import distributed, precision


class ESRGANBaseModel(BaseModel):
    """The generator, its devices, checkpoints, training state, accumulation and evaluation (not registered:
    a model is this plus a step, ``optimize_parameters``)."""

    # The networks the optimizers train, in the order of ``self.optimizers`` (the GAN stage adds its
    # discriminator); warnings and errors about losses name them.
    network_names: tuple = ('generator',)

    def __init__(self, opt: dict) -> None:
        super().__init__(opt)
        self.nonfinite_steps = nonfinite_losses.NonFiniteSteps(opt)
        # Micro-batches per step (docs/training.md#gradient-accumulation).
        self.accumulate = int(opt.get('train', {}).get('accumulate', 1)) if opt['is_train'] else 1
        self.log_dict = OrderedDict()
        self.validation_record = validation.ValidationRecord()
        self.eval_precision = precision.evaluation_precision(opt)
        # What net_g is built for: training's settings when training, else validation/test's.
        self.precision = precision.training_precision(opt) if opt['is_train'] else self.eval_precision
        # The commands check this before anything is written (config.loading); a model built from Python gets
        # the same one-line refusal (e.g. fp16 on a CPU) here.
        precision.check_device(self.precision, self.device.type, 'train.amp' if opt['is_train'] else 'val.amp')
        precision.check_device(self.eval_precision, self.device.type, 'val.amp (or train.amp)')
        self.grad_scalers: list = []  # one per optimizer, enabled for fp16 only
        if self.device.type == 'cuda':
            torch.backends.cudnn.benchmark = True  # fixed patch sizes: let cuDNN pick the fastest kernels
        self.realworld = realworld_batches.for_training(opt, self.device)  # LR made from GT crops, or None
        self._build_generator()
        self._eval_forward = None  # the (maybe compiled) network test() runs, made on first use
        self._log_settings()

    def _build_generator(self) -> None:
        """basicsr's ``SRModel``: the generator on its device, logged, loaded; the training settings."""
        self.net_g = self.model_to_device(build_network(self.opt['network_g']))
        self.print_network(self.net_g)
        load_path = self.opt['path'].get('pretrain_network_g')
        if load_path is not None:
            self.load_network(self.net_g, load_path, self.opt['path'].get('strict_load_g', True), 'params')
        if self.is_train:
            self.init_training_settings()

    def _log_settings(self) -> None:
        logger = get_root_logger()
        logger.info(f'Precision: training {self.precision.describe()}; '
                    f'validation/test {self.eval_precision.describe()}.')
        if self.opt['is_train']:
            logger.info(self._batch_note())
        for p in {self.precision, self.eval_precision}:
            warning = precision.slow_bf16_warning(p, self.device.type)
            if warning:
                logger.warning(warning)
                break

    def _batch_note(self) -> str:
        """The log line that says how a step's batch is made: micro-batches, per process, in all."""
        per_gpu = (self.opt.get('datasets', {}).get('train') or {}).get('batch_size_per_gpu')
        if per_gpu is None:
            return f'Gradient accumulation: {self.accumulate} micro-batch(es) per step.'
        world = int(self.opt.get('world_size', 1))
        return (f'Batch of an optimizer step: {per_gpu} per process x {world} process(es) = {per_gpu * world} '
                f'(effective batch); accumulated over {self.accumulate} micro-batch(es) of '
                f'{per_gpu // self.accumulate} per process.')

    # ----------------------------------------------------------------- devices
    def model_to_device(self, net: torch.nn.Module) -> torch.nn.Module:
        """basicsr passes ``device_ids=[torch.cuda.current_device()]`` even on CPU; DDP on CPU needs none. The
        memory format is set before DDP wraps the network, so its gradient buckets match it."""
        net = precision.to_memory_format(net.to(self.device), self.precision)
        if self.opt['dist']:
            device_ids = [torch.cuda.current_device()] if self.device.type == 'cuda' else None
            return DistributedDataParallel(net, device_ids=device_ids,
                                           find_unused_parameters=self.opt.get('find_unused_parameters', False))
        if self.opt['num_gpu'] > 1:
            return DataParallel(net)
        return net

    @master_only
    def print_network(self, net: torch.nn.Module) -> None:
        """The network's class and size in the log and on the console; its full printout in the log file only.

        basicsr logs ``str(net)`` too, about 700 lines for the paper's generator, which buried the console
        output of every run. The printout is handed to the logger's file handlers alone.
        """
        bare = self.get_bare_model(net)
        logger = get_root_logger()
        logger.info(f'Network: {type(bare).__name__}, with parameters: {sum(p.numel() for p in bare.parameters()):,d}'
                    ' (layers listed in the log file)')
        record = logger.makeRecord(logger.name, logging.INFO, __file__, 0, str(bare), None, None)
        for handler in logger.handlers:
            if isinstance(handler, logging.FileHandler):
                handler.handle(record)

    def get_bare_model(self, net: torch.nn.Module) -> torch.nn.Module:
        """Unwraps torch.compile's wrapper too (the model keeps none, but callers may)."""
        net = super().get_bare_model(getattr(net, '_orig_mod', net))
        return getattr(net, '_orig_mod', net)

    def feed_data(self, data: dict) -> None:
        """Non-blocking copies (they overlap with compute when the loader pins memory: ``pin_memory: true``)."""
        if self.realworld is not None and 'kernel1' in data:  # GT crops and kernels: the LR is made here
            data = self.realworld.pair(data)
        self.lq = self._to_device(data['lq'])
        if 'gt' in data:
            self.gt = self._to_device(data['gt'])

    def _to_device(self, img: torch.Tensor) -> torch.Tensor:
        return precision.image_to_memory_format(img.to(self.device, non_blocking=True), self.precision)

    # ----------------------------------------------------------- checkpoints
    def load_network(self, net: torch.nn.Module, load_path: str, strict: bool = True,
                     param_key: Optional[str] = 'params') -> None:
        """Generators in any checkpoint layout, other networks as basicsr saves them (``models.pretrained_weights``,
        which also picks the generator's entry: ``path.param_key_g``, or on resume ``param_key``)."""
        pretrained_weights.load_weights(self.get_bare_model(net), load_path, strict, param_key, self.opt)

    @master_only
    def save_network(self, net, net_label: str, current_iter: int, param_key='params') -> None:
        nets = net if isinstance(net, list) else [net]
        keys = param_key if isinstance(param_key, list) else [param_key]
        # contiguous(): channels_last tensors are stored in the standard layout every reader expects
        payload = {key: {k: v.detach().cpu().contiguous() for k, v in self.get_bare_model(n).state_dict().items()}
                   for n, key in zip(nets, keys)}
        name = 'latest' if current_iter == -1 else current_iter
        fileio.save_torch(payload, os.path.join(self.opt['path']['models'], f'{net_label}_{name}.pth'))

    def extra_networks_to_save(self) -> list:
        """(network, label) pairs saved besides the generator; the GAN stage adds its discriminator."""
        return []

    def save(self, epoch: int, current_iter: int, loop_state: Optional[dict] = None) -> None:
        """Networks first, the training state last: a state file on disk means its networks are complete.

        ``loop_state`` is what the training loop adds to the state (its position in the data, the generator
        states); see ``esrgan_plugin.training.train_loop``.
        """
        self.check_replicas_in_sync(current_iter)
        if hasattr(self, 'net_g_ema'):
            self.save_network([self.net_g, self.net_g_ema], 'net_g', current_iter, param_key=['params', 'params_ema'])
        else:
            self.save_network(self.net_g, 'net_g', current_iter)
        for net, label in self.extra_networks_to_save():
            self.save_network(net, label, current_iter)
        if self.realworld is not None and current_iter != -1:  # every rank's pool (a collective under DDP)
            loop_state = {**(loop_state or {}), **self.realworld.gathered_state()}
        self.save_training_state(epoch, current_iter, loop_state)

    def check_replicas_in_sync(self, current_iter: int) -> None:
        """Under DDP, compare a checksum of the generator on every rank before saving: one all-gather of two
        numbers per checkpoint; a silent divergence between ranks would otherwise only show as a worse model."""
        if not self.opt['dist']:
            return
        params = [p.detach().double() for p in self.get_bare_model(self.net_g).parameters()]
        local = torch.stack([sum(p.sum() for p in params), sum(p.abs().sum() for p in params)])
        gathered = [torch.empty_like(local) for _ in range(self.opt['world_size'])]
        with distributed.collective(self.opt, 'comparing the generator of every rank before saving'):
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
                'nonfinite_in_a_row': self.nonfinite_steps.in_a_row,
                **self.grad_scaler_state()}

    def resume_training(self, state: dict) -> None:
        for kind, objects in (('optimizers', self.optimizers), ('schedulers', self.schedulers)):
            if len(state[kind]) != len(objects):
                raise UserFacingError(f'the training state holds {len(state[kind])} {kind} but this model has '
                                      f'{len(objects)}; resume with the option file it was trained with')
            for obj, obj_state in zip(objects, state[kind]):
                obj.load_state_dict(obj_state)
        self.nonfinite_steps.in_a_row = int(state.get('nonfinite_in_a_row', 0))
        for scaler, scaler_state in zip(self.grad_scalers, state.get('grad_scalers', [])):
            scaler.load_state_dict(scaler_state)  # a disabled scaler (run no longer fp16) ignores it
        if self.realworld is not None:
            self.realworld.load_state(state)

    @master_only
    def save_training_state(self, epoch: int, current_iter: int, loop_state: Optional[dict] = None) -> None:
        if current_iter == -1:
            return
        state = {'epoch': epoch, 'iter': current_iter, **(loop_state or {}), **self.training_state()}
        fileio.save_torch(state, os.path.join(self.opt['path']['training_states'], f'{current_iter}.state'))

    def grad_scaler_state(self) -> dict:
        """``{'grad_scalers': [...]}`` (one per optimizer) in fp16, else nothing."""
        if not any(s.is_enabled() for s in self.grad_scalers):
            return {}
        return {'grad_scalers': [s.state_dict() for s in self.grad_scalers]}

    # -------------------------------------------------------------- training
    def init_training_settings(self) -> None:
        """The generator's: EMA, pixel and perceptual losses, the forwards the step runs, optimizers, gradient
        scalers, schedulers. A stage that trains more networks sets them up first and then calls this."""
        train_opt = self.opt['train']
        self.net_g.train()
        self.ema_decay = float(train_opt.get('ema_decay', 0))
        if self.ema_decay > 0:  # used for validation only, so in validation's memory format
            self.net_g_ema = precision.to_memory_format(build_network(self.opt['network_g']).to(self.device).eval(),
                                                        self.eval_precision)
            load_path = self.opt['path'].get('pretrain_network_g')
            if load_path is not None:
                self.load_network(self.net_g_ema, load_path, True, 'params_ema')
            else:
                self.model_ema(0)  # start from a copy of net_g
            for p in self.net_g_ema.parameters():
                p.requires_grad_(False)
            get_root_logger().info(f'Generator EMA with decay {self.ema_decay}.')
        # config.checks refuses a training file without a pixel or perceptual loss
        assert train_opt.get('pixel_opt') or train_opt.get('perceptual_opt'), 'no loss is set (config.checks)'
        self.cri_pix = build_loss(train_opt['pixel_opt']).to(self.device) if train_opt.get('pixel_opt') else None
        self.cri_perceptual = (precision.to_memory_format(build_loss(train_opt['perceptual_opt']).to(self.device),
                                                          self.precision)
                               if train_opt.get('perceptual_opt') else None)
        # The callables the training step runs: the modules themselves, or their compiled versions.
        self.net_g_forward = precision.compiled(self.net_g, self.precision)
        self.perceptual_forward = (precision.compiled(self.cri_perceptual, self.precision)
                                   if self.cri_perceptual else None)
        self.setup_optimizers()
        self.grad_scalers = [precision.new_grad_scaler(self.precision, self.device.type) for _ in self.optimizers]
        self.setup_schedulers()

    def setup_optimizers(self) -> None:
        params = [p for p in self.net_g.parameters() if p.requires_grad]
        self.optimizer_g = build_optimizer(self.opt['train']['optim_g'], params, self.device.type)
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

    def autocast(self) -> ContextManager:
        """The training forwards' autocast (a no-op in fp32)."""
        return precision.autocast(self.precision, self.device.type)

    # ---------------------------------------------------- gradient accumulation
    def micro_batches(self) -> list[tuple[torch.Tensor, torch.Tensor, float]]:
        """``(lq, gt, share)`` for each of the ``train.accumulate`` micro-batches of the fed batch.

        ``share`` is the micro-batch's fraction of the batch: a micro-batch's mean loss times its share, summed
        over the micro-batches, is the batch's mean loss, so the summed gradients are the batch's gradients.
        """
        count = min(self.accumulate, self.lq.shape[0])
        size = self.lq.shape[0]
        return [(lq, gt, lq.shape[0] / size)
                for lq, gt in zip(torch.tensor_split(self.lq, count), torch.tensor_split(self.gt, count))]

    def gradient_sync(self, net: torch.nn.Module, last: bool) -> ContextManager:
        """Under DDP, ``no_sync()`` for every micro-batch but the last: the gradients are all-reduced once per
        step, when the last micro-batch's backward has added its part."""
        if last or not isinstance(net, DistributedDataParallel):
            return contextlib.nullcontext()
        return net.no_sync()

    def backward_share(self, losses: dict, share: float, optimizer: torch.optim.Optimizer, terms: dict) -> None:
        """Backward of the micro-batch's ``losses`` times ``share`` (through the optimizer's gradient scaler);
        each term's share of its value is added to ``terms`` (detached), which ends as the batch's loss terms.

        A non-finite term goes through backward too: under DDP every process must take part in the gradient
        all-reduce, and the step is skipped afterwards (``nonfinite_terms``).
        """
        for name, value in losses.items():
            terms[name] = terms.get(name, 0) + share * value.detach()
        scaler = self.grad_scalers[self.optimizers.index(optimizer)]
        scaler.scale(sum(losses.values()) * share).backward()

    def step(self, optimizer: torch.optim.Optimizer, before_step: Optional[Callable[[], None]] = None) -> bool:
        """``before_step()`` (e.g. a gradient all-reduce), then one optimizer step on the summed gradients.

        In fp16 this goes through the optimizer's gradient scaler, which skips the step when the scaled
        gradients overflowed and lowers its scale: routine, not divergence (the loss itself was finite).
        Returns whether the weights were updated.
        """
        if before_step is not None:
            before_step()
        scaler = self.grad_scalers[self.optimizers.index(optimizer)]
        if not scaler.is_enabled():
            optimizer.step()
            return True
        scale = scaler.get_scale()
        scaler.step(optimizer)
        scaler.update()
        return scaler.get_scale() >= scale  # the scale drops exactly when the step was skipped

    # ------------------------------------------------------- non-finite losses
    def nonfinite_terms(self, terms: dict) -> list[str]:
        """The loss terms that are not finite here or on another process: every process skips the same steps."""
        return nonfinite_losses.nonfinite_terms(terms, self.opt)

    def check_losses(self, current_iter: int, nonfinite: dict, terms: dict) -> None:
        """After a step: ``nonfinite_losses.NonFiniteSteps.record``; ``nonfinite``: network name -> its
        non-finite terms (the updates of those networks were skipped)."""
        self.nonfinite_steps.record(current_iter, nonfinite, terms, dict(zip(self.network_names, self.optimizers)))

    # ------------------------------------------------------ validation and test
    def test(self) -> None:
        """The EMA generator (else the generator) on ``self.lq`` in validation's precision and memory format;
        ``self.output`` in float32 and the standard layout, ready for the metrics."""
        net = self.net_g_ema if hasattr(self, 'net_g_ema') else self.get_bare_model(self.net_g)
        if self._eval_forward is None:
            self._eval_forward = precision.compiled(net, self.eval_precision)
        was_training = net.training
        net.eval()
        with torch.no_grad(), precision.autocast(self.eval_precision, self.device.type):
            output = self._eval_forward(precision.image_to_memory_format(self.lq, self.eval_precision))
        self.output = output.float().contiguous()
        net.train(was_training)

    def upscale_for_evaluation(self, lq: torch.Tensor) -> torch.Tensor:
        """``test()`` on one LR batch, as ``metrics.evaluation`` calls it: the output is returned and neither it
        nor the input is kept on the model, so validation holds one image's tensors at a time."""
        self.feed_data({'lq': lq})
        self.test()
        output = self.output
        del self.lq, self.output
        return output

    def dist_validation(self, dataloader, current_iter, tb_logger, save_img: bool) -> None:
        """basicsr's ``SRModel``: under DDP rank 0 validates alone."""
        if self.opt['rank'] == 0:
            self.nondist_validation(dataloader, current_iter, tb_logger, save_img)

    def nondist_validation(self, dataloader, current_iter, tb_logger, save_img: bool) -> None:
        """``metrics.validation.validate`` with this model's network; ``metric_results``: the set's means."""
        means = validation.validate(self.upscale_for_evaluation, dataloader, self.opt, current_iter, tb_logger,
                                    save_img, self.validation_record)
        if means is not None:
            self.metric_results = means
