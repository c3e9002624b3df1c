"""The train command end to end on a tiny LMDB, on the CPU: in this process (``conftest.run_command``), and under
torchrun in two processes."""
import glob
import os
import re
import subprocess

import cv2
import numpy as np
import pytest
import torch

from conftest import PYTHON, free_port, run_command, subprocess_env
from builders import gan_options, make_lmdb_pair, read_log, write_options
from esrgan_plugin import train as train_command


def torchrun(tmp_path, yml):
    """Two processes of the train command under torchrun, as users start them."""
    cmd = [PYTHON, '-m', 'torch.distributed.run', '--nproc_per_node=2', f'--master_port={free_port()}',
           '-m', 'esrgan_plugin.train', '-opt', yml, '--launcher', 'pytorch']
    env = subprocess_env()
    env['CUDA_VISIBLE_DEVICES'] = ''
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def test_gan_training_writes_checkpoints_states_and_validation_then_resumes(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    yml = write_options(tmp_path, gan_options(tmp_path))
    run = run_command(capsys, train_command.main, '-opt', yml)
    assert run.code == 0, run.err[-3000:]
    exp = tmp_path / 'experiments' / 'e2e'
    for it in (2, 4):
        assert (exp / 'models' / f'net_g_{it}.pth').is_file()
        assert (exp / 'models' / f'net_d_{it}.pth').is_file()
        assert (exp / 'training_states' / f'{it}.state').is_file()
    assert glob.glob(str(exp / 'visualization' / '*' / '*_2.png'))
    assert os.listdir(tmp_path / 'tb_logger' / 'e2e')
    log = read_log(exp)
    for key in ('l_g_pix', 'l_g_percep', 'l_g_gan', 'l_d_real', 'l_d_fake'):
        assert key in log
    assert re.search(r'# psnr: \d+\.\d+', log)
    assert log.count('Validation tinyval') == 2  # iterations 2 and 4: basicsr validated iteration 4 twice
    g = torch.load(exp / 'models' / 'net_g_4.pth', weights_only=True)
    assert set(g) == {'params', 'params_ema'}

    # An interrupted run continues with --auto_resume (on the CPU): pick the run up at iteration 4
    # and extend it to 6, as after a crash with total_iter 6.
    run = run_command(capsys, train_command.main, '-opt', yml, '--auto_resume', '--force_yml', 'train:total_iter=6')
    assert run.code == 0, run.err[-3000:]
    log = read_log(exp)
    assert 'Resuming training from epoch' in log and 'iter: 4.' in log
    state = torch.load(exp / 'training_states' / '6.state', weights_only=True)
    assert state['iter'] == 6
    for optimizer_state in state['optimizers']:  # G and D: Adam counted every step across the restart
        assert all(s['step'] == 6 for s in optimizer_state['state'].values())
    assert state['schedulers'][0]['last_epoch'] == 5  # basicsr steps schedulers from iteration 2 on


def test_torchrun_gloo_two_processes(tmp_path):
    opt = gan_options(tmp_path, name='ddp')
    yml = write_options(tmp_path, opt)
    run = torchrun(tmp_path, yml)
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    exp = tmp_path / 'experiments' / 'ddp'
    log = read_log(exp)
    assert 'World size (gpu number): 2' in log
    assert 'generator weights identical on all 2 ranks' in log
    assert len(glob.glob(str(exp / 'train_*.log'))) == 1  # only rank 0 writes logs
    assert sorted(os.listdir(exp / 'models')) == sorted(
        ['net_d_2.pth', 'net_d_4.pth', 'net_d_latest.pth', 'net_g_2.pth', 'net_g_4.pth', 'net_g_latest.pth'])
    assert not glob.glob(str(exp / 'models' / '.*'))  # no leftover temporary files


@pytest.mark.slow
def test_a_shipped_training_file_with_only_total_iter_shortened_trains_with_warnings(tmp_path, monkeypatch, capsys):
    # The data where the shipped file looks for it, relative to the folder the command runs in.
    train_dir = tmp_path / 'datasets' / 'DIV2K' / 'train_x4'
    make_lmdb_pair(train_dir, count=2, size=128)
    os.rename(train_dir / 'lq.lmdb', train_dir / 'lq_x4.lmdb')
    for kind, size in (('GTmod12', 32), ('LRbicx4', 8)):
        os.makedirs(tmp_path / 'datasets' / 'Set14' / kind)
        cv2.imwrite(str(tmp_path / 'datasets' / 'Set14' / kind / 'a.png'), np.full((size, size, 3), 99, np.uint8))
    monkeypatch.chdir(tmp_path)
    run = run_command(capsys, train_command.main, '-opt', 'train_RRDBNet_PSNR_x4', '--force_yml', 'train:total_iter=1')
    assert run.code == 0, run.err[-3000:]
    warnings = [line for line in run.err.splitlines() if line.startswith('warning: ')]
    for key in ('train.scheduler.milestones', 'val.val_freq', 'logger.save_checkpoint_freq', 'logger.print_freq'):
        assert sum(f': {key}: ' in line for line in warnings) == 1, (key, warnings)
    assert os.path.isfile(tmp_path / 'experiments' / 'RRDBNet_PSNR_x4' / 'models' / 'net_g_latest.pth')
