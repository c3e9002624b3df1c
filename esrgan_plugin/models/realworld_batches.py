"""Training pairs made from GT crops while training: Real-ESRGAN's degradations and its training-pair pool.

When the train dataset says ``degradation: realworld`` it yields GT crops and the blur kernels drawn for them
(``data.realworld_dataset``); the model's ``feed_data`` hands such a batch here, and the LR is made on the
model's device, as one batched operation (``data.realworld_degradation.degrade_batch``).

Every draw of a batch (noise, resize, JPEG quality, the crop, the pool's shuffle) is made with the generators
seeded from (``manual_seed``, iteration, rank) alone (``seeded``), so a batch does not depend on what ran before
it: a run stopped and continued with ``--auto_resume`` makes the same LR without saving any generator state, and
every rank of a DDP run draws differently. The pool is state: its content decides the batches that follow, so it
is saved with the training state (every rank's, gathered on rank 0) and put back on resume.

The pool (``queue_size`` pairs, Real-ESRGAN's ``_dequeue_and_enqueue``): once full, each batch goes into the pool
and a batch drawn at random from it is trained on instead, so a batch mixes crops of several iterations and
images. It holds ``queue_size`` GT crops and their LR in float32: 180 crops of 256x256 at scale 4 take 150 MB of
the training device's memory, twice that while a batch is exchanged (the shuffle copies it); a copy of every
rank's is on rank 0's CPU while a checkpoint is saved (docs/training.md#resume-and-several-processes).
"""
from __future__ import annotations

import os
from typing import Optional

import numpy as np
import torch

from esrgan_plugin.choices import REALWORLD_QUEUE_SIZE
from esrgan_plugin.data.realworld_degradation import RealWorldSettings, degrade_batch, seeded
from esrgan_plugin.training import distributed

# What the realworld train dataset yields besides the GT: the kernels drawn for each sample (and the kinds of the
# first two, which only label the preview).
KERNEL_KEYS = ('kernel1', 'kernel2', 'sinc_kernel', 'kernel1_type', 'kernel2_type')
# Keeps a batch's seeds apart from the per-sample seeds of the data order (training.train_data.sample_seed).
_BATCH_STREAM = 0x5245414C


def batch_seed(seed: int, iteration: int, rank: int) -> int:
    """The seed of every draw made for the batch of ``iteration`` on ``rank``: a pure function of the three."""
    return int(np.random.SeedSequence([seed, iteration, rank, _BATCH_STREAM]).generate_state(1, np.uint64)[0] >> 1)


def makes_realworld_pairs(dataset_opt: dict) -> bool:
    """Whether a dataset section yields GT crops for Real-ESRGAN's degradations: a GTOnlyDataset whose
    ``degradation`` is realworld (its default)."""
    return dataset_opt.get('type') == 'GTOnlyDataset' and dataset_opt.get('degradation', 'realworld') == 'realworld'


def for_training(opt: dict, device: torch.device) -> Optional['RealWorldBatches']:
    """The model's maker of training pairs when this run makes its LR from the GT, else None (prepared or
    bicubic-on-the-fly LR: the batches are used as they come)."""
    train_set = (opt.get('datasets') or {}).get('train') or {}
    return RealWorldBatches(opt, device) if opt.get('is_train') and makes_realworld_pairs(train_set) else None


class TrainingPairPool:
    """Real-ESRGAN's training-pair pool: ``size`` (LR, GT) pairs; 0 turns it off.

    While it fills, batches pass through unchanged (and are kept); once full, each batch is exchanged for the
    first batch of the pool after a random permutation, drawn from torch's global CPU generator (seeded).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.lq: Optional[torch.Tensor] = None
        self.gt: Optional[torch.Tensor] = None
        self.filled = 0

    def exchange(self, lq: torch.Tensor, gt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.size == 0:
            return lq, gt
        b = lq.shape[0]
        if self.size % b:
            raise ValueError(f'the pool of {self.size} pairs does not hold a whole number of batches of {b}; '
                             'make queue_size a multiple of the batch (config.cross_field_rules checks it)')
        if self.lq is None:
            self.lq = lq.new_zeros((self.size, *lq.shape[1:]))
            self.gt = gt.new_zeros((self.size, *gt.shape[1:]))
        if self.filled < self.size:
            self.lq[self.filled:self.filled + b] = lq
            self.gt[self.filled:self.filled + b] = gt
            self.filled += b
            return lq, gt
        order = torch.randperm(self.size).to(self.lq.device)
        self.lq, self.gt = self.lq[order], self.gt[order]
        taken = self.lq[:b].clone(), self.gt[:b].clone()
        self.lq[:b], self.gt[:b] = lq, gt
        return taken

    def state_dict(self) -> dict:
        """CPU tensors (a training state is loaded on the CPU, with ``weights_only``)."""
        if self.lq is None:
            return {'filled': 0}
        return {'filled': self.filled, 'lq': self.lq.cpu(), 'gt': self.gt.cpu()}

    def load_state_dict(self, state: dict, device: torch.device) -> None:
        self.filled = int(state['filled'])
        self.lq = state['lq'].to(device) if 'lq' in state else None
        self.gt = state['gt'].to(device) if 'gt' in state else None


class RealWorldBatches:
    """The LR of each training batch, made from its GT on the model's device, and the pool they pass through."""

    def __init__(self, opt: dict, device: torch.device) -> None:
        self.opt = opt
        dataset_opt = opt['datasets']['train']
        self.settings = RealWorldSettings.from_options(dataset_opt)
        self.scale = int(opt['scale'])
        self.device = device
        self.seed = int(opt.get('manual_seed') or 0)
        self.rank = int(opt.get('rank', 0))
        self.pool = TrainingPairPool(int(dataset_opt.get('queue_size', REALWORLD_QUEUE_SIZE)))
        self.previews = int(opt['train'].get('degradation_preview', 0))
        self.iteration = 0  # of the batch made last; a resumed run starts from the state's iteration

    def pair(self, data: dict) -> dict:
        """``{'lq', 'gt'}`` of the next training batch, made from the GT crops and kernels of ``data``."""
        self.iteration += 1
        with torch.no_grad(), seeded(batch_seed(self.seed, self.iteration, self.rank), self.device):
            kernels = {key: data[key].to(self.device) for key in KERNEL_KEYS if key in data}
            batch = degrade_batch(data['gt'].to(self.device), kernels, self.settings, self.scale)
            if self.iteration <= self.previews and self.rank == 0:
                folder = os.path.join(self.opt['path']['experiments_root'], 'degradation_preview',
                                      f'iter_{self.iteration}')
                self._write_preview(batch, folder)
            lq, gt = self.pool.exchange(batch.lq.contiguous(), batch.gt.contiguous())
        return {'lq': lq, 'gt': gt}

    @staticmethod
    def _write_preview(batch, folder: str) -> None:
        """The files of the ``degrade`` command for this batch (before the pool: the draws are this batch's)."""
        from esrgan_plugin.data.degradation_preview import pairs_from_batch, write_preview
        write_preview(pairs_from_batch(batch), folder)

    # The pool in the training state: every rank's, so each rank continues with its own.
    def gathered_state(self) -> dict:
        """``{'realworld_pools': [rank 0's, rank 1's, ...]}`` (a collective call under DDP)."""
        mine = self.pool.state_dict()
        if not self.opt.get('dist'):
            return {'realworld_pools': [mine]}
        pools = [None] * int(self.opt['world_size']) if self.rank == 0 else None
        with distributed.collective(self.opt, 'gathering every rank\'s training-pair pool for the checkpoint'):
            torch.distributed.gather_object(mine, pools, dst=0)
        return {'realworld_pools': pools or []}

    def load_state(self, state: dict) -> None:
        """Continue from a training state: its iteration, and this rank's pool (empty when the state has none)."""
        self.iteration = int(state['iter'])
        pools = state.get('realworld_pools') or [{'filled': 0}]
        self.pool.load_state_dict(pools[self.rank % len(pools)], self.device)
