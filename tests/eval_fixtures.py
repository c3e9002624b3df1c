"""Tiny test sets and generators for the evaluation tests (NIQE, LPIPS, results page, sweep).

NIQE fits statistics of 96x96 blocks and needs at least two with texture, so the images are 104x200 (two blocks
after the 4-pixel border) crops of photos bundled with scikit-image, and the generators pass the (nearest-
upsampled) input through plus a small random residual: a randomly initialised generator outputs a flat image,
for which NIQE is undefined.
"""
import os

import cv2
import numpy as np
import torch

from conftest import tiny_generator

GT_SHAPE = (104, 200)


def make_test_set(root) -> tuple[str, str]:
    """Two GT/LR pairs (x4, MATLAB bicubic as the benchmark sets) under ``root``; returns (gt dir, lq dir)."""
    from basicsr.utils.matlab_functions import imresize
    from skimage import data

    gt_dir, lq_dir = os.path.join(root, 'GT'), os.path.join(root, 'LR')
    os.makedirs(gt_dir, exist_ok=True)
    os.makedirs(lq_dir, exist_ok=True)
    h, w = GT_SHAPE
    for name, rgb, (top, left) in (('astronaut', data.astronaut(), (40, 150)), ('chelsea', data.chelsea(), (80, 120))):
        gt = np.ascontiguousarray(rgb[top:top + h, left:left + w, ::-1])
        lq = np.clip(np.round(imresize(gt / 255.0, 0.25) * 255), 0, 255).astype(np.uint8)
        cv2.imwrite(os.path.join(gt_dir, f'{name}.png'), gt)
        cv2.imwrite(os.path.join(lq_dir, f'{name}.png'), lq)
    return gt_dir, lq_dir


def passthrough_generator(seed: int) -> torch.nn.Module:
    """A tiny x4 generator whose output is the nearest-upsampled input plus a small seeded random residual."""
    net = tiny_generator(scale=4, seed=seed)
    with torch.no_grad():
        for name in ('conv_first', 'conv_up1', 'conv_up2', 'conv_hr', 'conv_last'):
            conv = getattr(net, name)
            conv.weight.mul_(0.05)
            conv.bias.zero_()
            for c in range(3):
                conv.weight[c, c, 1, 1] += 1.0
    return net


def save_alexnet_trunk(torch_home, seed: int = 0) -> dict:
    """A random AlexNet feature stack saved where torchvision caches the ImageNet file; returns its state dict.

    Only ``features.*`` is written (10 MB instead of 244 MB): LPIPS uses nothing else.
    """
    from torchvision.models import alexnet

    torch.manual_seed(seed)
    state = {f'features.{k}': v for k, v in alexnet(weights=None).features.state_dict().items()}
    folder = os.path.join(torch_home, 'hub', 'checkpoints')
    os.makedirs(folder, exist_ok=True)
    torch.save(state, os.path.join(folder, 'alexnet-owt-7be5be79.pth'))
    return state
