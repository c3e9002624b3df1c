"""Optimizers and learning-rate schedulers from option dicts (``train.optim_g``, ``train.optim_d``,
``train.scheduler``).

The accepted names are ``choices.OPTIMIZERS`` and ``choices.SCHEDULERS``; the tables below map each to its
class, and the option schema reads the same tables for the keywords each class takes.
"""
from __future__ import annotations

import torch
from basicsr.models import lr_scheduler

from esrgan_plugin.choices import OPTIMIZERS, SCHEDULERS
from esrgan_plugin.errors import UserFacingError

OPTIMIZER_CLASSES = {name: getattr(torch.optim, name) for name in OPTIMIZERS}
# basicsr's MultiStepLR in its option files is its MultiStepRestartLR without restarts.
SCHEDULER_CLASSES = {name: {'MultiStepLR': lr_scheduler.MultiStepRestartLR,
                            'MultiStepRestartLR': lr_scheduler.MultiStepRestartLR,
                            'CosineAnnealingRestartLR': lr_scheduler.CosineAnnealingRestartLR}[name]
                     for name in SCHEDULERS}


def build_optimizer(optim_opt: dict, params, device_type: str = 'cpu') -> torch.optim.Optimizer:
    """An optimizer from an option dict such as ``{type: Adam, lr: 2e-4, betas: [0.9, 0.99]}``.

    On CUDA the fused Adam kernel (one launch for all parameters) is used unless the options say
    ``fused`` or ``foreach`` themselves.
    """
    kwargs = {k: v for k, v in optim_opt.items() if k != 'type'}
    optim_type = optim_opt.get('type')
    if optim_type not in OPTIMIZER_CLASSES:
        raise UserFacingError(f'Optimizer type {optim_type!r} is not supported; use one of {", ".join(OPTIMIZERS)}.')
    if 'betas' in kwargs:
        kwargs['betas'] = tuple(kwargs['betas'])
    if device_type == 'cuda' and 'fused' not in kwargs and 'foreach' not in kwargs:
        kwargs['fused'] = True
    return OPTIMIZER_CLASSES[optim_type](params, **kwargs)


def build_scheduler(sched_opt: dict, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
    """A basicsr scheduler from an option dict such as ``{type: MultiStepLR, milestones: [...], gamma: 0.5}``."""
    kwargs = {k: v for k, v in sched_opt.items() if k != 'type'}
    sched_type = sched_opt.get('type')
    if sched_type not in SCHEDULER_CLASSES:
        raise UserFacingError(f'Scheduler type {sched_type!r} is not supported; use one of {", ".join(SCHEDULERS)}.')
    return SCHEDULER_CLASSES[sched_type](optimizer, **kwargs)
