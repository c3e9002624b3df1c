import contextlib
import io
import logging
import os
import socket
import sys
from typing import NamedTuple, Optional

import numpy as np
import pytest
import torch

import esrgan_plugin

esrgan_plugin.register()  # basicsr adaptations and registration, as every command and user program does

# pytest-xdist (pytest.ini: -n auto) runs one worker per core; each worker's torch then takes its share of the cores,
# as two workers with a thread per core each would fight over them.
_WORKERS = int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '1'))
if _WORKERS > 1:
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // _WORKERS))

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(os.path.dirname(REPO_ROOT), 'shared', 'data')

TINY_ARCH = dict(num_feat=8, num_block=2, num_grow_ch=4)


def tiny_generator(scale: int = 4, seed: int = 0, **overrides) -> torch.nn.Module:
    from esrgan_plugin.archs.rrdbnet_arch import ESRGANRRDBNet
    torch.manual_seed(seed)
    return ESRGANRRDBNet(**{**TINY_ARCH, 'scale': scale, **overrides}).eval()


def net_output(net: torch.nn.Module, rgb8: np.ndarray) -> np.ndarray:
    """The net on an H x W x 3 8-bit RGB image, as 8-bit RGB levels: the reference the photo tests compare with."""
    with torch.no_grad():
        out = net(torch.from_numpy(rgb8.transpose(2, 0, 1) / 255.0).float().unsqueeze(0))
    return np.round(out[0].clamp(0, 1).numpy().transpose(1, 2, 0) * 255)


@contextlib.contextmanager
def basicsr_log_messages():
    """Collect the messages basicsr's logger writes (it does not propagate to pytest's caplog)."""
    lines = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    logger = logging.getLogger('basicsr')
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)  # basicsr sets it only where it first creates the logger
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


class CommandResult(NamedTuple):
    """What a command run in this process left: its exit code and its terminal output."""
    code: int
    out: str
    err: str


def fresh_basicsr_logger() -> None:
    """Forget basicsr's root logger, so the next run configures it anew.

    basicsr's ``get_root_logger`` configures the logger once per process (a stream handler on the stderr of that
    moment, the first run's log file) and returns it unchanged afterwards: a second run in the same process would
    write no log file of its own and print to a stream that pytest has since replaced."""
    from basicsr.utils import logger as basicsr_logger
    logger = logging.getLogger('basicsr')
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    basicsr_logger.initialized_logger.pop('basicsr', None)


def run_command(capsys, main, *argv) -> CommandResult:
    """``python -m esrgan_plugin.<command> *argv`` in this process: the command's ``main`` through ``run_main``, as
    its ``__main__`` runs it (one-line errors, exit codes), without the seconds a child interpreter spends
    importing torch. ``capsys`` is pytest's fixture; arguments are converted with ``str``."""
    from esrgan_plugin.cli import run_main
    capsys.readouterr()  # what earlier steps of the test printed is not this command's output
    fresh_basicsr_logger()
    try:
        with pytest.raises(SystemExit) as stop:
            run_main(main, [str(a) for a in argv])
    finally:
        fresh_basicsr_logger()
    output = capsys.readouterr()
    return CommandResult(exit_code(stop.value), output.out, output.err)


def exit_code(stop: SystemExit) -> int:
    """The status a process would exit with after ``SystemExit(stop.code)``."""
    code = stop.code
    return code if isinstance(code, int) else (0 if code is None else 1)


def run_command_in(folder, main, *argv, env: Optional[dict] = None) -> CommandResult:
    """``run_command`` where pytest's function-scoped fixtures are out of reach (a module-scoped fixture that runs
    a command once for several tests): run in ``folder`` with the variables of ``env`` set, the terminal output
    collected by redirecting ``sys.stdout`` and ``sys.stderr``; the working directory and the environment are
    restored afterwards."""
    from esrgan_plugin.cli import run_main
    out, err = io.StringIO(), io.StringIO()
    saved_env = {key: os.environ.get(key) for key in (env or {})}
    cwd = os.getcwd()
    fresh_basicsr_logger()
    try:
        os.chdir(folder)
        os.environ.update(env or {})
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), pytest.raises(SystemExit) as stop:
            run_main(main, [str(a) for a in argv])
    finally:
        fresh_basicsr_logger()
        os.chdir(cwd)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return CommandResult(exit_code(stop.value), out.getvalue(), err.getvalue())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def subprocess_env() -> dict:
    """Environment for child Pythons: the checkout first on the path, few threads."""
    env = dict(os.environ)
    env['PYTHONPATH'] = REPO_ROOT + os.pathsep + env.get('PYTHONPATH', '')
    env.setdefault('OMP_NUM_THREADS', '1')
    return env


@pytest.fixture
def shared_data():
    if not os.path.isdir(SHARED_DATA):
        pytest.skip('../shared/data is not present')
    return SHARED_DATA


PYTHON = sys.executable


@pytest.fixture
def small_disk(tmp_path):
    """A 256 KiB tmpfs mounted for the test, to fill for real; skipped where mounting is not allowed."""
    import shutil
    import subprocess

    mount_point = tmp_path / 'small_disk'
    mount_point.mkdir()
    if os.geteuid() != 0 or shutil.which('mount') is None:
        pytest.skip('mounting a small tmpfs needs root and mount(8)')
    made = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', str(mount_point)],
                          capture_output=True, text=True)
    if made.returncode:
        pytest.skip(f'cannot mount a tmpfs here: {made.stderr.strip()}')
    try:
        yield mount_point
    finally:
        subprocess.run(['umount', '-l', str(mount_point)], check=False)


INTEGRATION = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'integration')


def pytest_collection_modifyitems(config, items):
    """The end-to-end runs in tests/integration/ are the slow ones: marked as a folder, so -m "not slow" leaves
    them out whatever their count."""
    for item in items:
        if str(item.path).startswith(INTEGRATION + os.sep):
            item.add_marker(pytest.mark.slow)
