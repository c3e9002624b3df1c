"""The training loop: its fixes of basicsr behaviour, the ``train.deterministic`` option, signal handling, and
the options it hands the model (the launched dict, never changed; a resumed run gets a copy)."""
import contextlib
import copy
import os
import signal
import time

import pytest
import torch
from basicsr.utils import MessageLogger
from torch.utils.data import DataLoader, TensorDataset

from builders import gan_options, write_options
from conftest import basicsr_log_messages, run_command
from esrgan_plugin import train as train_command
from esrgan_plugin.training.stop_signals import StopSignals
from esrgan_plugin.training.train_data import WorkerSignals, stop_signals_held
from esrgan_plugin.training.train_loop import EtaMessageLogger, determinism


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


class SlowStartWorkerSignals(WorkerSignals):
    """A worker still starting up when the signal comes: it sleeps before its handlers are installed."""

    def __init__(self, folder) -> None:
        super().__init__()
        self.folder = folder

    def __call__(self, worker_id: int) -> None:
        (self.folder / f'started{worker_id}').touch()
        time.sleep(1.5)
        super().__call__(worker_id)


def start_workers_and_terminate_them_early(tmp_path, hold: bool):
    """A DataLoader iterator whose workers get SIGTERM before their worker_init_fn has installed its handlers."""
    worker_signals = SlowStartWorkerSignals(tmp_path)
    loader = DataLoader(TensorDataset(torch.arange(8.0)), batch_size=2, num_workers=2, worker_init_fn=worker_signals)
    try:
        with stop_signals_held() if hold else contextlib.nullcontext():
            batches = iter(loader)
        deadline = time.time() + 60
        while len(list(tmp_path.glob('started*'))) < 2 and time.time() < deadline:
            time.sleep(0.01)
        for worker in batches._workers:
            os.kill(worker.pid, signal.SIGTERM)  # as slurm's or a terminal's signal to the whole process group
        return [batch[0].tolist() for batch in batches]
    finally:
        worker_signals.release()


def test_workers_starting_up_leave_sigterm_to_the_training_process(tmp_path):
    """Held while workers start (as the training loop does at every epoch), SIGTERM reaches their own handler.

    Without holding, torch's start-up handler ends a worker that gets SIGTERM before its worker_init_fn runs,
    and the training process failed on the lost worker instead of saving (seen in CI).
    """
    assert sorted(sum(start_workers_and_terminate_them_early(tmp_path, hold=True), [])) == list(range(8))
    assert signal.SIGTERM not in signal.pthread_sigmask(signal.SIG_BLOCK, [])  # released again here
    for marker in tmp_path.glob('started*'):
        marker.unlink()
    with pytest.raises(RuntimeError, match='DataLoader worker'):
        start_workers_and_terminate_them_early(tmp_path, hold=False)


@pytest.fixture
def option_spies(monkeypatch):
    """Records the dict the train command launches and the dict each model is built with, each with a copy
    taken at that moment."""
    from esrgan_plugin.training import launch, train_loop

    seen = {'launched': [], 'models': []}
    real_launch, real_build = launch.launch_options, train_loop.build_model

    def launch_options(*args, **kwargs):
        opt = real_launch(*args, **kwargs)
        seen['launched'].append((opt, copy.deepcopy(opt)))
        return opt

    def build_model(opt):
        seen['models'].append((opt, copy.deepcopy(opt)))
        return real_build(opt)

    monkeypatch.setattr(launch, 'launch_options', launch_options)
    monkeypatch.setattr(train_loop, 'build_model', build_model)
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '')
    return seen, real_launch


def psnr_file(tmp_path) -> str:
    """A tiny PSNR-stage option file: 2 iterations, a checkpoint and a validation at iteration 2."""
    opt = gan_options(tmp_path, name='unchanged', total_iter=2)
    opt['model_type'] = 'ESRGANPSNRModel'
    for key in ('perceptual_opt', 'gan_opt', 'optim_d'):
        del opt['train'][key]
    del opt['network_d']
    return write_options(tmp_path, opt)


def test_the_model_gets_the_checked_dict_unchanged_after_launch(tmp_path, monkeypatch, capsys, option_spies):
    from esrgan_plugin.config.loading import load_options
    from esrgan_plugin.training.launch import Launch

    seen, real_launch = option_spies
    monkeypatch.chdir(tmp_path)
    yml = psnr_file(tmp_path)
    assert run_command(capsys, train_command.main, '-opt', yml).code == 0
    [(launched, launched_then)] = seen['launched']
    [(received, received_then)] = seen['models']
    assert received is launched  # the dict the checks returned, as launched: no copy, no other dict
    expected = real_launch(load_options(yml, is_train=True).opt, Launch(), str(tmp_path), is_train=True)
    assert received == expected == received_then
    assert received['path']['resume_state'] is None

    # resumed and extended to 4 iterations: the model gets a new dict derived from the launched one
    assert run_command(capsys, train_command.main, '-opt', yml, '--auto_resume',
                       '--force_yml', 'train:total_iter=4').code == 0
    (launched, launched_then), (received, received_then) = seen['launched'][1], seen['models'][1]
    assert launched == launched_then, 'the launched dict must not be changed by resuming'
    assert launched['path']['resume_state'] is None and launched['path']['pretrain_network_g'] is None
    assert received is not launched and received == received_then
    experiment = tmp_path / 'experiments' / 'unchanged'
    resumed_paths = {'resume_state': str(experiment / 'training_states' / '2.state'),
                     'pretrain_network_g': str(experiment / 'models' / 'net_g_2.pth')}
    assert received == {**launched, 'path': {**launched['path'], **resumed_paths}}
    assert (experiment / 'training_states' / '4.state').is_file()
