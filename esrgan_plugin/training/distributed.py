"""How long a rank of a distributed run waits for the others, and the one line it says when that runs out.

Under torchrun or slurm every GPU of the job is billed while any rank waits, so no wait is unbounded: the process
group starts with ``dist_params.timeout`` (``process_group_timeout``), which torch applies to the start-up and to
every collective, the plugin's and DDP's. Set once there, it costs nothing per step. A collective that fails (the
time ran out, or another rank went away and closed its connections) raises a bare RuntimeError from deep inside
gloo or NCCL; ``collective`` turns it into one line on every rank that says which rank, on which host, waited for
what, and where to look.
"""
from __future__ import annotations

import contextlib
import datetime
import socket
from typing import Iterator

from esrgan_plugin.choices import DIST_TIMEOUT_S
from esrgan_plugin.errors import UserFacingError


class RanksApart(UserFacingError):
    """A collective did not complete: another rank stopped, or did not answer within the timeout."""


def timeout_seconds(opt: dict) -> int:
    """``dist_params.timeout``, or its default (``choices.DIST_TIMEOUT_S``)."""
    return int((opt.get('dist_params') or {}).get('timeout', DIST_TIMEOUT_S))


def process_group_timeout(opt: dict) -> datetime.timedelta:
    """The ``timeout`` ``torch.distributed.init_process_group`` takes."""
    return datetime.timedelta(seconds=timeout_seconds(opt))


def rank_and_host(opt: dict) -> str:
    return f'rank {opt["rank"]} on {socket.gethostname()}'


@contextlib.contextmanager
def collective(opt: dict, what: str) -> Iterator[None]:
    """Wrap one collective call (``what``: what the ranks were doing) so that its failure is one line.

    Only the collective itself belongs in the block: any RuntimeError raised in it is taken for gloo's or NCCL's
    report of a timeout or a lost peer (torch raises no narrower type for them).
    """
    try:
        yield
    except RuntimeError as err:
        if not opt.get('dist'):
            raise
        detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise RanksApart(f'{rank_and_host(opt)}: {what} failed: another rank stopped, or did not answer within '
                         f'dist_params.timeout ({timeout_seconds(opt)} s) ({detail[:200]}); the first error in the '
                         'other ranks\' output says why (docs/training.md#several-machines)') from err
