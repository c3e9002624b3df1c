"""The one place where the plugin writes files: atomically, or not at all.

A file appears under its final name only once it is complete (written to a
temporary file in the same folder, flushed, then renamed over the target), so
an interrupted run never leaves a half-written checkpoint, image or database
marker that looks valid.
"""
from __future__ import annotations

import contextlib
import os
import re
import tempfile
from typing import Any, Callable, Iterator

import cv2
import numpy as np
import torch


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yield a temporary path next to ``path``; rename it to ``path`` on success."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    stem, ext = os.path.splitext(os.path.basename(path))
    fd, tmp = tempfile.mkstemp(prefix=f'.{stem}.', suffix=f'.tmp{ext}', dir=folder)
    os.close(fd)
    try:
        yield tmp
        with open(tmp, 'rb+') as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_with(path: str, writer: Callable[[str], Any]) -> None:
    """Run ``writer(tmp_path)`` and move the result to ``path`` atomically."""
    with atomic_path(path) as tmp:
        writer(tmp)


def save_torch(obj: Any, path: str) -> None:
    """``torch.save`` that never leaves a partial file behind."""
    write_with(path, lambda tmp: torch.save(obj, tmp))


def save_safetensors(tensors: dict, path: str, metadata: dict | None = None) -> None:
    from safetensors.torch import save_file
    contiguous = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    write_with(path, lambda tmp: save_file(contiguous, tmp, metadata=metadata))


def save_image(img: np.ndarray, path: str, params: list | None = None) -> None:
    """Write an image (OpenCV channel order) atomically; the extension picks the format."""
    ext = os.path.splitext(path)[1] or '.png'
    ok, buf = cv2.imencode(ext, img, params or [])
    if not ok:
        raise OSError(f'OpenCV could not encode an image as {ext} for {path}.')
    write_with(path, lambda tmp: buf.tofile(tmp))


def save_text(text: str, path: str) -> None:
    def write(tmp: str) -> None:
        with open(tmp, 'w', encoding='utf-8') as f:
            f.write(text)
    write_with(path, write)


def save_bytes(data: bytes | np.ndarray, path: str) -> None:
    """Write already-encoded bytes (e.g. a PNG made by a worker process) atomically."""
    def write(tmp: str) -> None:
        with open(tmp, 'wb') as f:
            f.write(memoryview(data))
    write_with(path, write)


PARTIAL_SUFFIX = '.partial'


@contextlib.contextmanager
def atomic_dir(path: str, overwrite: bool = False) -> Iterator[str]:
    """Yield ``path + '.partial'`` to build a folder (an image folder, an LMDB) in; rename it to ``path`` on success.

    The folder only ever appears under its final name complete, so a crash, a
    failing worker or Ctrl-C leaves at most a ``*.partial`` folder that no
    reader mistakes for a finished one; it is removed on ordinary failures and
    replaced by the next run. With ``overwrite`` an existing ``path`` is
    replaced only once the new folder is complete.
    """
    import shutil

    path = os.path.abspath(path)
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(path)
    partial = path + PARTIAL_SUFFIX
    if os.path.isdir(partial):  # left by an earlier run that was killed
        shutil.rmtree(partial)
    os.makedirs(partial)
    try:
        yield partial
        if os.path.exists(path):
            old = path + '.old'
            if os.path.isdir(old):
                shutil.rmtree(old)
            os.replace(path, old)
            os.replace(partial, path)
            shutil.rmtree(old)
        else:
            os.replace(partial, path)
    finally:
        if os.path.isdir(partial):
            shutil.rmtree(partial, ignore_errors=True)


# ``atomic_path`` names its temporary files ``.<stem>.<8 random characters>.tmp<ext>`` (tempfile.mkstemp).
_TEMP_NAME = re.compile(r'^\..+\.[A-Za-z0-9_]{8}\.tmp(\.[^.]+)?$')


def remove_leftover_temp_files(folder: str) -> list[str]:
    """Delete, under ``folder``, the temporary files of saves that were killed before their rename.

    Only call this while no other process can be writing there (training holds its experiment lock).
    Returns the removed paths.
    """
    removed = []
    for root, _, names in os.walk(folder):
        for name in names:
            if _TEMP_NAME.match(name):
                path = os.path.join(root, name)
                os.remove(path)
                removed.append(path)
    return sorted(removed)
