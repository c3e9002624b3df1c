"""Which training state to resume from, and the random-number states a training state carries.

A training state ``training_states/<iter>.state`` is only usable together with the networks saved for the same
iteration (``models/net_<x>_<iter>.pth``). Saves are atomic, but a disk can still corrupt or truncate a file, so
``--auto_resume`` takes the newest iteration whose state *and* networks load, and says which files it passed
over.

Under DDP the ranks must resume from the same state, or they run different numbers of iterations and the first
collective one of them skips waits for ever. Each rank looks at its own file system, which need not show what
rank 0's shows (node-local folders, a missing mount, a file system that shows a new file late), so rank 0 alone
chooses, and every other rank checks that it sees the same files, byte for byte (``agreed_resume_point``).
"""
from __future__ import annotations

import hashlib
import os
import random
import socket
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch

from esrgan_plugin.errors import UserFacingError
from esrgan_plugin.training.distributed import collective, rank_and_host


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
        path = state_path(opt, iteration)
        state, damaged = _checked(opt, path, iteration)
        if state is not None:
            return ResumePoint(path, state, passed_over)
        passed_over += damaged
    if passed_over:
        raise UserFacingError(f'--auto_resume found no intact training state in {state_dir}: '
                              f'{"; ".join(passed_over)}; run without --auto_resume to start over '
                              '(the experiment folder is then archived)')
    return None


def state_path(opt: dict, iteration: int) -> str:
    """Where this rank finds the training state of ``iteration``: ``path.resume_state``, or with
    ``--auto_resume`` the experiment's own ``training_states/<iteration>.state``."""
    if not opt.get('auto_resume'):
        return opt['path']['resume_state']
    return os.path.join(opt['path']['experiments_root'], 'training_states', f'{iteration}.state')


def _digest(path: str) -> str:
    with open(path, 'rb') as f:
        return hashlib.file_digest(f, 'sha256').hexdigest()


def _choice(opt: dict) -> dict:
    """Rank 0's choice, as the other ranks receive it: the iteration (None: start afresh) and a digest of every
    file resuming reads, or the error that stops every rank."""
    try:
        point = find_resume_point(opt)
    except UserFacingError as err:
        return {'error': str(err)}
    if point is None:
        return {'iteration': None}
    files = [point.path] + network_files(opt, point.iteration)
    return {'iteration': point.iteration, 'digests': [_digest(p) for p in files], 'files': files,
            'host': socket.gethostname(), 'experiments_root': opt['path']['experiments_root'], 'point': point}


def _difference(opt: dict, choice: dict) -> Optional[str]:
    """Why this rank cannot resume from rank 0's choice (one line), or None when it sees the same files."""
    iteration = choice['iteration']
    mine = [state_path(opt, iteration)] + network_files(opt, iteration)
    for path, theirs, digest in zip(mine, choice['files'], choice['digests']):
        if not os.path.isfile(path):
            problem = f'{path} is missing'
        elif _digest(path) != digest:
            problem = f'{path} differs from rank 0\'s {theirs}'
        else:
            continue
        here = f'{socket.gethostname()}:{opt["path"]["experiments_root"]}'
        return (f'{rank_and_host(opt)} cannot resume from the training state rank 0 on {choice["host"]} chose '
                f'(iteration {iteration}): {problem}; experiments/ must be on a file system every machine of the '
                f'job sees, or copy {choice["host"]}:{choice["experiments_root"]} to {here} before starting '
                '(docs/training.md#several-machines)')
    return None


def agreed_resume_point(opt: dict) -> Optional[ResumePoint]:
    """``find_resume_point`` on rank 0, the same state on every rank, or a UserFacingError on every rank.

    Rank 0 sends the iteration it chose with a SHA-256 of the state and of each network file; every other rank
    loads its own copy only if the digests match. Two collectives (a broadcast, an all-gather), before anything
    is written, so a rank that cannot follow stops every rank at once, each with the same line naming it.
    """
    if not opt['dist']:
        return find_resume_point(opt)
    mine = _choice(opt) if opt['rank'] == 0 else {}
    sent = [{key: value for key, value in mine.items() if key != 'point'}]  # the state itself stays on rank 0
    with collective(opt, 'agreeing on the training state to resume from'):
        torch.distributed.broadcast_object_list(sent, src=0)
    choice = sent[0]
    if 'error' in choice:
        raise UserFacingError(choice['error'])
    problem = None if opt['rank'] == 0 or choice['iteration'] is None else _difference(opt, choice)
    problems = [None] * opt['world_size']
    with collective(opt, 'agreeing on the training state to resume from'):
        torch.distributed.all_gather_object(problems, problem)
    problems = [p for p in problems if p]
    if problems:
        more = f' (and {len(problems) - 1} more ranks)' if len(problems) > 1 else ''
        raise UserFacingError(problems[0] + more)
    if choice['iteration'] is None:
        return None
    if opt['rank'] == 0:
        return mine['point']
    path = state_path(opt, choice['iteration'])
    return ResumePoint(path, torch.load(path, map_location='cpu', weights_only=True))


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
    with collective(opt, 'gathering every rank\'s random-number states for the checkpoint'):
        torch.distributed.all_gather_object(states, rng_state())
    return states
