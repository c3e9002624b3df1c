"""A stop signal to the whole process group while validation runs with DataLoader workers (as slurm's
preemption or a terminal's Ctrl-C sends it): the run finishes validation, the next step, saves and exits 143."""
import os
import re
import signal
import subprocess
import time

import cv2
import numpy as np
import torch
import yaml

from conftest import PYTHON, subprocess_env
from builders import make_lmdb_pair, read_log
from esrgan_plugin.archs.rrdbnet_arch import ESRGANRRDBNet

VAL_IMAGES = 60
ARCH = {'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_block': 1, 'num_grow_ch': 4, 'scale': 4}


def options(tmp_path):
    data = tmp_path / 'data'
    make_lmdb_pair(data, count=8, size=32)
    rng = np.random.default_rng(0)
    for kind, size in (('val_gt', 128), ('val_lq', 32)):
        (data / kind).mkdir()
        for i in range(VAL_IMAGES):  # enough images that validation lasts a few seconds
            cv2.imwrite(str(data / kind / f'{i:04d}.png'), rng.integers(0, 256, (size, size, 3), np.uint8))
    return {
        'name': 'valstop', 'model_type': 'ESRGANPSNRModel', 'scale': 4, 'num_gpu': 0, 'manual_seed': 1,
        'datasets': {
            'train': {'name': 'tiny', 'type': 'DIV2KPairedDataset', 'dataroot_gt': str(data / 'gt.lmdb'),
                      'dataroot_lq': str(data / 'lq.lmdb'), 'io_backend': {'type': 'lmdb'}, 'gt_size': 32,
                      'num_worker_per_gpu': 0, 'batch_size_per_gpu': 2},
            'val': {'name': 'tinyval', 'type': 'PairedImageDataset', 'dataroot_gt': str(data / 'val_gt'),
                    'dataroot_lq': str(data / 'val_lq'), 'io_backend': {'type': 'disk'}, 'num_worker_per_gpu': 2},
        },
        'network_g': {'type': 'ESRGANRRDBNet', **{k: v for k, v in ARCH.items() if k != 'scale'}},
        'path': {'pretrain_network_g': None, 'resume_state': None},
        'train': {'optim_g': {'type': 'Adam', 'lr': 1e-4}, 'total_iter': 6,
                  'scheduler': {'type': 'MultiStepLR', 'milestones': [5], 'gamma': 0.5},
                  'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0}},
        'val': {'val_freq': 2, 'save_img': False, 'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': 4}}},
        'logger': {'print_freq': 1, 'save_checkpoint_freq': 100, 'use_tb_logger': False},
    }


def test_sigterm_to_the_process_group_during_validation_with_workers_saves_and_exits_143(tmp_path):
    yml = tmp_path / 'valstop.yml'
    yml.write_text(yaml.safe_dump(options(tmp_path)))
    env = subprocess_env()
    env['CUDA_VISIBLE_DEVICES'] = ''
    with open(tmp_path / 'out.txt', 'w') as out:
        proc = subprocess.Popen([PYTHON, '-m', 'esrgan_plugin.train', '-opt', str(yml)], cwd=tmp_path, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    exp = tmp_path / 'experiments' / 'valstop'
    image_line = re.compile(r'tinyval \d{4}: psnr')
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and proc.poll() is None:
            if exp.is_dir() and image_line.search(read_log(exp)):
                break
            time.sleep(0.02)
        validated_before_signal = len(image_line.findall(read_log(exp)))
        os.killpg(proc.pid, signal.SIGTERM)  # the training process and the validation workers
        proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    output = (tmp_path / 'out.txt').read_text()
    assert 0 < validated_before_signal < VAL_IMAGES  # the signal came while validation ran
    assert proc.returncode == 128 + signal.SIGTERM, output[-3000:]
    log = read_log(exp)
    assert len(image_line.findall(log)) == VAL_IMAGES  # validation went on to its last image
    assert 'Stopped by SIGTERM at iteration 3: checkpoint and training state saved' in log
    state = torch.load(exp / 'training_states' / '3.state', weights_only=True)
    assert state['iter'] == 3
    net = ESRGANRRDBNet(**ARCH)
    net.load_state_dict(torch.load(exp / 'models' / 'net_g_3.pth', weights_only=True)['params'])
    assert 'Traceback' not in output
