"""The non-finite-loss policy (docs/training.md#non-finite-losses).

A step with a NaN or infinite loss term skips the update of that term's network, with a warning naming the
term, its network, the iteration and the learning rates; ``train.max_nonfinite_steps`` such steps in a row stop
training with ``TrainingDiverged``, which names the terms and the newest intact checkpoint to start again from.
Every process skips the same steps: under DDP the processes agree which terms were not finite.
"""
from __future__ import annotations

import math
import os

import torch
import torch.distributed as dist
from basicsr.utils import get_root_logger

from esrgan_plugin.errors import UserFacingError
from esrgan_plugin.training import distributed, resume


class TrainingDiverged(UserFacingError):
    """Too many consecutive non-finite losses."""


def nonfinite_terms(terms: dict, opt: dict) -> list[str]:
    """The names of the loss terms that are NaN or infinite, on this process or (under DDP) any other."""
    if not terms:
        return []
    flags = torch.stack([~torch.isfinite(value) for value in terms.values()]).float()
    if opt['dist']:
        with distributed.collective(opt, 'agreeing which loss terms were not finite'):
            dist.all_reduce(flags, op=dist.ReduceOp.MAX)
    return [name for name, flag in zip(terms, flags.tolist()) if flag]


class NonFiniteSteps:
    """The count of steps in a row with a non-finite loss, and the terms that were not finite in them.

    ``in_a_row`` is part of a training state (a resumed run continues the count); the terms are for the
    message only.
    """

    def __init__(self, opt: dict) -> None:
        self.opt = opt
        self.max_in_a_row = int(opt.get('train', {}).get('max_nonfinite_steps', 10)) if opt['is_train'] else 0
        self.in_a_row = 0
        self.terms_seen: list[str] = []

    def record(self, current_iter: int, nonfinite: dict, terms: dict, optimizers: dict) -> None:
        """After a step: warn when a loss term was not finite, naming each term, its network, the iteration and
        the learning rates; after ``train.max_nonfinite_steps`` such steps in a row, raise TrainingDiverged.

        ``nonfinite``: network name -> its non-finite terms (the updates of those networks were skipped);
        ``terms``: every loss term's value; ``optimizers``: network name -> its optimizer.
        """
        bad = {net: names for net, names in nonfinite.items() if names}
        if not bad:
            self.in_a_row, self.terms_seen = 0, []
            return
        self.in_a_row += 1

        def value(name: str) -> str:  # under DDP the term may be finite here and not on another process
            v = terms[name].item()
            return f'{v}' if not math.isfinite(v) else 'non-finite on another process'

        named = '; '.join(f'{net}: ' + ', '.join(f'{n} = {value(n)}' for n in names) for net, names in bad.items())
        rates = ', '.join(f'{net} {o.param_groups[0]["lr"]:.3g}' for net, o in optimizers.items())
        get_root_logger().warning(
            f'iter {current_iter}: non-finite loss ({named}); the update of the {" and the ".join(bad)} is skipped '
            f'(steps with a non-finite loss in a row: {self.in_a_row} of at most {self.max_in_a_row}; '
            f'learning rates: {rates}).')
        self.terms_seen += [n for names in bad.values() for n in names if n not in self.terms_seen]
        if self.in_a_row >= self.max_in_a_row:
            raise TrainingDiverged(
                f'training diverged: {self.in_a_row} steps in a row up to iteration {current_iter} had '
                f'a non-finite loss ({", ".join(self.terms_seen)}); {restart_advice(self.opt, len(optimizers))}, '
                'or raise train.max_nonfinite_steps.')


def restart_advice(opt: dict, optimizer_count: int) -> str:
    """Where to start again: the newest intact checkpoint (``training.resume``), with a lower learning rate."""
    try:
        paths = opt['path']  # a model built from Python may lack experiments_root; its parent of states
        root = paths.get('experiments_root') or os.path.dirname(paths['training_states'])
        point = resume.find_resume_point({**opt, 'auto_resume': True, 'path': {**paths, 'experiments_root': root}})
    except UserFacingError:  # every saved state is damaged
        point = None
    lower = 'a lower ' + ' and '.join(f'train.{k}.lr' for k in ('optim_g', 'optim_d')[:optimizer_count])
    if point is None:
        return f'no intact checkpoint has been saved; start again with {lower}'
    files = {key: os.path.join(opt['path']['models'], f'net_{key[len("network_"):]}_{point.iteration}.pth')
             for key in opt if key.startswith('network_')}  # as basicsr's check_resume names them
    networks = ', '.join(f'path.pretrain_{key}: {path}' for key, path in files.items())
    return (f'the newest intact checkpoint is iteration {point.iteration} ({point.path}); start from its networks '
            f'({networks}, path.param_key_g: params) with {lower} (a resumed training state keeps the '
            'learning rate it saved)')
