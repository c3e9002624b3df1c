"""A fixed real-world test set: GT images and LR made from them by Real-ESRGAN's degradations, with a fixed seed.

The library behind ``python -m esrgan_plugin.prepare_data HR_DIR OUT_DIR --realworld-test [--seed S]``. Training
draws new degradations every batch; scoring needs the same degraded inputs for every run and every model, so
here each image's draws (its kernels, resizes, noise, JPEG qualities) come from a seed made of ``seed`` and the
image's file name alone: the same command writes the same files, and adding an image to the folder changes no
other image's LR.

Each GT is the centred square of side ``crop`` of its HR image (or the largest square that fits), cut to a
multiple of the scale; the whole square is degraded and kept (no random crop), with Real-ESRGAN's settings
(``choices.REALWORLD_DEFAULTS``) less the sharpening of the GT (``gt_usm``: a training target, not part of the
degradation). Output: ``gt/`` and ``lq_x<scale>/`` of PNGs under OUT_DIR, the folders ``DIV2KPairedDataset``
reads with ``io_backend: disk``, written together or not at all (``fileio.atomic_dirs``).
"""
from __future__ import annotations

import dataclasses
import os
from typing import Optional

import numpy as np
import torch

from esrgan_plugin import fileio
from esrgan_plugin.data.image_store import IMAGE_EXTENSIONS, DataError, check_key, encode, list_images, read_image
from esrgan_plugin.data.realworld_degradation import (RealWorldSettings, degrade_batch, draw_kernels, seeded,
                                                      smallest_region)

DEFAULT_SEED = 0


def image_seed(seed: int, name: str) -> int:
    """The seed of one image's draws: a function of the set's seed and the image's file name only."""
    return int(np.random.SeedSequence([seed, *name.encode('utf-8')]).generate_state(1, np.uint64)[0] >> 1)


def centred_square(img: np.ndarray, side: int, scale: int) -> np.ndarray:
    """The centred square of ``side`` (at most the image's shorter side), cut to a multiple of ``scale``."""
    h, w = img.shape[:2]
    side = min(side, h, w) // scale * scale
    top, left = (h - side) // 2, (w - side) // 2
    return img[top:top + side, left:left + side]


def degrade_image(gt_bgr: np.ndarray, settings: RealWorldSettings, scale: int, seed: int) -> np.ndarray:
    """The LR (uint8 BGR) of a square uint8 BGR GT, drawn with every generator seeded by ``seed``."""
    from basicsr.utils import img2tensor, tensor2img

    side = gt_bgr.shape[0]
    whole = dataclasses.replace(settings, gt_usm=False, gt_size=side, crop_pad_size=side)
    gt = img2tensor(gt_bgr.astype(np.float32) / 255., bgr2rgb=True, float32=True)[None]
    with torch.no_grad(), seeded(seed, torch.device('cpu')):
        kernels = {key: value[None] for key, value in draw_kernels(whole).items()}
        batch = degrade_batch(gt, kernels, whole, scale)
    return tensor2img(batch.lq, rgb2bgr=True)  # the LR is on 8-bit levels already: exact


def prepare_realworld_test(hr_dir: str, out_dir: str, scale: int = 4, crop: int = 480, seed: int = DEFAULT_SEED,
                           settings: Optional[RealWorldSettings] = None, png_level: int = 1,
                           overwrite: bool = False, progress: bool = True) -> tuple[str, str, int]:
    """Write ``gt/`` and ``lq_x<scale>/`` under ``out_dir``; returns (gt folder, LR folder, number of images).

    Raises:
        DataError: bad input or options, or existing outputs without ``overwrite``; nothing is written then.
    """
    from tqdm import tqdm

    if scale < 1 or not 0 <= png_level <= 9:
        raise DataError(f'the scale must be positive and the PNG level 0-9, got {scale} and {png_level}.')
    if not os.path.isdir(hr_dir):
        raise DataError(f'HR folder {hr_dir} does not exist; pass the folder that holds the HR images.')
    paths = list_images(hr_dir)
    if not paths:
        raise DataError(f'no images ({", ".join(IMAGE_EXTENSIONS)}) found in {hr_dir}; pass the folder that '
                        'holds the HR images.')
    for path in paths:
        check_key(os.path.splitext(os.path.basename(path))[0], path)
    settings = settings or RealWorldSettings.from_options({})
    smallest = smallest_region(dataclasses.replace(settings, gt_usm=False), scale)  # degrade_image: no USM
    targets = [os.path.abspath(os.path.join(out_dir, name)) for name in ('gt', f'lq_x{scale}')]
    existing = [t for t in targets if os.path.exists(t)]
    if existing and not overwrite:
        raise DataError(f'{existing[0]} already exists; pass --overwrite to replace it or choose another output '
                        'folder.')
    with fileio.atomic_dirs(targets, overwrite=overwrite) as partial:
        for path in tqdm(paths, unit='image', desc='realworld test set', disable=not progress):
            name = os.path.splitext(os.path.basename(path))[0]
            gt = centred_square(read_image(path), crop, scale)
            if gt.shape[0] < smallest:
                raise DataError(f'{path}: its square of {gt.shape[0]}x{gt.shape[0]} is smaller than the '
                                f'{smallest}x{smallest} the degradations need; remove it or raise --crop.')
            lq = degrade_image(gt, settings, scale, image_seed(seed, name))
            for target, img in zip(targets, (gt, lq)):
                fileio.save_bytes(encode(img, 'png', png_level), os.path.join(partial[target], f'{name}.png'))
    return targets[0], targets[1], len(paths)
