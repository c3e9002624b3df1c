"""Checks of GT/LQ LMDB folders that must pass before any process maps them.

LMDB maps ``data.mdb`` into memory and trusts it: a file cut short (a copy
that ran out of space, an interrupted rsync) kills the reader with a Bus
error when it touches a page past the end, with no message. The file's own
meta pages say how long it must be, so that is checked first, by reading
two small pages, never by mapping.

The layout read here is LMDB's on-disk format on 64-bit little-endian
machines (every platform torch runs on), as in ``lmdb.h``/``mdb.c``: the
first two pages are meta pages, each a 16-byte page header followed by
``MDB_meta`` (magic, version, address, map size, the free and main
database records of 48 bytes each, last used page number, transaction id).
The page size is stored in the free database record's first field; the
newer of the two meta pages (higher transaction id) is the current one.
"""
from __future__ import annotations

import os
import struct
from typing import Optional

from esrgan_plugin.errors import DataError

_MAGIC = 0xBEEFC0DE
_PAGE_HEADER = 16
_META = struct.Struct('<IIQQ')  # magic, version, address, map size
_PAGE_SIZE_AT = _PAGE_HEADER + _META.size  # md_pad of the free database record holds the page size
_LAST_PAGE_AT = _PAGE_HEADER + _META.size + 2 * 48  # mm_last_pg, then mm_txnid
_MIN_PAGE, _MAX_PAGE = 512, 1 << 16


def _rebuild_hint(lmdb_path: str) -> str:
    return (f'rebuild it with python -m esrgan_plugin.prepare_data (with --overwrite) or copy {lmdb_path} '
            'again from an intact source.')


def _read_meta(f, offset: int) -> Optional[tuple[int, int, int]]:
    """(page size, last page number, transaction id) of the meta page at ``offset``, None if it is not one."""
    f.seek(offset)
    page = f.read(_LAST_PAGE_AT + 16)
    if len(page) < _LAST_PAGE_AT + 16:
        return None
    magic = _META.unpack_from(page, _PAGE_HEADER)[0]
    if magic != _MAGIC:
        return None
    page_size = struct.unpack_from('<I', page, _PAGE_SIZE_AT)[0]
    last_page, txn_id = struct.unpack_from('<QQ', page, _LAST_PAGE_AT)
    return page_size, last_page, txn_id


def check_data_file(lmdb_path: str) -> None:
    """Refuse an LMDB folder whose ``data.mdb`` is shorter than its meta pages say, or not an LMDB at all.

    Raises:
        DataError: one line naming the file, its size and the size it must have.
    """
    data = os.path.join(lmdb_path, 'data.mdb')
    if not os.path.isfile(data):
        raise DataError(f'LMDB {lmdb_path} has no data.mdb; {_rebuild_hint(lmdb_path)}')
    size = os.path.getsize(data)
    with open(data, 'rb') as f:
        first = _read_meta(f, 0)
        if first is None or not _MIN_PAGE <= first[0] <= _MAX_PAGE:
            raise DataError(f'{data} is not an LMDB data file (its first page is not an LMDB meta page; '
                            f'{size} bytes); {_rebuild_hint(lmdb_path)}')
        page_size = first[0]
        second = _read_meta(f, page_size)
    if second is None:
        needed = max(2 * page_size, (first[1] + 1) * page_size)
        raise DataError(f'{data} is truncated or damaged: {size} bytes, but its first meta page says '
                        f'{needed}; {_rebuild_hint(lmdb_path)}')
    current = max(first, second, key=lambda meta: meta[2])
    needed = (current[1] + 1) * page_size
    if size < needed:
        raise DataError(f'{data} is truncated: {size} bytes, but its meta page says {needed} '
                        f'({current[1] + 1} pages of {page_size}); {_rebuild_hint(lmdb_path)}')


def check_lmdb_pair(gt_root: Optional[str], lq_root: Optional[str]) -> None:
    """Every check that reads no image: intact data files, and GT and LQ from the same ``prepare_data`` run.

    Either root may be None (a dataset with one LMDB). LMDBs made by basicsr's
    tools carry no build identifier and are accepted as they are.

    Raises:
        DataError: one line naming what is wrong and how to fix it.
    """
    from esrgan_plugin.fileio import REPLACE_JOURNAL
    from esrgan_plugin.data.image_store import read_build_id

    roots = [r for r in (gt_root, lq_root) if r]
    for root in roots:
        parent = os.path.dirname(os.path.abspath(root))
        if os.path.isfile(os.path.join(parent, REPLACE_JOURNAL)):
            raise DataError(f'{parent} is half-replaced: a prepare_data --overwrite was interrupted while swapping '
                            'in the new databases; run the same prepare_data command again (it completes the swap '
                            'first).')
    for root in roots:
        check_data_file(root)
    if gt_root and lq_root:
        gt_id, lq_id = read_build_id(gt_root), read_build_id(lq_root)
        if gt_id and lq_id and gt_id != lq_id:
            raise DataError(f'GT {gt_root} and LQ {lq_root} were built by different prepare_data runs (build '
                            f'{gt_id} vs {lq_id}), so their images need not correspond; rebuild both with one '
                            'prepare_data run.')
