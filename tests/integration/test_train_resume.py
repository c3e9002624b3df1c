"""Exact resume, resume past damaged files, stops that save, one run per experiment (issue 10, items 1-4).

Most runs are in-process (``esrgan_plugin.train.main``) to keep them cheap; the signal test runs the command as
users do. Every comparison is against an uninterrupted run of the same options.
"""
import copy
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch
import yaml
from basicsr.utils.registry import MODEL_REGISTRY

from conftest import PYTHON, basicsr_log_messages, subprocess_env
from esrgan_plugin import train
from esrgan_plugin.errors import UserFacingError
from esrgan_plugin.models.psnr_model import ESRGANPSNRModel
from builders import gan_options, make_lmdb_pair, read_log


_BASE = {}


def options(tmp_path, name, model='gan', workers=0, total_iter=8):
    """Tiny GAN or PSNR training: 8 images of 48x48 cut to random 32x32 crops, 4 batches an epoch."""
    if not (tmp_path / 'data48').exists():
        make_lmdb_pair(tmp_path / 'data48', count=8, size=48)
        _BASE[tmp_path] = gan_options(tmp_path, total_iter=total_iter)  # also makes its own 32x32 data
    opt = copy.deepcopy(_BASE[tmp_path])
    opt['name'] = name
    opt['train']['total_iter'] = total_iter
    train_set = opt['datasets']['train']
    train_set.update(dataroot_gt=str(tmp_path / 'data48' / 'gt.lmdb'), dataroot_lq=str(tmp_path / 'data48' / 'lq.lmdb'),
                     num_worker_per_gpu=workers)
    opt['datasets'].pop('val')
    opt.pop('val')
    opt['logger'] = {'print_freq': 1, 'save_checkpoint_freq': 2, 'use_tb_logger': False}
    opt['train']['scheduler']['milestones'] = [max(1, min(5, total_iter - 1))]  # the option check wants it below total_iter
    opt['train'].pop('perceptual_opt')  # building even a random VGG19 takes seconds; exactness does not need it
    if model in ('psnr', 'noisy'):
        opt['model_type'] = 'ESRGANPSNRModel' if model == 'psnr' else 'NoisyInputTestModel'
        opt.pop('network_d')
        for key in ('optim_d', 'gan_opt'):
            opt['train'].pop(key)
        opt['train']['pixel_opt']['loss_weight'] = 1.0
    return opt


def write(tmp_path, opt):
    path = tmp_path / f'{opt["name"]}.yml'
    path.write_text(yaml.safe_dump(opt))
    return str(path)


@pytest.fixture
def run_here(tmp_path, monkeypatch):
    """Run ``python -m esrgan_plugin.train ARGS`` in this process, in tmp_path; returns its exit code.

    The options say num_gpu: 0 (CPU) unless a test changes it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, 'argv', list(sys.argv))

    def run(*args):
        return train.main(list(args))
    return run


@pytest.fixture
def log_lines():
    with basicsr_log_messages() as lines:
        yield lines


def experiment(tmp_path, name):
    return tmp_path / 'experiments' / name


def weights(exp, iteration):
    """Networks and the whole training state (optimizers, schedulers, generator states, data position)."""
    nets = {name: torch.load(exp / 'models' / f'{name}_{iteration}.pth', weights_only=True)
            for name in ('net_g', 'net_d') if (exp / 'models' / f'{name}_{iteration}.pth').exists()}
    return nets, torch.load(exp / 'training_states' / f'{iteration}.state', weights_only=True)


@MODEL_REGISTRY.register()
class NoisyInputTestModel(ESRGANPSNRModel):
    """Draws from Python's, NumPy's and torch's global generators every step, as noise injection would."""

    def feed_data(self, data):
        super().feed_data(data)
        noise = torch.rand_like(self.lq) + random.random() + float(np.random.rand())
        self.lq = self.lq + 0.01 * noise


def assert_identical(a, b, where=''):
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), f'{where} differs by {(a.double() - b.double()).abs().max().item():.3e}'
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_identical(a[key], b[key], f'{where}.{key}')
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_identical(x, y, f'{where}[{i}]')
    else:
        assert a == b, where


def copy_up_to(tmp_path, source, target, iteration):
    """A copy of experiment ``source`` as a run stopped right after saving ``iteration`` would have left it."""
    src, dst = experiment(tmp_path, source), experiment(tmp_path, target)
    shutil.copytree(src, dst)
    for folder in (dst / 'models', dst / 'training_states'):
        for name in os.listdir(folder):
            stem = os.path.splitext(name)[0].rsplit('_', 1)[-1]
            if not stem.isdigit() or int(stem) > iteration:
                os.remove(folder / name)


@pytest.mark.parametrize('model,workers', [('psnr', 0), ('psnr', 2), ('gan', 0), ('gan', 2), ('noisy', 0)])
def test_stop_and_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path, run_here, model, workers):
    """8 iterations in one go against resuming from iteration 6 (the middle of the second epoch) and, for the
    GAN with workers, also from iteration 4 (an epoch boundary). The noisy model shows the generator states
    are restored (the others draw nothing from them in the training process)."""
    assert run_here('-opt', write(tmp_path, options(tmp_path, 'whole', model, workers))) == 0
    expected = weights(experiment(tmp_path, 'whole'), 8)
    for stop_at in ((4, 6) if (model, workers) == ('gan', 2) else (6,)):
        name = f'resumed{stop_at}'
        copy_up_to(tmp_path, 'whole', name, stop_at)
        assert run_here('-opt', write(tmp_path, options(tmp_path, name, model, workers)), '--auto_resume') == 0
        assert_identical(weights(experiment(tmp_path, name), 8), expected, f'resumed from {stop_at}')


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_deterministic_gpu_training_resumes_bit_identically(tmp_path, run_here):
    """On the GPU exactness needs train.deterministic (cuDNN's autotuned and atomic-add kernels vary)."""
    def gpu_options(name):
        opt = options(tmp_path, name, 'gan', workers=2)
        opt['num_gpu'] = 1
        opt['train']['deterministic'] = True
        return opt
    assert run_here('-opt', write(tmp_path, gpu_options('whole'))) == 0
    copy_up_to(tmp_path, 'whole', 'resumed', 6)
    assert run_here('-opt', write(tmp_path, gpu_options('resumed')), '--auto_resume') == 0
    assert_identical(weights(experiment(tmp_path, 'resumed'), 8), weights(experiment(tmp_path, 'whole'), 8))


def test_workers_do_not_change_the_data(tmp_path, run_here):
    """Each sample's augmentation depends on its place in the run only, not on which worker drew it."""
    for workers in (0, 2):
        opt = options(tmp_path, f'w{workers}', 'psnr', workers, total_iter=4)
        opt['train']['deterministic'] = True  # accepted on the CPU too
        assert run_here('-opt', write(tmp_path, opt)) == 0
    assert_identical(weights(experiment(tmp_path, 'w0'), 4), weights(experiment(tmp_path, 'w2'), 4))


def test_damaged_newest_state_resumes_from_the_one_before_and_temp_files_go(tmp_path, run_here, log_lines):
    assert run_here('-opt', write(tmp_path, options(tmp_path, 'whole', 'psnr'))) == 0
    expected = weights(experiment(tmp_path, 'whole'), 8)
    copy_up_to(tmp_path, 'whole', 'crashed', 6)
    exp = experiment(tmp_path, 'crashed')
    newest = exp / 'training_states' / '6.state'
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    leftovers = [exp / 'models' / '.net_g_8.k2j4h1x0.tmp.pth', exp / 'training_states' / '.8.ab12cd34.tmp.state']
    for path in leftovers:
        path.write_bytes(b'half a save')

    assert run_here('-opt', write(tmp_path, options(tmp_path, 'crashed', 'psnr')), '--auto_resume') == 0
    warnings = [line for line in log_lines if 'because newer files are damaged' in line]
    assert len(warnings) == 1 and str(newest) in warnings[0] and '4.state (iteration 4)' in warnings[0]
    assert 'Resuming training from epoch: 0, iter: 4.' in log_lines
    assert not any(path.exists() for path in leftovers)
    assert_identical(weights(exp, 8), expected)


def test_a_locked_experiment_is_refused_and_a_stale_lock_taken_over(tmp_path, run_here, log_lines):
    opt = options(tmp_path, 'busy', 'psnr', total_iter=2)
    yml = write(tmp_path, opt)
    exp = experiment(tmp_path, 'busy')
    exp.mkdir(parents=True)
    (exp / 'marker').write_text('the running run owns this folder')
    # Another training run, as far as the lock goes: it holds flock on experiments/busy.lock and wrote who it is.
    holder = subprocess.Popen([PYTHON, '-c', textwrap.dedent(f'''
        import fcntl, os, socket, sys
        fd = os.open({str(exp) + '.lock'!r}, os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, f'PID {{os.getpid()}} on host {{socket.gethostname()}}'.encode())
        print('locked', flush=True)
        sys.stdin.read()''')], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == 'locked\n'
        for extra in ((), ('--auto_resume',)):
            with pytest.raises(UserFacingError) as refused:
                run_here('-opt', yml, *extra)
            message = str(refused.value)
            assert f'PID {holder.pid} on host {socket.gethostname()}' in message and '\n' not in message
        assert (exp / 'marker').exists() and not list((tmp_path / 'experiments').glob('busy_archived_*'))
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    # the holder exited without releasing: its lock file remains, but the kernel freed the lock
    assert (tmp_path / 'experiments' / 'busy.lock').read_text().startswith(f'PID {holder.pid} ')
    assert run_here('-opt', yml) == 0
    assert any('took over the lock' in line and f'PID {holder.pid}' in line for line in log_lines)
    assert not (tmp_path / 'experiments' / 'busy.lock').exists()  # released at the end


def test_sigterm_saves_the_current_iteration_and_auto_resume_continues_exactly(tmp_path, run_here, log_lines, request):
    opt = options(tmp_path, 'term', 'gan', workers=2, total_iter=10_000)
    opt['logger']['save_checkpoint_freq'] = 1000
    yml = write(tmp_path, opt)
    env = subprocess_env()
    env['CUDA_VISIBLE_DEVICES'] = ''
    proc = subprocess.Popen([PYTHON, '-m', 'esrgan_plugin.train', '-opt', yml], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    exp = experiment(tmp_path, 'term')
    deadline = time.time() + 120
    while 'iter:       3' not in (read_log(exp) if exp.exists() else '') and time.time() < deadline:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGTERM)  # to the DataLoader workers too, as slurm and a terminal's Ctrl-C do
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, output[-3000:]
    states = os.listdir(exp / 'training_states')
    assert len(states) == 1, states
    stopped_at = int(states[0].split('.')[0])
    assert stopped_at >= 3
    assert f'Stopped by SIGTERM at iteration {stopped_at}: checkpoint and training state saved' in output
    assert f'iter:{stopped_at + 1:8,d}' not in read_log(exp)  # the step in progress finished, no more

    total = stopped_at + 3
    # The resumed and the straight runs run in this process, with the stopped run's CPU threads, so that float
    # sums are ordered alike; exactness holds for a given thread count.
    threads = torch.get_num_threads()
    torch.set_num_threads(int(env['OMP_NUM_THREADS']))
    request.addfinalizer(lambda: torch.set_num_threads(threads))
    assert run_here('-opt', yml, '--auto_resume', '--force_yml', f'train:total_iter={total}') == 0
    assert f'Resuming training from epoch: {(stopped_at - 1) // 4}, iter: {stopped_at}.' in log_lines
    opt.update(name='straight', train={**opt['train'], 'total_iter': total})
    assert run_here('-opt', write(tmp_path, opt)) == 0
    for net in ('net_g', 'net_d'):
        assert_identical(torch.load(exp / 'models' / f'{net}_latest.pth', weights_only=True),
                         torch.load(experiment(tmp_path, 'straight') / 'models' / f'{net}_latest.pth',
                                    weights_only=True), net)
