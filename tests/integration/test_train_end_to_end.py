"""`python -m esrgan_plugin.train` as users run it: subprocesses on a tiny LMDB, on CPU."""
import glob
import os
import re
import subprocess

import cv2
import numpy as np
import pytest
import torch
import yaml
from basicsr.utils.lmdb_util import make_lmdb_from_imgs

from conftest import PYTHON, REPO_ROOT, TINY_ARCH, free_port, subprocess_env
from builders import gan_options, make_lmdb_pair, read_log, write_options


def train(tmp_path, yml, *extra, launcher=None):
    cmd = [PYTHON, '-m', 'esrgan_plugin.train', '-opt', yml, *extra]
    if launcher:
        cmd = [PYTHON, '-m', 'torch.distributed.run', '--nproc_per_node=2', f'--master_port={free_port()}',
               '-m', 'esrgan_plugin.train', '-opt', yml, '--launcher', 'pytorch', *extra]
    env = subprocess_env()
    env['CUDA_VISIBLE_DEVICES'] = ''
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def test_gan_training_writes_checkpoints_states_and_validation_then_resumes(tmp_path):
    yml = write_options(tmp_path, gan_options(tmp_path))
    run = train(tmp_path, yml)
    assert run.returncode == 0, run.stderr[-3000:]
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
    run = train(tmp_path, yml, '--auto_resume', '--force_yml', 'train:total_iter=6')
    assert run.returncode == 0, run.stderr[-3000:]
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
    run = train(tmp_path, yml, launcher='pytorch')
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    exp = tmp_path / 'experiments' / 'ddp'
    log = read_log(exp)
    assert 'World size (gpu number): 2' in log
    assert 'generator weights identical on all 2 ranks' in log
    assert len(glob.glob(str(exp / 'train_*.log'))) == 1  # only rank 0 writes logs
    assert sorted(os.listdir(exp / 'models')) == sorted(
        ['net_d_2.pth', 'net_d_4.pth', 'net_d_latest.pth', 'net_g_2.pth', 'net_g_4.pth', 'net_g_latest.pth'])
    assert not glob.glob(str(exp / 'models' / '.*'))  # no leftover temporary files


def test_missing_vgg_weights_stop_before_anything_is_written(tmp_path):
    opt = gan_options(tmp_path, name='novgg')
    opt['train']['perceptual_opt'].pop('vgg_weights')
    yml = write_options(tmp_path, opt)
    env_home = tmp_path / 'torch_home'
    env = subprocess_env()
    env['TORCH_HOME'] = str(env_home)
    run = subprocess.run([PYTHON, '-m', 'esrgan_plugin.train', '-opt', yml], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    expected = os.path.join(str(env_home), 'hub', 'checkpoints', 'vgg19-dcbb9e9d.pth')
    assert f'error: the VGG19 weights for the perceptual loss are not at {expected}' in run.stderr
    assert 'Traceback' not in run.stderr
    assert not (tmp_path / 'experiments').exists()


def _types(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == 'type' and isinstance(value, str):
                yield value
            else:
                yield from _types(value)


@pytest.mark.parametrize('path', sorted(glob.glob(os.path.join(REPO_ROOT, 'options', '*.yml'))),
                         ids=os.path.basename)
def test_shipped_option_files_name_registered_types(path):
    from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY
    with open(path) as f:
        opt = yaml.safe_load(f)
    assert opt['model_type'] in MODEL_REGISTRY
    registries = (ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY)
    # 'auto': the test command reads the generator's architecture off the checkpoint (generator_options)
    optimizers_and_schedulers = {'Adam', 'AdamW', 'MultiStepLR', 'CosineAnnealingRestartLR', 'lmdb', 'disk', 'auto'}
    for name in _types(opt):
        assert name in optimizers_and_schedulers or any(name in r for r in registries), f'{name} is not registered'
    for net in ('network_g', 'network_d'):
        if net in opt and opt[net]['type'] != 'auto':  # ours, not basicsr's same-purpose classes
            assert opt[net]['type'].startswith('ESRGAN')


@pytest.mark.slow
def test_a_shipped_training_file_with_only_total_iter_shortened_trains_with_warnings(tmp_path):
    # The data where the shipped file looks for it, relative to the folder the command runs in.
    train_dir = tmp_path / 'datasets' / 'DIV2K' / 'train_x4'
    make_lmdb_pair(train_dir, count=2, size=128)
    os.rename(train_dir / 'lq.lmdb', train_dir / 'lq_x4.lmdb')
    for kind, size in (('GTmod12', 32), ('LRbicx4', 8)):
        os.makedirs(tmp_path / 'datasets' / 'Set14' / kind)
        cv2.imwrite(str(tmp_path / 'datasets' / 'Set14' / kind / 'a.png'), np.full((size, size, 3), 99, np.uint8))
    env = subprocess_env()
    env.update(CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='2')
    run = subprocess.run([PYTHON, '-m', 'esrgan_plugin.train', '-opt', 'train_RRDBNet_PSNR_x4', '--force_yml',
                          'train:total_iter=1'], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    warnings = [line for line in run.stderr.splitlines() if line.startswith('warning: ')]
    for key in ('train.scheduler.milestones', 'val.val_freq', 'logger.save_checkpoint_freq', 'logger.print_freq'):
        assert sum(f': {key}: ' in line for line in warnings) == 1, (key, warnings)
    assert os.path.isfile(tmp_path / 'experiments' / 'RRDBNet_PSNR_x4' / 'models' / 'net_g_latest.pth')
