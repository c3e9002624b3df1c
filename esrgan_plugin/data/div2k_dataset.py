"""``DIV2KPairedDataset``: GT/LQ pairs from basicsr-format LMDBs or image folders, with aligned augmentation.

A drop-in for basicsr's ``PairedImageDataset`` (same option keys, same output
dict) built for ESRGAN's DIV2K training, with two differences that matter in
practice:

* Bad data fails when the dataset is built, with one message naming the
  option, key or file: missing paths, an LMDB without ``meta_info.txt`` or
  with a truncated ``data.mdb``, GT and LQ LMDBs from different
  ``prepare_data`` runs, GT and LQ key sets that differ, an LQ size that is
  not GT size / scale, a ``gt_size`` that no image can supply. basicsr finds most of these only when
  the bad sample is drawn, often hours into training.
* Reading is cheap: crop and augmentation work on uint8 arrays and only the
  final crop becomes float; LMDBs stored ``raw`` (see ``image_store``) copy
  only the cropped rows out of the memory map instead of decoding a PNG.

LMDB environments are opened lazily in the process that reads (each
DataLoader worker, each DDP rank), read-only and without locks; the dataset
itself holds only paths, keys and shapes, so it pickles cheaply to workers.
"""
from __future__ import annotations

import copy
import os
import random
from typing import Any, NamedTuple, Optional

import numpy as np
import torch
from basicsr.utils.registry import DATASET_REGISTRY
from torch.utils import data

from esrgan_plugin.data.image_store import DataError, Entry, decode, image_size, is_lmdb, list_images, read_image, read_meta_info
from esrgan_plugin.data.lmdb_check import check_lmdb_pair


class _Pair(NamedTuple):
    gt: Entry  # key: LMDB key, or file path for folders
    lq: Entry


def _option(opt: dict, name: str) -> Any:
    if opt.get(name) is None:
        raise DataError(f'dataset option {name!r} is missing; set it in the datasets section of the option file.')
    return opt[name]


def _pairs_from_lmdb(gt_root: str, lq_root: str, filename_tmpl: str) -> list[_Pair]:
    gt_entries, lq_entries = read_meta_info(gt_root), read_meta_info(lq_root)
    lq_by_key = {e.key: e for e in lq_entries}
    wanted = {filename_tmpl.format(e.key) for e in gt_entries}
    missing = [filename_tmpl.format(e.key) for e in gt_entries if filename_tmpl.format(e.key) not in lq_by_key]
    extra = [e.key for e in lq_entries if e.key not in wanted]
    if missing or extra:
        which, keys, where = (('missing from', missing, lq_root) if missing else ('only in', extra, lq_root))
        raise DataError(f'GT and LQ LMDBs hold different keys: {len(keys)} key(s) {which} {where}, e.g. '
                        f'{", ".join(keys[:5])}; rebuild both from the same images.')
    return [_Pair(e, lq_by_key[filename_tmpl.format(e.key)]) for e in gt_entries]


def _pairs_from_folders(gt_root: str, lq_root: str, filename_tmpl: str) -> list[_Pair]:
    gt_paths, lq_paths = list_images(gt_root), list_images(lq_root)
    if not gt_paths:
        raise DataError(f'no images found in dataroot_gt {gt_root}; point it at the GT images.')
    lq_by_stem = {os.path.splitext(os.path.basename(p))[0]: p for p in lq_paths}
    pairs, missing = [], []
    for gt_path in gt_paths:
        stem = os.path.splitext(os.path.basename(gt_path))[0]
        lq_path = lq_by_stem.get(filename_tmpl.format(stem))
        if lq_path is None:
            missing.append(filename_tmpl.format(stem))
            continue
        # Sizes from headers: checking thousands of files must not decode them.
        pairs.append(_Pair(Entry(gt_path, image_size(gt_path) + (3,)), Entry(lq_path, image_size(lq_path) + (3,))))
    if missing:
        raise DataError(f'{len(missing)} GT image(s) have no LQ image in {lq_root}, e.g. {", ".join(missing[:5])}; '
                        'add them, or set filename_tmpl if LQ names differ.')
    if len(lq_paths) != len(pairs):
        gt_names = {filename_tmpl.format(os.path.splitext(os.path.basename(p))[0]) for p in gt_paths}
        extra = [s for s in lq_by_stem if s not in gt_names]
        raise DataError(f'{len(extra)} LQ image(s) in {lq_root} have no GT image, e.g. {", ".join(extra[:5])}; '
                        'remove them or add their GT.')
    return pairs


@DATASET_REGISTRY.register()
class DIV2KPairedDataset(data.Dataset):
    """Paired GT/LQ images for super-resolution training and validation.

    Options (``PairedImageDataset``'s keys): ``dataroot_gt``, ``dataroot_lq``
    (``*.lmdb`` folders with ``io_backend: {type: lmdb}``, image folders with
    ``type: disk``), ``scale``, ``phase`` (``train`` crops and augments, any
    other value returns whole images), ``gt_size`` (train; a multiple of
    ``scale``), ``use_hflip``, ``use_rot`` (vertical flip and transpose),
    optional ``mean``/``std`` and ``filename_tmpl`` (LQ name from GT name,
    default ``'{}'``). The option dict is read once and never changed.

    Items: ``{'lq', 'gt'}`` float32 RGB CHW tensors in [0, 1] (normalized if
    ``mean``/``std``), ``{'lq_path', 'gt_path'}`` LMDB keys or file paths.
    """

    def __init__(self, opt: dict) -> None:
        super().__init__()
        # basicsr's launcher and models read dataset.opt (e.g. opt['name']); a copy, so ours stays untouched.
        self.opt = copy.deepcopy(opt)
        self.gt_root = str(_option(opt, 'dataroot_gt'))
        self.lq_root = str(_option(opt, 'dataroot_lq'))
        backend = opt.get('io_backend') or {'type': 'disk'}
        self.backend = backend.get('type', 'disk')
        if self.backend not in ('lmdb', 'disk'):
            raise DataError(f'io_backend type {self.backend!r} is not supported by DIV2KPairedDataset; '
                            'use lmdb or disk.')
        self.scale = int(_option(opt, 'scale'))
        self.phase = opt.get('phase', 'train')
        self.train = self.phase == 'train'
        self.use_hflip = bool(opt.get('use_hflip', False))
        self.use_rot = bool(opt.get('use_rot', False))
        self.mean: Optional[list] = opt.get('mean')
        self.std: Optional[list] = opt.get('std')
        self.filename_tmpl = opt.get('filename_tmpl') or '{}'
        if opt.get('color') not in (None, 'rgb'):
            raise DataError(f'dataset option color={opt["color"]!r} is not supported by DIV2KPairedDataset '
                            '(it returns RGB); remove it or use basicsr\'s PairedImageDataset.')
        self.gt_size = int(_option(opt, 'gt_size')) if self.train else None

        for name, root in (('dataroot_gt', self.gt_root), ('dataroot_lq', self.lq_root)):
            if not os.path.exists(root):
                raise DataError(f'{name} {root} does not exist; fix the path in the option file.')
            if (self.backend == 'lmdb') != is_lmdb(root):
                raise DataError(f'{name} {root} does not fit io_backend type {self.backend}: LMDB folders end in '
                                '.lmdb and need type lmdb, image folders need type disk.')
        if self.backend == 'lmdb':
            check_lmdb_pair(self.gt_root, self.lq_root)  # before any process maps a truncated file
            self.pairs = _pairs_from_lmdb(self.gt_root, self.lq_root, self.filename_tmpl)
        else:
            self.pairs = _pairs_from_folders(self.gt_root, self.lq_root, self.filename_tmpl)
        self._check_sizes()
        self._envs: Optional[dict] = None  # opened on first read, per process
        self._envs_pid: Optional[int] = None

    def _check_sizes(self) -> None:
        s = self.scale
        for p in self.pairs:
            (gh, gw), (lh, lw) = p.gt.shape[:2], p.lq.shape[:2]
            if (lh * s, lw * s) != (gh, gw):
                raise DataError(f'LQ {p.lq.key} is {lw}x{lh} but GT {p.gt.key} is {gw}x{gh}, which is not {s}x it; '
                                'check scale, or rebuild the data with python -m esrgan_plugin.prepare_data.')
        if self.train:
            assert self.gt_size > 0 and self.gt_size % s == 0, 'the checks: gt_size a positive multiple of scale'
            smallest = min(self.pairs, key=lambda p: min(p.gt.shape[:2]))
            if min(smallest.gt.shape[:2]) < self.gt_size:
                h, w = smallest.gt.shape[:2]
                raise DataError(f'gt_size {self.gt_size} is larger than GT {smallest.gt.key} ({w}x{h}); use a '
                                'smaller gt_size or larger sub-images.')

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state['_envs'] = None  # an LMDB environment must not cross a process boundary
        state['_envs_pid'] = None
        return state

    def _env(self, kind: str):
        if self._envs is None or self._envs_pid != os.getpid():
            import lmdb

            # readonly + lock=False: many readers (workers, DDP ranks) and no lock file needed;
            # readahead=False: random access into a map larger than RAM.
            self._envs = {k: lmdb.open(root, readonly=True, lock=False, readahead=False, meminit=False)
                          for k, root in (('gt', self.gt_root), ('lq', self.lq_root))}
            self._envs_pid = os.getpid()
        return self._envs[kind]

    def close(self) -> None:
        """Close this process's LMDB environments (LMDB allows one open environment per path per process)."""
        if self._envs is not None and self._envs_pid == os.getpid():
            for env in self._envs.values():
                env.close()
        self._envs = self._envs_pid = None

    def _read(self, kind: str, entry: Entry, region: Optional[tuple]) -> np.ndarray:
        """uint8 BGR HWC image, cut to ``region`` = (top, left, size) when given."""
        if self.backend == 'disk':
            img = read_image(entry.key)
        else:
            source = self.gt_root if kind == 'gt' else self.lq_root
            with self._env(kind).begin(buffers=entry.storage == 'raw') as txn:
                img = decode(txn.get(entry.key.encode('ascii')), entry, source)
                if entry.storage == 'raw' and region is not None:
                    top, left, size = region
                    # copy just the crop out of the memory map before the transaction ends
                    return img[top:top + size, left:left + size].copy()
                if entry.storage == 'raw':
                    img = img.copy()
        if img.shape[:2] != tuple(entry.shape[:2]):
            raise DataError(f'{entry.key} decodes to {img.shape[1]}x{img.shape[0]}, not the '
                            f'{entry.shape[1]}x{entry.shape[0]} recorded for it; rebuild the data.')
        if region is not None:
            top, left, size = region
            img = img[top:top + size, left:left + size]
        return img

    def __getitem__(self, index: int) -> dict:
        pair = self.pairs[index]
        s = self.scale
        if self.train:
            lq_size = self.gt_size // s
            lh, lw = pair.lq.shape[:2]
            top, left = random.randint(0, lh - lq_size), random.randint(0, lw - lq_size)
            lq = self._read('lq', pair.lq, (top, left, lq_size))
            gt = self._read('gt', pair.gt, (top * s, left * s, self.gt_size))
            # the same flips for both, drawn as basicsr's augment() draws them
            hflip = self.use_hflip and random.random() < 0.5
            vflip = self.use_rot and random.random() < 0.5
            transpose = self.use_rot and random.random() < 0.5
            gt, lq = (_augment(img, hflip, vflip, transpose) for img in (gt, lq))
        else:
            gt, lq = self._read('gt', pair.gt, None), self._read('lq', pair.lq, None)
        gt_t, lq_t = _to_tensor(gt), _to_tensor(lq)
        if self.mean is not None or self.std is not None:
            from torchvision.transforms.functional import normalize
            mean, std = self.mean or [0.0, 0.0, 0.0], self.std or [1.0, 1.0, 1.0]
            normalize(gt_t, mean, std, inplace=True)
            normalize(lq_t, mean, std, inplace=True)
        return {'lq': lq_t, 'gt': gt_t, 'lq_path': pair.lq.key, 'gt_path': pair.gt.key}

    def __len__(self) -> int:
        return len(self.pairs)


def _augment(img: np.ndarray, hflip: bool, vflip: bool, transpose: bool) -> np.ndarray:
    # views only; the copy happens once, in _to_tensor
    if hflip:
        img = img[:, ::-1]
    if vflip:
        img = img[::-1]
    if transpose:
        img = img.transpose(1, 0, 2)
    return img


def _to_tensor(img: np.ndarray) -> torch.Tensor:
    """uint8 BGR HWC -> float32 RGB CHW in [0, 1], equal to basicsr's imfrombytes(float32) + img2tensor."""
    # numpy, not torch ops: in the main process (num_worker_per_gpu 0) torch's intra-op thread pool
    # made this conversion 10x slower than the whole PNG decode.
    chw = img[:, :, ::-1].transpose(2, 0, 1).astype(np.float32, order='C')
    chw /= 255.0
    return torch.from_numpy(chw)
