"""One training run per experiment folder.

A run holds an exclusive ``flock`` on ``experiments/<name>.lock`` from before it touches ``experiments/<name>/``
(which a new run would archive) until it ends. The kernel drops the lock when the process dies, however it
dies, so a lock file left by a killed run is free and the next run takes it over. The file records the holder's
PID and host so that a refused run can say who holds it. It sits beside the folder, not inside it, because a
new run renames the old folder away.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from typing import Optional

from esrgan_plugin.errors import UserFacingError


class ExperimentInUse(UserFacingError):
    """Another process holds the experiment's lock."""


def lock_path(experiments_root: str) -> str:
    return os.path.normpath(experiments_root) + '.lock'


class ExperimentLock:
    def __init__(self, experiments_root: str) -> None:
        self.path = lock_path(experiments_root)
        self.fd: Optional[int] = None

    def acquire(self) -> Optional[str]:
        """Take the lock, or raise ExperimentInUse naming the holder. Returns a warning when it took over a lock
        file left by a process that no longer holds it."""
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read(fd) or 'an unknown process'
                os.close(fd)
                name = os.path.basename(self.path)[:-len('.lock')]
                raise ExperimentInUse(f'experiment {name!r} is being trained by {holder} (lock {self.path}); '
                                      'wait for that run to end or stop it, or give this run another name') from None
            try:
                same_file = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same_file = False
            if same_file:
                break
            os.close(fd)  # the holder removed the file between our open and our lock: lock the new one
        previous = _read(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f'PID {os.getpid()} on host {socket.gethostname()}\n'.encode(), 0)
        self.fd = fd
        if previous:
            return (f'took over the lock {self.path} left by {previous}, which no longer holds it '
                    '(the process ended without releasing it)')
        return None

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(FileNotFoundError):  # removed by hand meanwhile
            os.unlink(self.path)  # while still locked, so no other process can lock the old file meanwhile
        os.close(self.fd)
        self.fd = None


def _read(fd: int) -> str:
    return os.pread(fd, 200, 0).decode(errors='replace').strip()
