"""``GTOnlyDataset``: training from GT images alone, the LR made on the fly (real-world or bicubic).

Two modes, by the option ``degradation`` (esrgan_plugin.choices.DEGRADATIONS):

* ``realworld`` (Real-ESRGAN's): each item is a ``crop_pad_size`` GT region and its three blur kernels, as
  basicsr's ``RealESRGANDataset`` returns them; the model degrades the batch on its device
  (``esrgan_plugin/data/realworld_degradation.py``: ``degrade_batch``) and crops ``gt_size`` from it.
* ``bicubic`` (the ESRGAN paper's): each item is a ``gt_size`` GT crop and its MATLAB-bicubic LR, made at load
  time by the same function ``prepare_data`` uses, so no LR images need preparing. Outside the train phase the
  whole image is returned, cut to a multiple of ``scale``, with its LR.

GT comes from an image folder or a basicsr-format LMDB (``esrgan_plugin/data/image_store.py``). Images are made
usable or named in one line, when the dataset is built or when the image is read (docs/data.md#gt-only-datasets):
grey images become three equal channels, an alpha channel is dropped, 16-bit images are scaled to [0, 1] (the
real-world mode keeps their precision; the bicubic mode rounds to 8 bits, as its LR is 8-bit), an image smaller
than ``gt_size`` or one that cannot be read is a DataError naming the file, never replaced by another. Realworld
GT between ``gt_size`` and ``crop_pad_size`` is padded by reflection to ``crop_pad_size``, as Real-ESRGAN pads.

Random choices (crop, flips, kernels) come from the global Python and NumPy generators, which the training data
order seeds per sample (``esrgan_plugin/training/train_data.py``).
"""
from __future__ import annotations

import copy
import os
import random
from typing import Any, Optional

import cv2
import numpy as np
import torch
from basicsr.data.transforms import augment
from basicsr.utils.registry import DATASET_REGISTRY
from torch.utils import data

from esrgan_plugin.choices import DEGRADATIONS
from esrgan_plugin.data.bicubic import matlab_bicubic
from esrgan_plugin.data.image_store import DataError, Entry, decode, image_size, is_lmdb, list_images, read_meta_info
from esrgan_plugin.data.realworld_degradation import RealWorldSettings, draw_kernels, smallest_region

# Full-scale values of the pixel types read: 8-bit and 16-bit images.
_FULL_SCALE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


def _option(opt: dict, name: str) -> Any:
    if opt.get(name) is None:
        raise DataError(f'dataset option {name!r} is missing; set it in the datasets section of the option file.')
    return opt[name]


def three_channels(img: np.ndarray, source: str) -> np.ndarray:
    """An image as read by OpenCV (any channel count, 8 or 16 bit) as 3-channel BGR of the same type."""
    if img.dtype not in _FULL_SCALE:
        raise DataError(f'{source} has {img.dtype} pixels; GT images must be 8- or 16-bit, convert it.')
    if img.ndim == 2:
        img = img[:, :, None]
    if img.shape[2] in (1, 2):  # grey, grey + alpha
        return np.repeat(img[:, :, :1], 3, axis=2)
    if img.shape[2] == 4:  # BGRA: the alpha channel is dropped
        return img[:, :, :3]
    if img.shape[2] != 3:
        raise DataError(f'{source} has {img.shape[2]} channels; GT images must be grey, RGB or RGBA.')
    return img


def to_float(img: np.ndarray) -> np.ndarray:
    """8- or 16-bit values scaled to float32 in [0, 1]."""
    return img.astype(np.float32) / _FULL_SCALE[img.dtype]


def to_uint8(img: np.ndarray) -> np.ndarray:
    """8-bit values, 16-bit ones rounded to the nearest 8-bit level."""
    return img if img.dtype == np.uint8 else np.round(img.astype(np.float64) / 257.0).astype(np.uint8)


def _to_tensor(img: np.ndarray) -> torch.Tensor:
    """BGR HWC (uint8 or float in [0, 1]) -> float32 RGB CHW in [0, 1]."""
    chw = np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1))
    return torch.from_numpy(to_float(chw) if chw.dtype != np.float32 else chw)


@DATASET_REGISTRY.register()
class GTOnlyDataset(data.Dataset):
    """GT images, their LR made on the fly (Real-ESRGAN's degradations or the paper's bicubic).

    Options: ``dataroot_gt`` (an image folder with ``io_backend: {type: disk}``, or a ``*.lmdb`` with
    ``type: lmdb``), ``scale``, ``phase``, ``gt_size`` (train), ``use_hflip``, ``use_rot``, ``degradation``
    (``realworld``, the default, or ``bicubic``) and, for realworld, the settings of
    :class:`~esrgan_plugin.data.realworld_degradation.RealWorldSettings` (``crop_pad_size`` among them).
    The option dict is read once and never changed.

    Items: realworld ``{'gt', 'kernel1', 'kernel2', 'sinc_kernel', 'kernel1_type', 'kernel2_type', 'gt_path'}``;
    bicubic ``{'lq', 'gt', 'lq_path', 'gt_path'}``; images are float32 RGB CHW tensors in [0, 1].
    """

    def __init__(self, opt: dict) -> None:
        super().__init__()
        self.opt = copy.deepcopy(opt)  # basicsr's launcher reads dataset.opt; ours stays untouched
        self.gt_root = str(_option(opt, 'dataroot_gt'))
        self.backend = (opt.get('io_backend') or {'type': 'disk'}).get('type', 'disk')
        self.scale = int(_option(opt, 'scale'))
        self.train = opt.get('phase', 'train') == 'train'
        self.use_hflip = bool(opt.get('use_hflip', False))
        self.use_rot = bool(opt.get('use_rot', False))
        self.degradation = opt.get('degradation', 'realworld')
        if self.degradation not in DEGRADATIONS:
            raise DataError(f'dataset option degradation={self.degradation!r} is not one of '
                            f'{", ".join(DEGRADATIONS)}; fix the option file.')
        if self.degradation == 'realworld' and not self.train:
            raise DataError('GTOnlyDataset with degradation realworld makes training pairs only; validate on '
                            'prepared pairs (DIV2KPairedDataset) or use degradation bicubic.')
        self.gt_size = int(_option(opt, 'gt_size')) if self.train else None
        self.settings = RealWorldSettings.from_options(opt) if self.degradation == 'realworld' else None
        if self.settings is not None:
            self._check_region()
        if not os.path.exists(self.gt_root):
            raise DataError(f'dataroot_gt {self.gt_root} does not exist; fix the path in the option file.')
        if (self.backend == 'lmdb') != is_lmdb(self.gt_root):
            raise DataError(f'dataroot_gt {self.gt_root} does not fit io_backend type {self.backend}: LMDB folders '
                            'end in .lmdb and need type lmdb, image folders need type disk.')
        self.entries = self._list_entries()
        self._check_sizes()
        self._env = None  # the LMDB environment, opened on first read in each process
        self._env_pid: Optional[int] = None

    def _check_region(self) -> None:
        region, smallest = self.settings.crop_pad_size, smallest_region(self.settings, self.scale)
        if region < self.gt_size:
            raise DataError(f'crop_pad_size {region} is smaller than gt_size {self.gt_size}; the gt_size crop is '
                            'taken from it after degradation, raise it.')
        if region < smallest:
            raise DataError(f'crop_pad_size {region} is too small for the blur kernels and resize_range at scale '
                            f'{self.scale}: at least {smallest} is needed; raise it (Real-ESRGAN: 400).')

    def _list_entries(self) -> list[Entry]:
        if self.backend == 'lmdb':
            return read_meta_info(self.gt_root)
        paths = list_images(self.gt_root)
        if not paths:
            raise DataError(f'no images found in dataroot_gt {self.gt_root}; point it at the GT images.')
        # sizes from the headers (unreadable files are named here): a large folder is not decoded to check it
        return [Entry(p, image_size(p) + (3,)) for p in paths]

    def _check_sizes(self) -> None:
        smallest = min(self.entries, key=lambda e: min(e.shape[:2]))
        h, w = smallest.shape[:2]
        needed = self.gt_size if self.train else self.scale
        if min(h, w) < needed:
            raise DataError(f'GT {smallest.key} is {w}x{h}, smaller than {"gt_size" if self.train else "scale"} '
                            f'{needed}; remove it or use a smaller gt_size.')

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state['_env'] = state['_env_pid'] = None  # an LMDB environment must not cross a process boundary
        return state

    def close(self) -> None:
        """Close this process's LMDB environment (LMDB allows one open environment per path per process)."""
        if self._env is not None and self._env_pid == os.getpid():
            self._env.close()
        self._env = self._env_pid = None

    def _read(self, entry: Entry) -> np.ndarray:
        """The stored image, 3-channel BGR, 8- or 16-bit; a file that cannot be read is named."""
        if self.backend == 'disk':
            img = cv2.imread(entry.key, cv2.IMREAD_UNCHANGED)  # UNCHANGED: keep 16 bits (COLOR cuts them to 8)
            if img is None:
                raise DataError(f'{entry.key} could not be decoded; replace or remove the file.')
            return three_channels(img, entry.key)
        if self._env is None or self._env_pid != os.getpid():
            import lmdb

            self._env = lmdb.open(self.gt_root, readonly=True, lock=False, readahead=False, meminit=False)
            self._env_pid = os.getpid()
        with self._env.begin() as txn:
            return decode(txn.get(entry.key.encode('ascii')), entry, self.gt_root).copy()

    def _random_crop(self, img: np.ndarray, size: int) -> np.ndarray:
        h, w = img.shape[:2]
        top, left = random.randint(0, max(0, h - size)), random.randint(0, max(0, w - size))
        return img[top:top + size, left:left + size]

    def __getitem__(self, index: int) -> dict:
        entry = self.entries[index]
        img = self._read(entry)
        if self.degradation == 'bicubic':
            return self._bicubic_item(img, entry.key)
        size = self.settings.crop_pad_size
        gt = to_float(self._random_crop(img, size))
        pad_h, pad_w = max(0, size - gt.shape[0]), max(0, size - gt.shape[1])
        if pad_h or pad_w:  # as RealESRGANDataset: reflect smaller images to the full region
            gt = cv2.copyMakeBorder(gt, 0, pad_h, 0, pad_w, cv2.BORDER_REFLECT_101)
        gt = augment(gt, self.use_hflip, self.use_rot)
        return {'gt': _to_tensor(gt), **draw_kernels(self.settings), 'gt_path': entry.key}

    def _bicubic_item(self, img: np.ndarray, key: str) -> dict:
        img = to_uint8(img)
        if self.train:
            gt = np.ascontiguousarray(augment(self._random_crop(img, self.gt_size).copy(), self.use_hflip,
                                              self.use_rot))
        else:
            h, w = img.shape[:2]
            gt = img[:h - h % self.scale, :w - w % self.scale]
        lq = matlab_bicubic(gt, 1 / self.scale)
        return {'lq': _to_tensor(lq), 'gt': _to_tensor(gt), 'lq_path': key, 'gt_path': key}

    def __len__(self) -> int:
        return len(self.entries)
