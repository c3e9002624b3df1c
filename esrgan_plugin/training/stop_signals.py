"""Stops that save: SIGINT (Ctrl-C) and SIGTERM (slurm preemption, a spot instance going away).

The first signal only sets a flag; training finishes the current step, saves a checkpoint and its state and
exits non-zero. A second signal ends the process at once, as if there were no handler. Under DDP the ranks may
receive the signal at different steps (or only some of them receive it), so they agree after every step with
one all-reduce of a single number, and all stop at the same iteration.
"""
from __future__ import annotations

import os
import signal
from types import FrameType
from typing import Optional

import torch

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """Context manager that installs the handlers and restores the previous ones on exit."""

    def __init__(self) -> None:
        self.received: Optional[int] = None
        self._previous: dict = {}

    def __enter__(self) -> 'StopSignals':
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: Optional[FrameType]) -> None:
        if self.received is None:
            self.received = signum
            return
        os.write(2, f'second {signal.Signals(signum).name}: exiting without saving\n'.encode())
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    def agreed_stop(self, dist: bool, device: torch.device) -> Optional[int]:
        """The signal to stop for, if any rank received one (a collective call under DDP)."""
        if not dist:
            return self.received
        flag = torch.tensor([self.received or 0], dtype=torch.int64, device=device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        return int(flag.item()) or None
