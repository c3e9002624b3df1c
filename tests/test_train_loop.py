"""The training loop: its fixes of basicsr behaviour, the ``train.deterministic`` option, signal handling."""
import os
import signal
import time

import torch
from basicsr.utils import MessageLogger

from conftest import basicsr_log_messages
from esrgan_plugin.stop_signals import StopSignals
from esrgan_plugin.train_loop import EtaMessageLogger, determinism


def _last_message(logger_class, current_iter, total_iter=10, seconds_per_iter=3.0):
    opt = {'name': 'eta', 'logger': {'print_freq': 1, 'use_tb_logger': False}, 'train': {'total_iter': total_iter}}
    with basicsr_log_messages() as messages:
        msg_logger = logger_class(opt, 0, None)
        msg_logger.start_time = time.time() - seconds_per_iter * (current_iter + 1)
        msg_logger({'epoch': 0, 'iter': current_iter, 'lrs': [1e-4], 'time': 1.0, 'data_time': 0.1})
    return messages[-1]


def test_eta_is_zero_on_the_last_iteration():
    assert 'eta: -1 day' in _last_message(MessageLogger, 10)  # basicsr's
    assert 'eta: 0:00:00,' in _last_message(EtaMessageLogger, 10)
    assert 'eta: 0:00:03,' in _last_message(EtaMessageLogger, 9)  # one iteration of 3 s to go


def test_deterministic_option_sets_and_restores_the_process_settings(monkeypatch):
    monkeypatch.delenv('CUBLAS_WORKSPACE_CONFIG', raising=False)
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic)
    with determinism(True):
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        assert os.environ['CUBLAS_WORKSPACE_CONFIG'] == ':4096:8'
    assert (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic) == before
    with determinism(False):
        assert torch.backends.cudnn.benchmark  # basicsr's default


def _in_child(signals_to_send):
    """Fork; the child installs StopSignals, sends itself the signals and exits 3 if it is still alive."""
    pid = os.fork()
    if pid == 0:
        try:
            with StopSignals() as stops:
                for signum in signals_to_send:
                    os.kill(os.getpid(), signum)
                os._exit(3 if stops.received == signal.SIGINT else 4)
        finally:
            os._exit(5)
    return os.waitpid(pid, 0)[1]


def test_first_signal_only_asks_to_stop_and_a_second_one_ends_the_process():
    status = _in_child([signal.SIGINT])
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 3
    status = _in_child([signal.SIGINT, signal.SIGTERM])
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM
