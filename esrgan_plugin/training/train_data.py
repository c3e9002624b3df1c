"""The DataLoaders of a training run: resumable in the middle of an epoch, the same whatever the number of
workers, and with workers that leave Ctrl-C and SIGTERM to the training process.

basicsr seeds each DataLoader worker once, from (seed, rank, worker id), so the crop and flips a sample gets
depend on which worker drew it and on how many samples that worker drew before. A run resumed in the middle of
an epoch (or run with another ``num_worker_per_gpu``) then sees different augmentations. Here every sample is
drawn with Python's, NumPy's and torch's generators seeded from (manual_seed, epoch, rank, position in the
epoch) alone, and the sampler can start an epoch at any position. The shuffled order itself is basicsr's
(``EnlargedSampler``: a permutation seeded by the epoch, split between ranks).

Validation and test loaders (``build_evaluation_loader``) are basicsr's (one image at a time, in order), with
``num_worker_per_gpu`` workers that get the same signal handling as the training loader's.
"""
from __future__ import annotations

import contextlib
import multiprocessing
import os
import random
import signal
from typing import Any, Iterator

import numpy as np
import torch
from basicsr.data.data_sampler import EnlargedSampler
from basicsr.data.prefetch_dataloader import PrefetchDataLoader
from torch.utils.data import DataLoader, Dataset, Sampler, get_worker_info

from esrgan_plugin.training.stop_signals import STOP_SIGNALS


def sample_seed(seed: int, epoch: int, rank: int, position: int) -> int:
    """A 63-bit seed for one sample, a pure function of where it is in the training run."""
    return int(np.random.SeedSequence([seed, epoch, rank, position]).generate_state(1, np.uint64)[0] >> 1)


@contextlib.contextmanager
def _seeded(seed: int, restore: bool) -> Iterator[None]:
    """Seed Python's, NumPy's and torch's CPU generators; with ``restore``, put their old states back after."""
    saved = (random.getstate(), np.random.get_state(), torch.get_rng_state()) if restore else None
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.default_generator.manual_seed(seed)
    try:
        yield
    finally:
        if saved:
            random.setstate(saved[0])
            np.random.set_state(saved[1])
            torch.set_rng_state(saved[2])


class SeededSamples(Dataset):
    """``dataset[(index, seed)]`` is ``dataset[index]`` drawn with every generator seeded by ``seed``."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> Any:
        index, seed = key
        # In the training process itself (no workers) the global generators belong to the training step too:
        # leave them as they were.
        with _seeded(seed, restore=get_worker_info() is None):
            return self.dataset[index]


class ResumableSampler(Sampler):
    """basicsr's epoch order, handed out as (index, sample seed) from any position of the epoch."""

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int, ratio: int, seed: int) -> None:
        self.order = EnlargedSampler(dataset, num_replicas, rank, ratio)
        self.rank = rank
        self.seed = seed
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Iterate ``epoch``'s order from its ``start``-th sample on (the samples before it were trained on)."""
        self.order.set_epoch(epoch)
        self.epoch = epoch
        self.start = start

    def __iter__(self) -> Iterator[tuple[int, int]]:
        indices = list(self.order)[self.start:]
        for position, index in enumerate(indices, self.start):
            yield index, sample_seed(self.seed, self.epoch, self.rank, position)

    def __len__(self) -> int:
        return max(len(self.order) - self.start, 0)


@contextlib.contextmanager
def stop_signals_held() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM back (in this thread) while DataLoader workers are started.

    A worker gets ``WorkerSignals``' handlers only in ``worker_init_fn``; before that, torch's own SIGTERM
    handler ends it. A signal sent to the whole process group (slurm, a terminal) in those milliseconds made
    training fail on a lost worker instead of saving. Workers inherit the held signals and release them once
    their handlers are in place; this process gets what was held when the block ends.
    """
    if not hasattr(signal, 'pthread_sigmask'):  # Windows: no signal masks (and no process groups to signal)
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class WorkerSignals:
    """``worker_init_fn`` that leaves Ctrl-C and SIGTERM to the training process while training runs.

    A signal sent to the whole process group (a terminal's Ctrl-C, slurm) would otherwise kill the workers first,
    and the training process would fail on the lost worker instead of finishing its step and saving. Once
    ``release()`` is called (training has ended, for whatever reason), SIGTERM ends a worker again: that is how
    Python's exit and the DataLoader's shutdown stop workers that do not answer.
    """

    def __init__(self) -> None:
        self.training = multiprocessing.RawValue('b', 1)  # shared with the forked workers

    def __call__(self, worker_id: int) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, self._on_sigterm)
        if hasattr(signal, 'pthread_sigmask'):
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # held since the fork (stop_signals_held)

    def _on_sigterm(self, signum: int, frame) -> None:
        if not self.training.value:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    def release(self) -> None:
        self.training.value = 0


def build_train_loader(dataset: Dataset, dataset_opt: dict, opt: dict,
                       worker_signals: WorkerSignals) -> tuple[DataLoader, ResumableSampler]:
    """The training DataLoader and its sampler, with basicsr's batch-size and worker rules and options.

    Without DDP, ``num_gpu`` > 1 means DataParallel: one process loads for all GPUs, so batch size and
    workers are multiplied (as basicsr does).
    """
    per_process = 1 if opt['dist'] else max(int(opt['num_gpu']), 1)
    sampler = ResumableSampler(dataset, opt['world_size'], opt['rank'], dataset_opt.get('dataset_enlarge_ratio', 1),
                               int(opt['manual_seed']))
    args = dict(dataset=SeededSamples(dataset), batch_size=dataset_opt['batch_size_per_gpu'] * per_process,
                sampler=sampler, num_workers=dataset_opt['num_worker_per_gpu'] * per_process, drop_last=True,
                pin_memory=dataset_opt.get('pin_memory', False), worker_init_fn=worker_signals,
                # its own generator, so creating an iterator does not draw from the global torch generator
                generator=torch.Generator().manual_seed(int(opt['manual_seed'])))
    if args['num_workers'] > 0:
        args['persistent_workers'] = dataset_opt.get('persistent_workers', False)
    if dataset_opt.get('prefetch_mode') == 'cpu':
        return PrefetchDataLoader(num_prefetch_queue=dataset_opt.get('num_prefetch_queue', 1), **args), sampler
    return DataLoader(**args), sampler


class _WorkersStartHeld:
    """A DataLoader whose iterators start their workers with the stop signals held (``stop_signals_held``):
    validation makes a new iterator, and so new workers, every time it runs."""

    def __iter__(self):
        with stop_signals_held():
            return super().__iter__()


class EvaluationLoader(_WorkersStartHeld, DataLoader):
    pass


class PrefetchEvaluationLoader(_WorkersStartHeld, PrefetchDataLoader):
    pass


def build_evaluation_loader(dataset: Dataset, dataset_opt: dict, worker_signals: WorkerSignals) -> DataLoader:
    """A validation or test DataLoader: basicsr's (batches of one image, in order, ``pin_memory``,
    ``prefetch_mode: cpu``), with ``num_worker_per_gpu`` workers (basicsr uses none there) that leave Ctrl-C and
    SIGTERM to the training process, so a signal to the whole process group during validation still ends in a
    saved checkpoint."""
    args = dict(dataset=dataset, batch_size=1, shuffle=False, num_workers=dataset_opt.get('num_worker_per_gpu') or 0,
                pin_memory=dataset_opt.get('pin_memory', False), worker_init_fn=worker_signals)
    if args['num_workers'] > 0:
        args['persistent_workers'] = dataset_opt.get('persistent_workers', False)
    if dataset_opt.get('prefetch_mode') == 'cpu':
        return PrefetchEvaluationLoader(num_prefetch_queue=dataset_opt.get('num_prefetch_queue', 1), **args)
    return EvaluationLoader(**args)
