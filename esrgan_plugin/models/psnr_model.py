"""ESRGANPSNRModel: the PSNR-oriented stage (L1 only), and the base of the GAN stage.

It is basicsr's ``SRModel`` with what the plugin needs on top:

* generators load through ``esrgan_plugin.archs.checkpoint`` (every published layout,
  ``weights_only``, a one-line error naming the first key that does not fit);
* checkpoints and training states are written atomically (``fileio``), never
  silently skipped;
* runs on CPU and under DDP on CPU (gloo) as well as on CUDA;
* ``train.accumulate``: the batch in micro-batches whose gradients are summed
  before one update (docs/training.md#gradient-accumulation);
* a non-finite loss term skips its network's update with a warning naming the
  term; too many such steps in a row stop training with an error naming the
  checkpoint to start again from (docs/training.md#non-finite-losses);
* validation logs every metric per image and the mean with the direction that
  is better (NIQE and LPIPS: lower), tracks the best value that way round, and
  writes SR images atomically; testing adds a progress bar, results/<name>/index.html
  and a table of the means. Images are run and scored by ``metrics.evaluation``, the
  path the sweep and the demo take too, so their numbers agree;
* mixed precision (bf16, or fp16 with a gradient scaler), channels_last and
  torch.compile from ``train.amp`` / ``train.channels_last`` / ``train.compile``,
  in training and (``val.*`` overriding) in validation and test; see
  ``esrgan_plugin.training.precision``;
* options are read, never modified.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
from collections import OrderedDict
from typing import Callable, ContextManager, Optional

import torch
import torch.distributed as dist
from basicsr.archs import build_network
from basicsr.losses import build_loss
from basicsr.models.sr_model import SRModel
from basicsr.utils import get_root_logger
from basicsr.utils.dist_util import master_only
from basicsr.utils.registry import MODEL_REGISTRY
from torch.nn.parallel import DataParallel, DistributedDataParallel
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from esrgan_plugin.archs import checkpoint
from esrgan_plugin import fileio
from esrgan_plugin.metrics import evaluation, scoring as metrics, results_page
from esrgan_plugin.training import distributed, precision, resume
from esrgan_plugin.errors import UserFacingError
from esrgan_plugin.models.optimizers import build_optimizer, build_scheduler
from esrgan_plugin.archs.rrdbnet_arch import ESRGANRRDBNet


class TrainingDiverged(UserFacingError):
    """Too many consecutive non-finite losses."""


@MODEL_REGISTRY.register()
class ESRGANPSNRModel(SRModel):
    """PSNR-oriented ESRGAN training (paper section 4.1: L1 loss, then the GAN stage starts from it)."""

    def __init__(self, opt: dict) -> None:
        self.max_nonfinite = int(opt.get('train', {}).get('max_nonfinite_steps', 10)) if opt['is_train'] else 0
        self.nonfinite_in_a_row = 0
        self.nonfinite_terms_seen: list[str] = []  # the terms that were not finite in those steps
        # Micro-batches per step (docs/training.md#gradient-accumulation).
        self.accumulate = int(opt.get('train', {}).get('accumulate', 1)) if opt['is_train'] else 1
        self.log_dict = OrderedDict()
        device_type = 'cuda' if opt['num_gpu'] != 0 else 'cpu'  # as basicsr's BaseModel picks self.device
        self.eval_precision = precision.evaluation_precision(opt)
        # What net_g is built for: training's settings when training, else validation/test's.
        self.precision = precision.training_precision(opt) if opt['is_train'] else self.eval_precision
        # The commands check this before anything is written (config.loading); a model built from Python gets
        # the same one-line refusal (e.g. fp16 on a CPU) here.
        precision.check_device(self.precision, device_type, 'train.amp' if opt['is_train'] else 'val.amp')
        precision.check_device(self.eval_precision, device_type, 'val.amp (or train.amp)')
        self.grad_scalers: list = []  # one per optimizer, enabled for fp16 only
        if device_type == 'cuda':
            torch.backends.cudnn.benchmark = True  # fixed patch sizes: let cuDNN pick the fastest kernels
        super().__init__(opt)
        self._eval_forward = None  # the (maybe compiled) network test() runs, made on first use
        logger = get_root_logger()
        logger.info(f'Precision: training {self.precision.describe()}; '
                    f'validation/test {self.eval_precision.describe()}.')
        if opt['is_train']:
            logger.info(self._batch_note())
        for p in {self.precision, self.eval_precision}:
            warning = precision.slow_bf16_warning(p, device_type)
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
        """basicsr passes ``device_ids=[torch.cuda.current_device()]`` even on CPU; DDP on CPU needs none.

        The memory format is set before DDP wraps the network, so its gradient buckets match it.
        """
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
        self.lq = self._to_device(data['lq'])
        if 'gt' in data:
            self.gt = self._to_device(data['gt'])

    def _to_device(self, img: torch.Tensor) -> torch.Tensor:
        return precision.image_to_memory_format(img.to(self.device, non_blocking=True), self.precision)

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
                'nonfinite_in_a_row': self.nonfinite_in_a_row,
                **self.grad_scaler_state()}

    def resume_training(self, state: dict) -> None:
        for kind, objects in (('optimizers', self.optimizers), ('schedulers', self.schedulers)):
            if len(state[kind]) != len(objects):
                raise UserFacingError(f'the training state holds {len(state[kind])} {kind} but this model has '
                                      f'{len(objects)}; resume with the option file it was trained with')
            for obj, obj_state in zip(objects, state[kind]):
                obj.load_state_dict(obj_state)
        self.nonfinite_in_a_row = int(state.get('nonfinite_in_a_row', 0))
        for scaler, scaler_state in zip(self.grad_scalers, state.get('grad_scalers', [])):
            scaler.load_state_dict(scaler_state)  # a disabled scaler (run no longer fp16) ignores it

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
        self.cri_pix = build_loss(train_opt['pixel_opt']).to(self.device) if train_opt.get('pixel_opt') else None
        self.cri_perceptual = (precision.to_memory_format(build_loss(train_opt['perceptual_opt']).to(self.device),
                                                          self.precision)
                               if train_opt.get('perceptual_opt') else None)
        if self.cri_pix is None and self.cri_perceptual is None:
            raise UserFacingError('train.pixel_opt and train.perceptual_opt are both missing; set at least one.')
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

    # The networks the optimizers train, in the order of ``self.optimizers`` (the GAN stage adds its
    # discriminator); warnings and errors about losses name them.
    network_names: tuple = ('generator',)

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

    def nonfinite_terms(self, terms: dict) -> list[str]:
        """The names of the loss terms that are NaN or infinite, on this process or (under DDP) any other, so
        that every process skips the same steps."""
        if not terms:
            return []
        flags = torch.stack([~torch.isfinite(value) for value in terms.values()]).float()
        if self.opt['dist']:
            with distributed.collective(self.opt, 'agreeing which loss terms were not finite'):
                dist.all_reduce(flags, op=dist.ReduceOp.MAX)
        return [name for name, flag in zip(terms, flags.tolist()) if flag]

    def check_losses(self, current_iter: int, nonfinite: dict, terms: dict) -> None:
        """After a step: warn when a loss term was not finite, naming each term, its network, the iteration and
        the learning rates; after ``train.max_nonfinite_steps`` such steps in a row, raise TrainingDiverged
        naming the terms and the newest intact checkpoint to start again from.

        ``nonfinite``: network name -> its non-finite terms (the updates of those networks were skipped).
        """
        bad = {net: names for net, names in nonfinite.items() if names}
        if not bad:
            self.nonfinite_in_a_row, self.nonfinite_terms_seen = 0, []
            return
        self.nonfinite_in_a_row += 1

        def value(name: str) -> str:  # under DDP the term may be finite here and not on another process
            v = terms[name].item()
            return f'{v}' if not math.isfinite(v) else 'non-finite on another process'

        named = '; '.join(f'{net}: ' + ', '.join(f'{n} = {value(n)}' for n in names) for net, names in bad.items())
        rates = ', '.join(f'{net} {o.param_groups[0]["lr"]:.3g}' for net, o in zip(self.network_names,
                                                                                     self.optimizers))
        get_root_logger().warning(
            f'iter {current_iter}: non-finite loss ({named}); the update of the {" and the ".join(bad)} is skipped '
            f'(steps with a non-finite loss in a row: {self.nonfinite_in_a_row} of at most {self.max_nonfinite}; '
            f'learning rates: {rates}).')
        self.nonfinite_terms_seen += [n for names in bad.values() for n in names if n not in self.nonfinite_terms_seen]
        if self.nonfinite_in_a_row >= self.max_nonfinite:
            raise TrainingDiverged(
                f'training diverged: {self.nonfinite_in_a_row} steps in a row up to iteration {current_iter} had '
                f'a non-finite loss ({", ".join(self.nonfinite_terms_seen)}); {self._restart_advice()}, or raise '
                'train.max_nonfinite_steps.')

    def _restart_advice(self) -> str:
        """Where to start again: the newest intact checkpoint (``training.resume``), with a lower learning rate."""
        try:
            paths = self.opt['path']  # a model built from Python may lack experiments_root; its parent of states
            root = paths.get('experiments_root') or os.path.dirname(paths['training_states'])
            point = resume.find_resume_point({**self.opt, 'auto_resume': True,
                                              'path': {**paths, 'experiments_root': root}})
        except UserFacingError:  # every saved state is damaged
            point = None
        lower = 'a lower ' + ' and '.join(f'train.{k}.lr' for k in ('optim_g', 'optim_d')[:len(self.optimizers)])
        if point is None:
            return f'no intact checkpoint has been saved; start again with {lower}'
        files = {key: os.path.join(self.opt['path']['models'], f'net_{key[len("network_"):]}_{point.iteration}.pth')
                 for key in self.opt if key.startswith('network_')}  # as basicsr's check_resume names them
        networks = ', '.join(f'path.pretrain_{key}: {path}' for key, path in files.items())
        return (f'the newest intact checkpoint is iteration {point.iteration} ({point.path}); start from its networks '
                f'({networks}, path.param_key_g: params) with {lower} (a resumed training state keeps the '
                'learning rate it saved)')

    def autocast(self):
        """The training forwards' autocast (a no-op in fp32)."""
        return precision.autocast(self.precision, self.device.type)

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

    # ------------------------------------------------------------ validation
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

    def nondist_validation(self, dataloader, current_iter, tb_logger, save_img: bool) -> None:
        """Metrics per image and their mean in the log, each with its better direction; SR images written
        atomically. When testing, a progress bar, ``index.html`` (results_page) and a table of the means."""
        dataset_name = dataloader.dataset.opt['name']
        metric_opts = self.opt['val'].get('metrics') or {}
        better_by_name = metrics.directions(metric_opts)
        logger = get_root_logger()
        if metric_opts:
            self._initialize_best_metric_results(dataset_name)
        testing = not self.opt['is_train']
        tested = results_page.DatasetResult(dataset_name, int(self.opt['scale']), better_by_name)
        bar = tqdm(total=len(dataloader), unit='image', desc=dataset_name,
                   disable=not self.opt['val'].get('pbar', testing))
        with logging_redirect_tqdm(loggers=[logger]), bar:  # log lines print above the bar
            for result in evaluation.evaluate_pairs(self.upscale_for_evaluation, dataloader, metric_opts):
                sr_path = self._sr_image_path(dataset_name, result.name, current_iter) if save_img else None
                if sr_path:
                    fileio.save_image(result.sr, sr_path)
                if result.values:
                    logger.info(f'{dataset_name} {result.name}: {metrics.describe(result.values, better_by_name)}')
                tested.images.append(results_page.image_result(result.name, result.item, sr_path, result.values))
                bar.update(1)
        if metric_opts and tested.images:
            self.metric_results = tested.means()
            for name, value in self.metric_results.items():
                self._update_best_metric_result(dataset_name, name, value, current_iter)
            self._log_validation_metric_values(current_iter, dataset_name, tb_logger)
        if testing:
            self._report_test_results(tested, save_img)

    def _report_test_results(self, tested: results_page.DatasetResult, save_img: bool) -> None:
        """After a test set: rewrite index.html with every set tested so far, and log the table of their means."""
        self.tested_sets = [t for t in getattr(self, 'tested_sets', []) if t.name != tested.name] + [tested]
        logger = get_root_logger()
        if save_img and tested.images:
            index = results_page.write(self.opt['path']['results_root'], self.tested_sets)
            logger.info(f'Results page: {index}')
        else:
            logger.info('No results page: val.save_img is off, so there are no SR images to show.')
        better_by_name = {}
        for t in self.tested_sets:
            better_by_name.update(t.better)
        if better_by_name:
            rows = [(t.name, t.means()) for t in self.tested_sets]
            logger.info('Mean of each metric:\n' + metrics.summary_table(rows, better_by_name))

    def _initialize_best_metric_results(self, dataset_name: str) -> None:
        """basicsr's, with each metric's own direction (NIQE and LPIPS: lower) unless ``better`` overrides it."""
        if dataset_name in getattr(self, 'best_metric_results', {}):
            return
        self.best_metric_results = getattr(self, 'best_metric_results', {})
        directions = metrics.directions(self.opt['val'].get('metrics') or {})
        self.best_metric_results[dataset_name] = {
            name: dict(better=way, val=float('-inf') if way == 'higher' else float('inf'), iter=-1)
            for name, way in directions.items()}

    def _log_validation_metric_values(self, current_iter, dataset_name: str, tb_logger) -> None:
        """basicsr's mean block ('# psnr: 24.1234 ... Best: ... @ iter'), with the better direction of each."""
        lines = [f'Validation {dataset_name}']
        for name, value in self.metric_results.items():
            best = self.best_metric_results[dataset_name][name]
            lines.append(f'\t # {name}: {value:.4f} ({best["better"]} is better)\tBest: {best["val"]:.4f} @ '
                         f'{best["iter"]} iter')
        get_root_logger().info('\n'.join(lines) + '\n')
        if tb_logger:
            for name, value in self.metric_results.items():
                tb_logger.add_scalar(f'metrics/{dataset_name}/{name}', value, current_iter)

    def _sr_image_path(self, dataset_name: str, img_name: str, current_iter) -> str:
        vis = self.opt['path']['visualization']
        if self.opt['is_train']:
            return os.path.join(vis, img_name, f'{img_name}_{current_iter}.png')
        suffix = self.opt['val'].get('suffix') or self.opt['name']
        return os.path.join(vis, dataset_name, f'{img_name}_{suffix}.png')
