"""Builders the tests share: option dicts, tiny LMDBs and batches (tests in every folder import them)."""
import glob
import os

import cv2
import numpy as np
import torch
import yaml
from basicsr.utils.lmdb_util import make_lmdb_from_imgs

from conftest import TINY_ARCH




def train_options() -> dict:
    """A complete, valid GAN training file (paths are not checked in these tests)."""
    return {
        'name': 'tiny', 'model_type': 'ESRGANRaGANModel', 'scale': 4, 'num_gpu': 'auto', 'manual_seed': 0,
        'datasets': {
            'train': {'name': 't', 'type': 'DIV2KPairedDataset', 'dataroot_gt': 'gt.lmdb', 'dataroot_lq': 'lq.lmdb',
                      'io_backend': {'type': 'lmdb'}, 'gt_size': 32, 'use_hflip': True, 'use_rot': True,
                      'num_worker_per_gpu': 0, 'batch_size_per_gpu': 2, 'prefetch_mode': None},
            'val': {'name': 'v', 'type': 'PairedImageDataset', 'dataroot_gt': 'gt', 'dataroot_lq': 'lq',
                    'io_backend': {'type': 'disk'}},
        },
        'network_g': {'type': 'ESRGANRRDBNet', 'num_feat': 8, 'num_block': 1, 'num_grow_ch': 4, 'scale': 4},
        'network_d': {'type': 'ESRGANVGGDiscriminator', 'num_feat': 4, 'input_size': 32},
        'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None},
        'train': {
            'ema_decay': 0.999, 'total_iter': 100, 'warmup_iter': -1,
            'optim_g': {'type': 'Adam', 'lr': 1e-4, 'betas': [0.9, 0.99], 'weight_decay': 0},
            'optim_d': {'type': 'AdamW', 'lr': 1e-4},
            'scheduler': {'type': 'MultiStepLR', 'milestones': [50, 80], 'gamma': 0.5},
            'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1e-2, 'reduction': 'mean'},
            'perceptual_opt': {'type': 'ESRGANPerceptualLoss', 'layer': 'conv5_4', 'criterion': 'l1',
                               'vgg_weights': 'random'},  # no ImageNet file needed
            'gan_opt': {'type': 'ESRGANRaGANLoss', 'loss_weight': 5e-3},
            'amp': 'bf16', 'channels_last': True, 'compile': 'max-autotune',
        },
        'val': {'val_freq': 50, 'save_img': False, 'amp': 'fp32',
                'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': 4, 'test_y_channel': True}}},
        'logger': {'print_freq': 1, 'save_checkpoint_freq': 5e1, 'use_tb_logger': False,
                   'wandb': {'project': None, 'resume_id': None}},
        'dist_params': {'backend': 'gloo', 'port': 29500},
    }

DATASET_TYPE = 'DIV2KPairedDataset'


def make_lmdb_pair(root, count=8, size=32, scale=4):
    """GT/LQ LMDBs in basicsr's format, written with basicsr's own tool."""
    rng = np.random.default_rng(0)
    for kind in ('gt', 'lq'):
        os.makedirs(root / kind, exist_ok=True)
    names = []
    for i in range(count):
        hr = cv2.GaussianBlur((rng.random((size, size, 3)) * 255).astype(np.uint8), (5, 5), 1.5)
        lr = cv2.resize(hr, (size // scale, size // scale), interpolation=cv2.INTER_AREA)
        names.append(f'{i:04d}')
        cv2.imwrite(str(root / 'gt' / f'{i:04d}.png'), hr)
        cv2.imwrite(str(root / 'lq' / f'{i:04d}.png'), lr)
    for kind in ('gt', 'lq'):
        make_lmdb_from_imgs(str(root / kind), str(root / f'{kind}.lmdb'), [f'{n}.png' for n in names], names,
                            map_size=1 << 24)
    return str(root / 'gt.lmdb'), str(root / 'lq.lmdb')


def gan_options(tmp_path, name='e2e', total_iter=4):
    gt, lq = make_lmdb_pair(tmp_path / 'data')
    return {
        'name': name, 'model_type': 'ESRGANRaGANModel', 'scale': 4, 'num_gpu': 0, 'manual_seed': 1,
        'datasets': {
            'train': {'name': 'tiny', 'type': DATASET_TYPE, 'dataroot_gt': gt, 'dataroot_lq': lq,
                      'io_backend': {'type': 'lmdb'}, 'gt_size': 32, 'use_hflip': True, 'use_rot': True,
                      'num_worker_per_gpu': 0, 'batch_size_per_gpu': 2, 'dataset_enlarge_ratio': 1},
            'val': {'name': 'tinyval', 'type': DATASET_TYPE, 'dataroot_gt': str(tmp_path / 'data' / 'gt'),
                    'dataroot_lq': str(tmp_path / 'data' / 'lq'), 'io_backend': {'type': 'disk'}},
        },
        'network_g': {'type': 'ESRGANRRDBNet', 'num_in_ch': 3, 'num_out_ch': 3, **TINY_ARCH},
        'network_d': {'type': 'ESRGANVGGDiscriminator', 'num_in_ch': 3, 'num_feat': 4, 'input_size': 32},
        'path': {'pretrain_network_g': None, 'resume_state': None},
        'train': {
            'ema_decay': 0.999,
            'optim_g': {'type': 'Adam', 'lr': 1e-4, 'betas': [0.9, 0.99]},
            'optim_d': {'type': 'Adam', 'lr': 1e-4, 'betas': [0.9, 0.99]},
            'scheduler': {'type': 'MultiStepLR', 'milestones': [3], 'gamma': 0.5},
            'total_iter': total_iter,
            'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1e-2, 'reduction': 'mean'},
            'perceptual_opt': {'type': 'ESRGANPerceptualLoss', 'layer': 'conv2_2', 'vgg_weights': 'random'},
            'gan_opt': {'type': 'ESRGANRaGANLoss', 'loss_weight': 5e-3},
        },
        'val': {'val_freq': 2, 'save_img': True,
                'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': 4, 'test_y_channel': True}}},
        'logger': {'print_freq': 1, 'save_checkpoint_freq': 2, 'use_tb_logger': True},
    }


def write_options(tmp_path, opt):
    path = tmp_path / f'{opt["name"]}.yml'
    path.write_text(yaml.safe_dump(opt))
    return str(path)


def read_log(exp):
    return ''.join(open(p).read() for p in sorted(glob.glob(str(exp / 'train_*.log'))))


def model_opt(tmp_path, model_type='ESRGANRaGANModel', **path):
    opt = {
        'name': 'unit', 'model_type': model_type, 'scale': 4, 'num_gpu': 0, 'dist': False, 'rank': 0,
        'world_size': 1, 'is_train': True,
        'network_g': {'type': 'ESRGANRRDBNet', 'num_in_ch': 3, 'num_out_ch': 3, 'scale': 4, **TINY_ARCH},
        'network_d': {'type': 'ESRGANVGGDiscriminator', 'num_in_ch': 3, 'num_feat': 4, 'input_size': 32},
        'path': {'models': str(tmp_path / 'models'), 'training_states': str(tmp_path / 'states'),
                 'visualization': str(tmp_path / 'vis'), 'resume_state': None, **path},
        'train': {
            'ema_decay': 0.9,
            'optim_g': {'type': 'Adam', 'lr': 1e-3, 'betas': [0.9, 0.99]},
            'optim_d': {'type': 'Adam', 'lr': 1e-3, 'betas': [0.9, 0.99]},
            'scheduler': {'type': 'MultiStepLR', 'milestones': [10], 'gamma': 0.5},
            'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1e-2, 'reduction': 'mean'},
            'perceptual_opt': {'type': 'ESRGANPerceptualLoss', 'layer': 'conv2_2', 'loss_weight': 1.0,
                               'vgg_weights': 'random'},
            'gan_opt': {'type': 'ESRGANRaGANLoss', 'loss_weight': 5e-3},
        },
    }
    if model_type == 'ESRGANPSNRModel':
        opt.pop('network_d')
        for key in ('optim_d', 'perceptual_opt', 'gan_opt'):
            opt['train'].pop(key)
    return opt


def batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {'lq': torch.rand(2, 3, 8, 8, generator=g), 'gt': torch.rand(2, 3, 32, 32, generator=g)}


# Training precision modes the precision tests run, as train: options.
MODES = {
    'fp32': {},
    'bf16': {'amp': 'bf16'},
    'bf16-channels_last': {'amp': 'bf16', 'channels_last': True},
    'compile-bf16-channels_last': {'amp': 'bf16', 'channels_last': True, 'compile': True},
}


def precision_opt(tmp_path, mode, model_type='ESRGANRaGANModel', **path):
    opt = model_opt(tmp_path, model_type, **path)
    if 'perceptual_opt' in opt['train']:
        opt['train']['perceptual_opt']['layer'] = 'conv1_1'  # bf16 VGG layers are slow on AVX2 CPUs
    opt['train'].update(MODES[mode])
    opt['val'] = {'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': 0}}}
    return opt
