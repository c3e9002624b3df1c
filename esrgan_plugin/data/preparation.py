"""Turn a folder of HR images into the paired GT/LQ data ESRGAN trains on.

The library behind ``python -m esrgan_plugin.prepare_data HR_DIR OUT_DIR [--lr-dir DIR] [--whole-image] ...``.

Training (DIV2K, as in the paper) reads sub-images: every HR image is cut into
``crop``-sized windows every ``step`` pixels, and the LR image into windows of
``crop/scale`` every ``step/scale`` pixels at the same places. The HR image is
first cropped to a multiple of the scale at its bottom/right edge, so that
every window, including the last one placed flush with the edge, lies on the
LR pixel grid. LR comes from an official LR folder when given (DIV2K's
``0001x4.png`` naming or the HR file's own name), otherwise from MATLAB-style
bicubic downscaling (``data.bicubic``), which is what the benchmark LR sets
were made with; PIL/OpenCV bicubic differ from it.

Test sets use ``whole_image``: one pair per image, no cutting.

Output (under OUT_DIR): ``gt.lmdb`` and ``lq_x<scale>.lmdb`` in basicsr's LMDB
format, and/or the folders ``gt/`` and ``lq_x<scale>/`` of PNGs. Each output
is built under ``<name>.partial`` with ``meta_info.txt`` written last, and
the finished outputs replace the old ones together (``fileio.atomic_dirs``),
so an interrupted run never leaves one that looks done, nor a new LQ beside
an old GT. Both ``meta_info.txt`` files carry the run's build identifier,
which the dataset compares. A full disk stops the run with one line and
leaves the previous outputs as they were.
"""
from __future__ import annotations

import contextlib
import functools
import itertools
import multiprocessing
import os
import secrets
from dataclasses import dataclass
from typing import Iterator, NamedTuple, Optional

from esrgan_plugin import fileio
from esrgan_plugin.data.bicubic import matlab_bicubic
from esrgan_plugin.data.image_store import IMAGE_EXTENSIONS, META_INFO, STORAGE_FORMATS, DataError, Entry, check_key, encode, image_size, list_images, meta_info_text, read_image

# Commit the LMDB write transaction after this many values: large enough to be
# fast, small enough that one transaction never holds gigabytes of dirty pages.
_COMMIT_EVERY = 500


@dataclass(frozen=True)
class Prepared:
    """Where :func:`prepare` put its outputs (None for a form that was not asked for)."""
    gt_lmdb: Optional[str]
    lq_lmdb: Optional[str]
    gt_folder: Optional[str]
    lq_folder: Optional[str]
    num_pairs: int

    @property
    def dataroot_gt(self) -> str:
        """The GT root to put in an option file: the LMDB when one was made, else the folder."""
        return self.gt_lmdb or self.gt_folder

    @property
    def dataroot_lq(self) -> str:
        return self.lq_lmdb or self.lq_folder


class _Job(NamedTuple):
    """One HR image to process; everything here was checked from file headers before any work starts."""
    key: str
    hr_path: str
    lr_path: Optional[str]
    height: int  # HR size cropped to a multiple of the scale
    width: int


class _Settings(NamedTuple):
    scale: int
    crop: int
    step: int
    thresh: int
    whole_image: bool
    storage: str
    png_level: int


class _Piece(NamedTuple):
    key: str
    gt: bytes
    gt_shape: tuple
    lq: bytes
    lq_shape: tuple


def window_starts(length: int, crop: int, step: int, thresh: int) -> list[int]:
    """Start offsets of windows along one axis, as basicsr's extract_subimages places them.

    Windows every ``step`` pixels; if the strip left after the last one is wider
    than ``thresh``, one more window flush with the far edge covers it.
    """
    if length < crop:
        return []
    starts = list(range(0, length - crop + 1, step))
    if length - (starts[-1] + crop) > thresh:
        starts.append(length - crop)
    return starts


def _find_lr(lr_dir: str, stem: str, scale: int) -> Optional[str]:
    # DIV2K names LR files <stem>x<scale>; benchmark sets reuse the HR name.
    for name in (f'{stem}x{scale}', stem):
        for ext in IMAGE_EXTENSIONS:
            for candidate in (name + ext, name + ext.upper()):
                path = os.path.join(lr_dir, candidate)
                if os.path.isfile(path):
                    return path
    return None


def _plan(hr_dir: str, lr_dir: Optional[str], s: _Settings) -> tuple[list[_Job], int]:
    """Check every input from file headers and return the jobs and the number of pairs they make."""
    from basicsr.utils import get_root_logger

    logger = get_root_logger()
    if not os.path.isdir(hr_dir):
        raise DataError(f'HR folder {hr_dir} does not exist; pass the folder that holds the HR images.')
    if lr_dir is not None and not os.path.isdir(lr_dir):
        raise DataError(f'LR folder {lr_dir} does not exist; pass the official LR folder (e.g. '
                        'DIV2K_train_LR_bicubic/X4) or leave --lr-dir out to make LR with MATLAB bicubic.')
    hr_paths = list_images(hr_dir)
    if not hr_paths:
        raise DataError(f'no images ({", ".join(IMAGE_EXTENSIONS)}) found in {hr_dir}; pass the folder that '
                        'holds the HR images.')
    jobs, seen, too_small, pairs = [], {}, [], 0
    for hr_path in hr_paths:
        stem = os.path.splitext(os.path.basename(hr_path))[0]
        check_key(stem, hr_path)
        if stem in seen:
            raise DataError(f'{seen[stem]} and {hr_path} would both be stored as {stem!r}; rename one of them.')
        seen[stem] = hr_path
        h, w = image_size(hr_path)
        lr_path = None
        if lr_dir is not None:
            lr_path = _find_lr(lr_dir, stem, s.scale)
            if lr_path is None:
                raise DataError(f'no LR image for {hr_path} in {lr_dir} (looked for {stem}x{s.scale}.png and '
                                f'{stem}.png); add it or leave --lr-dir out to make LR with MATLAB bicubic.')
            lr_h, lr_w = image_size(lr_path)
            if (lr_h, lr_w) != (h // s.scale, w // s.scale):
                raise DataError(f'LR image {lr_path} is {lr_w}x{lr_h} but HR {hr_path} is {w}x{h}, so x{s.scale} '
                                f'LR must be {w // s.scale}x{h // s.scale}; check --scale and --lr-dir.')
        hm, wm = h - h % s.scale, w - w % s.scale
        if s.whole_image:
            if hm == 0 or wm == 0:
                raise DataError(f'{hr_path} ({w}x{h}) is smaller than the scale {s.scale}; remove it.')
            count = 1
        else:
            count = len(window_starts(hm, s.crop, s.step, s.thresh)) * len(window_starts(wm, s.crop, s.step,
                                                                                             s.thresh))
        if count == 0:
            too_small.append(os.path.basename(hr_path))
            continue
        pairs += count
        jobs.append(_Job(stem, hr_path, lr_path, hm, wm))
    if too_small:
        logger.warning(f'{len(too_small)} image(s) smaller than the crop size {s.crop} are skipped: '
                       f'{", ".join(too_small[:5])}{" ..." if len(too_small) > 5 else ""}')
    if not jobs:
        raise DataError(f'every image in {hr_dir} is smaller than the crop size {s.crop}; use a smaller --crop '
                        'or --whole-image.')
    return jobs, pairs


def _process_image(s: _Settings, job: _Job) -> list[_Piece]:
    """Read one HR image (and its LR), cut both into aligned windows, encode them. Runs in a worker."""
    hr = read_image(job.hr_path)
    if hr.shape[0] < job.height or hr.shape[1] < job.width:
        raise DataError(f'{job.hr_path} decodes to {hr.shape[1]}x{hr.shape[0]}, smaller than its header says; '
                        'replace the file.')
    hr = hr[:job.height, :job.width]
    lr_h, lr_w = job.height // s.scale, job.width // s.scale
    if job.lr_path is None:
        lr = matlab_bicubic(hr, 1.0 / s.scale)
    else:
        lr = read_image(job.lr_path)
        if lr.shape[:2] != (lr_h, lr_w):
            raise DataError(f'LR image {job.lr_path} decodes to {lr.shape[1]}x{lr.shape[0]}, not {lr_w}x{lr_h}; '
                            'replace the file.')
    if s.whole_image:
        windows = [(job.key, 0, 0, job.height, job.width)]
    else:
        ys = window_starts(job.height, s.crop, s.step, s.thresh)
        xs = window_starts(job.width, s.crop, s.step, s.thresh)
        windows = [(f'{job.key}_s{i:03d}', y, x, s.crop, s.crop)
                   for i, (y, x) in enumerate(itertools.product(ys, xs), 1)]
    pieces = []
    for key, y, x, ch, cw in windows:
        gt = hr[y:y + ch, x:x + cw]
        r = s.scale
        lq = lr[y // r:(y + ch) // r, x // r:(x + cw) // r]
        pieces.append(_Piece(key, encode(gt, s.storage, s.png_level), gt.shape,
                             encode(lq, s.storage, s.png_level), lq.shape))
    return pieces


def _init_worker() -> None:
    # Workers already run in parallel; nested thread pools would only oversubscribe the cores.
    import cv2
    import torch

    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def _results(jobs: list[_Job], s: _Settings, workers: int, stack: contextlib.ExitStack) -> Iterator[list[_Piece]]:
    task = functools.partial(_process_image, s)
    if workers <= 1:
        return map(task, jobs)
    # spawn, not fork: a caller that already used OpenCV or torch has live thread pools, and a
    # forked child inherits their locks and can hang forever (seen with the demo). Spawned
    # workers pay one import of torch/basicsr each, which is small next to the image work.
    ctx = multiprocessing.get_context('spawn')
    pool = stack.enter_context(ctx.Pool(workers, initializer=_init_worker))
    return pool.imap(task, jobs)  # in order, so meta_info.txt lists keys sorted


class _LmdbOut:
    """One LMDB being built inside its ``.partial`` folder, to become ``target``."""

    def __init__(self, folder: str, target: str, map_size: int, build_id: str) -> None:
        import lmdb

        self.folder = folder
        self.build_id = build_id
        # LMDB reports a full disk as "Input/output error" (a short write); name the output and the cause.
        self.full_disk = functools.partial(fileio.reporting_full_disk, target, previous_kept=os.path.exists(target))
        with self.full_disk():
            self.env = lmdb.open(folder, map_size=map_size, meminit=False)
            self.txn = self.env.begin(write=True)
        self.pending = 0
        self.entries: list[Entry] = []

    def put(self, key: str, value: bytes, entry: Entry) -> None:
        with self.full_disk():
            self.txn.put(key.encode('ascii'), value)
            self.entries.append(entry)
            self.pending += 1
            if self.pending >= _COMMIT_EVERY:
                self.txn.commit()
                self.txn = self.env.begin(write=True)
                self.pending = 0

    def finish(self) -> None:
        with self.full_disk():
            self.txn.commit()
            self.env.sync()
            self.env.close()
            self.env = None
            # meta_info.txt last: readers (ours and basicsr's) need it, so a database without it is never used.
            fileio.save_text(meta_info_text(self.entries, self.build_id), os.path.join(self.folder, META_INFO))

    def abort(self) -> None:
        import lmdb

        if self.env is not None:
            with contextlib.suppress(lmdb.Error):  # a transaction whose commit failed is already gone
                self.txn.abort()
            self.env.close()
            self.env = None


def prepare(hr_dir: str,
            out_dir: str,
            scale: int = 4,
            crop: int = 480,
            step: int = 240,
            thresh: int = 0,
            lr_dir: Optional[str] = None,
            whole_image: bool = False,
            lmdb: bool = True,
            folders: bool = False,
            storage: str = 'png',
            png_level: int = 1,
            workers: Optional[int] = None,
            overwrite: bool = False,
            progress: bool = True) -> Prepared:
    """Make GT/LQ training (or test) pairs from the HR images in ``hr_dir``; see the module docstring.

    Args:
        hr_dir: folder of HR images (png, jpg, bmp, tif, webp); file names become keys.
        out_dir: where ``gt.lmdb``/``lq_x<scale>.lmdb`` and/or ``gt/``/``lq_x<scale>/`` are written.
        scale: LR is HR / scale.
        crop, step, thresh: HR sub-image size, stride, and the widest edge strip left uncovered
            (wider strips get one more window flush with the edge). Multiples of ``scale`` (not thresh).
        lr_dir: official LR images (``0001x4.png`` or ``0001.png``) instead of MATLAB bicubic.
        whole_image: one pair per image (HR cropped to a multiple of ``scale``), for test sets.
        lmdb, folders: which output forms to write (at least one).
        storage: ``'png'`` (basicsr's format) or ``'raw'`` (uint8 arrays; LMDB only, read by our dataset only).
        png_level: PNG compression level 0-9.
        workers: processes; None uses every core, 1 runs in this process.
        overwrite: replace existing outputs (only once the new ones are complete).
        progress: show a tqdm bar.

    Returns:
        :class:`Prepared` with the output paths (None for forms not written) and the number of pairs.

    Raises:
        DataError: bad input or options, or an existing output without ``overwrite``; nothing is written then.
    """
    settings = _checked_settings(scale, crop, step, thresh, whole_image, lmdb, folders, storage, png_level)
    targets = _output_targets(os.path.abspath(out_dir), settings.scale, lmdb, folders, overwrite)
    jobs, num_pairs = _plan(os.path.abspath(hr_dir), lr_dir and os.path.abspath(lr_dir), settings)
    workers = min(os.cpu_count() or 1, len(jobs)) if workers is None else max(1, min(int(workers), len(jobs)))
    _write_outputs(jobs, num_pairs, settings, targets, workers, overwrite, progress)
    return Prepared(targets.get('gt_lmdb'), targets.get('lq_lmdb'), targets.get('gt_folder'),
                    targets.get('lq_folder'), num_pairs)


def _checked_settings(scale: int, crop: int, step: int, thresh: int, whole_image: bool, lmdb: bool, folders: bool,
                      storage: str, png_level: int) -> _Settings:
    """The arguments of :func:`prepare` as settings; raises DataError for values that cannot work."""
    scale, crop, step, thresh = int(scale), int(crop), int(step), int(thresh)
    if scale < 1:
        raise DataError(f'scale must be a positive integer, got {scale}.')
    if not whole_image:
        if crop <= 0 or step <= 0 or thresh < 0:
            raise DataError(f'crop ({crop}) and step ({step}) must be positive and thresh ({thresh}) not negative.')
        if crop % scale or step % scale:
            raise DataError(f'crop ({crop}) and step ({step}) must be multiples of the scale ({scale}) so that '
                            'LR windows line up with HR windows; change them.')
    if not (lmdb or folders):
        raise DataError('nothing to write: ask for LMDB and/or folder output.')
    if storage not in STORAGE_FORMATS:
        raise DataError(f'storage must be one of {", ".join(STORAGE_FORMATS)}, got {storage!r}.')
    if storage == 'raw' and folders:
        raise DataError('raw storage exists only inside LMDBs; write folders with PNG storage.')
    if not 0 <= int(png_level) <= 9:
        raise DataError(f'PNG compression level must be 0-9, got {png_level}.')
    return _Settings(scale, crop, step, thresh, whole_image, storage, int(png_level))


def _output_targets(out_dir: str, scale: int, lmdb: bool, folders: bool, overwrite: bool) -> dict[str, str]:
    """The output paths by form (``gt_lmdb``, ``lq_folder``, ...), after finishing what an interrupted
    ``--overwrite`` run left half replaced; existing outputs are refused without ``overwrite``."""
    if os.path.isdir(out_dir) and fileio.finish_replacing(out_dir):
        from basicsr.utils import get_root_logger
        get_root_logger().warning(f'completed the replacement of the outputs in {out_dir} that an interrupted '
                                  'prepare_data --overwrite had started.')
    names = {'gt': 'gt', 'lq': f'lq_x{scale}'}
    targets = {}
    if lmdb:
        targets.update({f'{k}_lmdb': os.path.join(out_dir, f'{n}.lmdb') for k, n in names.items()})
    if folders:
        targets.update({f'{k}_folder': os.path.join(out_dir, n) for k, n in names.items()})
    existing = [p for p in targets.values() if os.path.exists(p)]
    if existing and not overwrite:
        raise DataError(f'{existing[0]} already exists; pass --overwrite (overwrite=True) to replace it or choose '
                        'another output folder.')
    return targets


def _lmdb_map_size(jobs: list[_Job], num_pairs: int, s: _Settings) -> int:
    """Raw bytes bound the data (PNG never grows much past them), plus LMDB's per-value page rounding; the map
    is a sparse file, so a generous bound costs no disk."""
    gt_bytes = sum(j.height * j.width * 3 for j in jobs) if s.whole_image else num_pairs * s.crop * s.crop * 3
    return 2 * gt_bytes + 2 * num_pairs * 8192 + (64 << 20)


def _write_outputs(jobs: list[_Job], num_pairs: int, s: _Settings, targets: dict[str, str], workers: int,
                   overwrite: bool, progress: bool) -> None:
    """Process the jobs and write every output form inside ``.partial`` folders that replace ``targets`` together."""
    from tqdm import tqdm

    with contextlib.ExitStack() as stack:
        # Workers first: forked before any LMDB is open, so no child inherits a live environment.
        results = _results(jobs, s, workers, stack)
        # All outputs replace the old ones together: a GT from this run never sits beside an LQ from another.
        partials = stack.enter_context(fileio.atomic_dirs(list(targets.values()), overwrite=overwrite))
        partial = {k: partials[os.path.abspath(p)] for k, p in targets.items()}
        build_id = secrets.token_hex(8)  # written into both meta_info.txt files; the dataset compares them
        dbs = {}
        if 'gt_lmdb' in targets:
            map_size = _lmdb_map_size(jobs, num_pairs, s)
            for kind in ('gt', 'lq'):
                db = _LmdbOut(partial[f'{kind}_lmdb'], targets[f'{kind}_lmdb'], map_size, build_id)
                dbs[kind] = db
                stack.callback(db.abort)
        folders = 'gt_folder' in targets
        bar = stack.enter_context(tqdm(total=len(jobs), unit='image', desc='prepare', disable=not progress))
        for pieces in results:
            for p in pieces:
                for kind, value, shape in (('gt', p.gt, p.gt_shape), ('lq', p.lq, p.lq_shape)):
                    if kind in dbs:
                        dbs[kind].put(p.key, value, Entry(p.key, tuple(shape), s.storage, s.png_level))
                    if folders:
                        fileio.save_bytes(value, os.path.join(partial[f'{kind}_folder'], f'{p.key}.png'))
            bar.update(1)
        for db in dbs.values():
            db.finish()
    # leaving the ExitStack renamed every .partial folder to its final name, all together
