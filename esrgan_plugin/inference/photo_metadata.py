"""What a photo says about how it is shown and where it comes from: its orientation, colour profile, EXIF and XMP.

``read_metadata`` takes them from a file Pillow has opened (the header only). The orientation is applied to the
pixels when the photo is read (``orient``), so the EXIF and XMP that travel to the output have their orientation
reset to 1 (upright), changed in place: every other byte is kept, maker notes included, whose internal offsets a
re-serialisation of the EXIF would break. ``inference.metadata_embed`` writes them into the output file.
"""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

import numpy as np

if TYPE_CHECKING:
    from PIL import Image

EXIF_HEADER = b'Exif\x00\x00'  # what JPEG's APP1 (and some writers' PNG and WebP chunks) put before the TIFF bytes
_ORIENTATION_TAG = 0x0112
_SHORT = 3  # the TIFF type of the orientation value
_XMP_ORIENTATION = re.compile(rb'(tiff:Orientation(?:="|>))([1-8])')
_TIFF_XMP_TAG = 700


@dataclass(frozen=True)
class PhotoMetadata:
    """What an output keeps of its input: None where the input has none (or ``--strip-metadata`` dropped it)."""
    icc_profile: Optional[bytes] = None  # the input's ICC profile, byte for byte
    exif: Optional[bytes] = None  # TIFF-structured EXIF (no 'Exif\\0\\0' header), orientation reset to 1
    xmp: Optional[bytes] = None  # the XMP packet, orientation reset to 1


def read_metadata(image: Image.Image) -> tuple[int, PhotoMetadata]:
    """The EXIF orientation (1 to 8; 1 where none) and the metadata the output keeps, of an opened image."""
    # From the header only: a PNG's eXIf after the image data (which its specification no longer allows) is not
    # seen where OpenCV decodes the pixels.
    exif = image.info.get('exif') or None
    if exif is not None and exif.startswith(EXIF_HEADER):
        exif = exif[len(EXIF_HEADER):]
    orientation = exif_orientation(exif) if exif else None
    if orientation is None and image.format == 'TIFF':
        # A TIFF's EXIF tags are its own directory, with the strips' offsets: only the orientation is taken.
        orientation = image.tag_v2.get(_ORIENTATION_TAG)
    xmp = image.info.get('xmp') or (image.tag_v2.get(_TIFF_XMP_TAG) if image.format == 'TIFF' else None) or None
    if isinstance(xmp, str):
        xmp = xmp.encode('utf-8')
    icc = image.info.get('icc_profile') or None
    metadata = PhotoMetadata(icc_profile=icc, exif=exif and reset_orientation(exif),
                             xmp=xmp and _XMP_ORIENTATION.sub(rb'\g<1>1', bytes(xmp)))
    return (orientation if orientation in range(1, 9) else 1), metadata


def _orientation_offset(exif: bytes) -> tuple[Optional[int], str]:
    """Where the orientation value lies in TIFF-structured EXIF (None where it has none), and the byte order."""
    order = {b'II': '<', b'MM': '>'}.get(exif[:2])
    if order is None:
        return None, '<'
    try:
        ifd = struct.unpack_from(order + 'I', exif, 4)[0]
        for i in range(struct.unpack_from(order + 'H', exif, ifd)[0]):
            entry = ifd + 2 + 12 * i
            tag, kind, count = struct.unpack_from(order + 'HHI', exif, entry)
            if tag == _ORIENTATION_TAG and kind == _SHORT and count == 1:
                return entry + 8, order
    except struct.error:  # a truncated or damaged EXIF block: treated as holding no orientation
        pass
    return None, order


def exif_orientation(exif: bytes) -> Optional[int]:
    """The orientation tag's value in TIFF-structured EXIF, None where it has none."""
    offset, order = _orientation_offset(exif)
    return None if offset is None else struct.unpack_from(order + 'H', exif, offset)[0]


def reset_orientation(exif: bytes) -> bytes:
    """``exif`` with its orientation set to 1 (upright), every other byte unchanged."""
    offset, order = _orientation_offset(exif)
    if offset is None:
        return exif
    patched = bytearray(exif)
    struct.pack_into(order + 'H', patched, offset, 1)
    return bytes(patched)


def orient(img: np.ndarray, orientation: int) -> np.ndarray:
    """Turn rows x columns (x channels) samples as a viewer shows a file with this EXIF orientation.

    The values (TIFF 6.0, tag 274) say where the stored first row and column are shown: 2 mirrored, 3 turned
    half way, 4 flipped, 5 transposed, 6 turned a quarter clockwise, 7 transversed, 8 a quarter counter-clockwise.
    """
    turned = {1: img, 2: img[:, ::-1], 3: img[::-1, ::-1], 4: img[::-1], 5: img.swapaxes(0, 1),
              6: np.rot90(img, -1), 7: np.rot90(img[:, ::-1], -1), 8: np.rot90(img, 1)}[orientation]
    return turned if orientation == 1 else np.ascontiguousarray(turned)
