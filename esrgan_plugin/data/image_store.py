"""How paired training images are stored: image folders and basicsr-format LMDBs.

One job: names, shapes and bytes of stored images, shared by the preparation
command (which writes them) and the dataset (which reads them).

basicsr's LMDB format (``basicsr.utils.lmdb_util.make_lmdb_from_imgs``): a
folder ``<name>.lmdb`` holding an LMDB environment whose keys are image names
without extension and whose values are PNG bytes, plus ``meta_info.txt`` with
one line per image, ``<key>.png (<h>,<w>,<c>) <png compression level>``.
basicsr takes the key as the text before the first dot, so keys never
contain dots or whitespace.

``prepare_data`` appends ``build=<id>`` to the first line of both the GT and
the LQ ``meta_info.txt``, one random identifier per run, so that a GT and an
LQ database from different runs are never trained on as a pair. basicsr reads
only the key of each line and ignores it; basicsr-made files have none.

The plugin adds one optional storage form, ``raw``: the value is the image's
uint8 bytes in OpenCV order (HWC, BGR) and the meta line says ``<key>.raw``.
It decodes for free and lets a reader copy only the crop it needs; basicsr's
own dataset cannot read it, so it is never the default.
"""
from __future__ import annotations

import os
import re
from typing import NamedTuple

import cv2
import numpy as np

from esrgan_plugin.errors import DataError

# The image files read from a folder, by prepare_data, the datasets and infer (its --ext auto keeps the type).
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp', '.ppm', '.pgm')
STORAGE_FORMATS = ('png', 'raw')
META_INFO = 'meta_info.txt'

# A key basicsr can round-trip: ASCII (it encodes keys as ASCII), no dot
# (it splits meta lines at the first '.'), no whitespace (fields are space separated).
_KEY_PATTERN = re.compile(r'^[A-Za-z0-9_\-+@#%=,~]+$')
_META_LINE = re.compile(r'^(\S+)\.(\w+) \((\d+),(\d+),(\d+)\) (\d+)(?: build=([0-9a-f]+))?$')


class Entry(NamedTuple):
    """One stored image: its key, shape (h, w, c) and how its bytes are stored."""
    key: str
    shape: tuple
    storage: str = 'png'
    level: int = 1


def is_lmdb(path: str) -> bool:
    return path.rstrip('/\\').endswith('.lmdb')


def check_key(key: str, source: str) -> None:
    if not _KEY_PATTERN.match(key):
        raise DataError(f'image name {key!r} ({source}) cannot be an LMDB key: basicsr keys are ASCII letters, '
                        'digits and _-+ without dots or spaces; rename the file.')


def list_images(folder: str) -> list[str]:
    """Image files directly in ``folder``, sorted by name."""
    if not os.path.isdir(folder):
        raise DataError(f'folder {folder} does not exist; pass the folder that holds the images.')
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS)
                   and os.path.isfile(os.path.join(folder, n)))
    return [os.path.join(folder, n) for n in names]


def image_size(path: str) -> tuple[int, int]:
    """(height, width) from the file header, without decoding the pixels."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            w, h = img.size
    except Exception as err:  # PIL raises several types for unreadable files
        raise DataError(f'{path} is not a readable image ({type(err).__name__}); replace or remove it.') from None
    return h, w


def read_image(path: str) -> np.ndarray:
    """A 3-channel uint8 BGR image (grey and alpha images are converted, as basicsr's readers do)."""
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise DataError(f'{path} could not be decoded; replace or remove the file.')
    return img


def encode(img: np.ndarray, storage: str = 'png', level: int = 1) -> bytes:
    if storage == 'raw':
        return np.ascontiguousarray(img, dtype=np.uint8).tobytes()
    ok, buf = cv2.imencode('.png', img, [cv2.IMWRITE_PNG_COMPRESSION, level])
    if not ok:
        raise OSError('OpenCV could not encode an image as PNG.')
    return buf.tobytes()


def decode(buf: bytes | None, entry: Entry, source: str) -> np.ndarray:
    """Stored bytes back to a uint8 BGR HWC array; a missing or undecodable value names its key."""
    if buf is None:
        raise DataError(f'key {entry.key} is listed in {META_INFO} but missing from {source}; rebuild the database.')
    if entry.storage == 'raw':
        h, w, c = entry.shape
        if len(buf) != h * w * c:
            raise DataError(f'key {entry.key} in {source} holds {len(buf)} bytes, not {h}x{w}x{c}; '
                            'rebuild the database.')
        return np.frombuffer(buf, dtype=np.uint8).reshape(h, w, c)
    img = cv2.imdecode(np.frombuffer(buf, dtype=np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise DataError(f'key {entry.key} in {source} is not a decodable image; rebuild the database.')
    return img


def meta_line(entry: Entry, build_id: str | None = None) -> str:
    h, w, c = entry.shape
    ext = 'raw' if entry.storage == 'raw' else 'png'
    build = f' build={build_id}' if build_id else ''
    return f'{entry.key}.{ext} ({h},{w},{c}) {entry.level}{build}\n'


def meta_info_text(entries: list[Entry], build_id: str) -> str:
    """The whole ``meta_info.txt``; the build identifier goes on the first line."""
    return ''.join(meta_line(e, build_id if i == 0 else None) for i, e in enumerate(entries))


def read_build_id(lmdb_path: str) -> str | None:
    """The ``prepare_data`` run identifier in an LMDB's ``meta_info.txt``; None for basicsr-made files."""
    try:
        with open(os.path.join(lmdb_path, META_INFO), encoding='utf-8') as f:
            first = f.readline().strip()
    except (OSError, UnicodeDecodeError):
        return None  # a missing or unreadable file is reported by read_meta_info, which names it
    match = _META_LINE.match(first)
    return match.group(7) if match else None


def read_meta_info(lmdb_path: str) -> list[Entry]:
    """The entries of an LMDB folder, from its ``meta_info.txt`` (ours or basicsr's)."""
    if not os.path.isdir(lmdb_path):
        raise DataError(f'LMDB {lmdb_path} does not exist; build it with python -m esrgan_plugin.prepare_data '
                        'or fix the path.')
    meta = os.path.join(lmdb_path, META_INFO)
    if not os.path.isfile(meta):
        hint = ' (an interrupted build; run it again)' if lmdb_path.endswith('.partial') else ''
        raise DataError(f'LMDB {lmdb_path} has no {META_INFO}{hint}; it is incomplete or not in basicsr\'s format, '
                        'rebuild it with python -m esrgan_plugin.prepare_data.')
    if not os.path.isfile(os.path.join(lmdb_path, 'data.mdb')):
        raise DataError(f'LMDB {lmdb_path} has {META_INFO} but no data.mdb; rebuild it.')
    entries = []
    with open(meta, encoding='utf-8') as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            match = _META_LINE.match(line)
            if not match:
                raise DataError(f'{meta} line {number} is {line!r}, not "<key>.png (<h>,<w>,<c>) <level>"; '
                                'rebuild the database.')
            key, ext, h, w, c, level, _ = match.groups()
            if ext not in ('png', 'raw'):  # basicsr always writes .png; other encodings decode like it
                ext = 'png'
            entries.append(Entry(key, (int(h), int(w), int(c)), ext, int(level)))
    if not entries:
        raise DataError(f'{meta} lists no images; rebuild the database.')
    return entries
