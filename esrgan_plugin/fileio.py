"""The one place where the plugin writes files: atomically, or not at all.

A file appears under its final name only once it is complete (written to a
temporary file in the same folder, flushed, then renamed over the target), so
an interrupted run never leaves a half-written checkpoint, image or database
marker that looks valid. Files are created with the process's umask, like any
other program's (0644 under umask 022).

A write that fails because the file system is full raises ``DiskFullError``,
one line naming the path; the temporary file is removed and the previous file
under that name is left as it was. A process killed in the middle of a save
leaves its temporary file (``.<name>.<8 characters>.tmp<ext>``, hidden);
:func:`remove_leftover_temp_files` clears those when no save can be running.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import shutil
from typing import Any, Callable, Iterator, Optional

import numpy as np

from esrgan_plugin.errors import DiskFullError

# .<stem>.<token>.tmp<ext>: the token is 8 characters of [a-z0-9_], the same shape as the names
# tempfile.mkstemp gave before, so leftovers of older versions are recognised too.
_TEMP_NAME = re.compile(r'^\..+\.[a-z0-9_]{8}\.tmp(\.[^.]+)?$')
_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
# Writers that lose the errno (LMDB turns a short write into EIO, torch's C++ zip writer raises
# RuntimeError) are recognised by what is left free after they failed: a short write fills the disk.
_NEARLY_FULL_BYTES = 1 << 20


# ------------------------------------------------------------------ full disks
def _errno_says_full(err: BaseException) -> bool:
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno in _FULL_ERRNOS:
            return True
        if 'No space left on device' in str(err) or 'Disk quota exceeded' in str(err):
            return True  # lmdb and C++ writers report the errno as text only
        err = err.__cause__ or err.__context__
    return False


def free_bytes(path: str) -> Optional[int]:
    """Bytes an unprivileged process may still write on the file system holding ``path`` (None if unknown)."""
    while path and not os.path.exists(path):
        path = os.path.dirname(path)
    try:
        return shutil.disk_usage(path or '.').free
    except OSError:
        return None


def is_disk_full(err: BaseException, path: str) -> bool:
    """Whether ``err``, raised while writing ``path``, means its file system is full.

    Call it before the failed write's partial file is removed: for errors
    without an errno the free space left is the evidence.
    """
    if _errno_says_full(err):
        return True
    if isinstance(err, (OSError, RuntimeError)) or type(err).__module__.startswith('lmdb'):
        free = free_bytes(path)
        return free is not None and free < _NEARLY_FULL_BYTES
    return False


def disk_full_error(path: str, previous_kept: bool) -> DiskFullError:
    kept = f'the previous {os.path.basename(path)} is unchanged' if previous_kept else 'nothing was written'
    return DiskFullError(f'cannot write {path}: no space left on device ({kept}); free some space and run again.')


@contextlib.contextmanager
def reporting_full_disk(path: str, previous_kept: bool = False) -> Iterator[None]:
    """Turn a failure of the writes inside the block into ``DiskFullError`` when the disk is full."""
    try:
        yield
    except DiskFullError:
        raise
    except Exception as err:
        if is_disk_full(err, path):
            raise disk_full_error(path, previous_kept) from err
        raise


# ------------------------------------------------------------------ temporary files
def is_temp_file(name: str) -> bool:
    """Whether a file name is one of :func:`atomic_path`'s temporary files."""
    return bool(_TEMP_NAME.match(name))


def _create_temp(folder: str, stem: str, ext: str) -> str:
    # os.open with 0o666, not mkstemp (always 0600): the umask decides, as for any file a user writes.
    while True:
        tmp = os.path.join(folder, f'.{stem}.{secrets.token_hex(4)}.tmp{ext}')
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue


def remove_leftover_temp_files(folder: str) -> list[str]:
    """Delete temporary files of killed saves under ``folder`` (recursively); returns their paths.

    Only call it when nothing else can be saving there (e.g. at the start of
    a training that holds the experiment's lock): a running save's temporary
    file looks the same.
    """
    removed = []
    for root, _, names in os.walk(folder):
        for name in names:
            if is_temp_file(name):
                path = os.path.join(root, name)
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)
                    removed.append(path)
    return sorted(removed)


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yield a temporary path next to ``path``; rename it to ``path`` on success."""
    folder = os.path.dirname(os.path.abspath(path))
    with reporting_full_disk(path):
        os.makedirs(folder, exist_ok=True)
    stem, ext = os.path.splitext(os.path.basename(path))
    with reporting_full_disk(path):
        tmp = _create_temp(folder, stem, ext)
    try:
        with reporting_full_disk(path, previous_kept=os.path.exists(path)):
            yield tmp
            with open(tmp, 'rb+') as f:
                os.fsync(f.fileno())  # some file systems report a full disk only here
            os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_with(path: str, writer: Callable[[str], Any]) -> None:
    """Run ``writer(tmp_path)`` and move the result to ``path`` atomically."""
    with atomic_path(path) as tmp:
        writer(tmp)


def save_bytes(data: bytes | np.ndarray, path: str) -> None:
    """Write already-encoded bytes (e.g. a PNG made by a worker process) atomically."""
    def write(tmp: str) -> None:
        with open(tmp, 'wb') as f:
            f.write(memoryview(data))
    write_with(path, write)


def save_torch(obj: Any, path: str) -> None:
    """``torch.save`` that never leaves a partial file behind."""
    import torch

    def write(tmp: str) -> None:
        # Through a Python file, not a path: the C++ writer would turn a full disk into
        # "RuntimeError: unexpected pos"; Python's file keeps the errno.
        with open(tmp, 'wb') as f:
            torch.save(obj, f)
    write_with(path, write)


def save_safetensors(tensors: dict, path: str, metadata: dict | None = None) -> None:
    from safetensors.torch import save

    contiguous = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    save_bytes(save(contiguous, metadata=metadata), path)


def save_image(img: np.ndarray, path: str, params: list | None = None) -> None:
    """Write an image (OpenCV channel order) atomically; the extension picks the format."""
    import cv2

    ext = os.path.splitext(path)[1] or '.png'
    ok, buf = cv2.imencode(ext, img, params or [])
    if not ok:
        raise OSError(f'OpenCV could not encode an image as {ext} for {path}.')
    save_bytes(buf, path)


def save_text(text: str, path: str) -> None:
    save_bytes(text.encode('utf-8'), path)


# ------------------------------------------------------------------ folders
PARTIAL_SUFFIX = '.partial'
_OLD_SUFFIX = '.old'
# Written in the common parent while finished folders are being swapped in; its presence means the swap was
# interrupted and finish_replacing() can complete it (every folder it lists was complete before it was written).
REPLACE_JOURNAL = '.replacing.json'


def finish_replacing(parent: str) -> list[str]:
    """Complete a swap of finished folders that an earlier run started in ``parent`` and did not end.

    Returns the folders that were replaced (empty when there was nothing to
    finish). Safe to run more than once, also if interrupted itself.
    """
    journal = os.path.join(parent, REPLACE_JOURNAL)
    if not os.path.isfile(journal):
        return []
    with open(journal, encoding='utf-8') as f:
        targets = [os.path.join(parent, name) for name in json.load(f)]
    for path in targets:  # every old folder aside first ...
        partial, old = path + PARTIAL_SUFFIX, path + _OLD_SUFFIX
        if os.path.isdir(partial) and os.path.exists(path):
            if os.path.exists(old):
                shutil.rmtree(old)
            os.replace(path, old)
    for path in targets:  # ... then every new one in: never a new folder beside an old one it belongs with
        if os.path.isdir(path + PARTIAL_SUFFIX):
            os.replace(path + PARTIAL_SUFFIX, path)
    os.remove(journal)
    for path in targets:
        shutil.rmtree(path + _OLD_SUFFIX, ignore_errors=True)
    return targets


@contextlib.contextmanager
def atomic_dirs(paths: list[str], overwrite: bool = False) -> Iterator[dict[str, str]]:
    """Build folders (image folders, LMDBs) that appear under their names together, or not at all.

    Yields ``{path: path + '.partial'}`` to build in. On success the finished
    folders replace ``paths`` as one unit: a journal naming them is written
    first, so a run killed while swapping (which takes several renames) is
    completed by :func:`finish_replacing` rather than leaving a new folder
    beside an old one. On failure (an exception, a failing worker, Ctrl-C)
    the ``*.partial`` folders are removed and ``paths`` are untouched; a
    killed run leaves at most ``*.partial`` folders, which no reader takes for
    finished ones and the next run replaces. All ``paths`` share one parent.
    """
    paths = [os.path.abspath(p) for p in paths]
    parents = {os.path.dirname(p) for p in paths}
    if len(parents) != 1:
        raise ValueError(f'folders replaced together must share a parent, got {sorted(parents)}')
    parent = parents.pop()
    finish_replacing(parent)
    for path in paths:  # an old folder whose removal, the swap's last step, was cut short
        shutil.rmtree(path + _OLD_SUFFIX, ignore_errors=True)
    existing = [p for p in paths if os.path.exists(p)]
    if existing and not overwrite:
        raise FileExistsError(existing[0])
    partials = {p: p + PARTIAL_SUFFIX for p in paths}
    for partial in partials.values():
        if os.path.isdir(partial):  # left by an earlier run that was killed
            shutil.rmtree(partial)
        os.makedirs(partial)
    journal_written = False
    try:
        yield partials
        save_text(json.dumps([os.path.basename(p) for p in paths]), os.path.join(parent, REPLACE_JOURNAL))
        journal_written = True
        finish_replacing(parent)
    finally:
        if not journal_written:  # once it is, the finished folders belong to the swap, interrupted or not
            for partial in partials.values():
                shutil.rmtree(partial, ignore_errors=True)
