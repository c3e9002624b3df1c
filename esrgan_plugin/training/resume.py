"""Which training state to resume from, and the random-number states a training state carries.

A training state ``training_states/<iter>.state`` is only usable together with the networks saved for the same
iteration (``models/net_<x>_<iter>.pth``). Saves are atomic, but a disk can still corrupt or truncate a file, so
``--auto_resume`` takes the newest iteration whose state *and* networks load, and says which files it passed
over.
"""
from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch

from esrgan_plugin.errors import UserFacingError


@dataclass
class ResumePoint:
    path: str                  # the training state to resume from
    state: dict                # its contents
    damaged: list = field(default_factory=list)  # newer files that could not be read, "path (reason)"

    @property
    def iteration(self) -> int:
        return int(self.state['iter'])


def network_files(opt: dict, iteration: int) -> list[str]:
    """The network files basicsr's ``check_resume`` loads on resume from ``iteration``."""
    ignored = opt['path'].get('ignore_resume_networks') or []
    return [os.path.join(opt['path']['models'], f'net_{key[len("network_"):]}_{iteration}.pth')
            for key in opt if key.startswith('network_') and key not in ignored]


def _reason(err: Exception) -> str:
    """The first sentence of an error, enough to tell truncation from a wrong file."""
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return text.split('. ')[0][:160]


def _problem(path: str) -> Optional[str]:
    """Why ``path`` cannot be loaded, or None when it loads."""
    if not os.path.isfile(path):
        return 'missing'
    try:
        torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # noqa: BLE001  any failure means unusable; the message names it
        return _reason(err)
    return None


def _checked(opt: dict, state_path: str, iteration: int) -> tuple[Optional[dict], list[str]]:
    """(state, []) when the state and its networks load; (None, ["path (reason)", ...]) otherwise."""
    damaged = [f'{p} ({why})' for p in network_files(opt, iteration) if (why := _problem(p))]
    try:
        state = torch.load(state_path, map_location='cpu', weights_only=True)
    except Exception as err:  # noqa: BLE001
        return None, [f'{state_path} ({_reason(err)})'] + damaged
    return (None if damaged else state), damaged


def find_resume_point(opt: dict) -> Optional[ResumePoint]:
    """The training state to resume from: ``path.resume_state``, or with ``--auto_resume`` the newest intact one.

    Returns None when there is nothing to resume. Raises a UserFacingError when the state asked for, or every
    state found, is damaged.
    """
    if not opt.get('auto_resume'):
        path = opt['path'].get('resume_state')
        if not path:
            return None
        stem = os.path.splitext(os.path.basename(path))[0]
        state, damaged = _checked(opt, path, int(stem) if stem.isdigit() else -1)
        if state is None:
            raise UserFacingError(f'path.resume_state cannot be used: {"; ".join(damaged)}; '
                                  'point it at an intact training state')
        return ResumePoint(path, state)

    state_dir = os.path.join(opt['path']['experiments_root'], 'training_states')
    names = os.listdir(state_dir) if os.path.isdir(state_dir) else []
    iterations = sorted((int(n[:-len('.state')]) for n in names if n.endswith('.state') and n[:-6].isdigit()),
                        reverse=True)
    passed_over = []
    for iteration in iterations:
        path = os.path.join(state_dir, f'{iteration}.state')
        state, damaged = _checked(opt, path, iteration)
        if state is not None:
            return ResumePoint(path, state, passed_over)
        passed_over += damaged
    if passed_over:
        raise UserFacingError(f'--auto_resume found no intact training state in {state_dir}: '
                              f'{"; ".join(passed_over)}; run without --auto_resume to start over '
                              '(the experiment folder is then archived)')
    return None


# ---------------------------------------------------------------- random-number states

def rng_state() -> dict:
    """This process's Python, NumPy, torch and CUDA generator states, in types ``weights_only`` loading accepts."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {'python': random.getstate(), 'numpy': (kind, keys.tolist(), pos, has_gauss, cached),
             'torch': torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state['python'])
    np.random.set_state(state['numpy'])
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available() and len(state['cuda']) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state['cuda'])


def gather_rng_states(opt: dict) -> list[dict]:
    """Every rank's generator states, indexed by rank (a collective call under DDP)."""
    if not opt['dist']:
        return [rng_state()]
    states = [None] * opt['world_size']
    torch.distributed.all_gather_object(states, rng_state())
    return states
