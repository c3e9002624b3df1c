"""A photo's colour profile, EXIF and XMP (``photo_metadata.PhotoMetadata``) put into an encoded PNG, JPEG or WebP.

OpenCV encodes the pixels (exactly as without metadata: 16-bit PNG included, which Pillow cannot write in colour,
and without a second copy of a large output in Pillow's memory); the metadata goes in as the containers define it:
PNG chunks after the header (``iCCP``, ``eXIf``, ``iTXt XML:com.adobe.xmp``), JPEG APP segments after the JFIF one
(APP1 Exif, APP1 XMP, APP2 ICC_PROFILE in pieces), WebP chunks around the image in an extended (``VP8X``) file,
TIFF tags in a first directory written again at the end of the file (the profile, the XMP and the EXIF's text tags
of the first directory: make, model, date; the EXIF sub-directory, whose offsets would all move, is left out).
The result is a list of pieces, the encoded image among them as a view, written one after the other.
"""
from __future__ import annotations

import struct
import zlib
from typing import Union

from esrgan_plugin.inference.photo_metadata import EXIF_HEADER, PhotoMetadata

Piece = Union[bytes, memoryview]

_PNG_SIGNATURE_AND_HEADER = 8 + 12 + 13  # the signature, then IHDR: length, type, 13 bytes of data, CRC
_JPEG_SEGMENT_MAX = 65535 - 2  # a segment's length field counts itself
_JPEG_XMP_HEADER = b'http://ns.adobe.com/xap/1.0/\x00'
_JPEG_ICC_HEADER = b'ICC_PROFILE\x00'
_WEBP_FLAG_ICC, _WEBP_FLAG_ALPHA, _WEBP_FLAG_EXIF, _WEBP_FLAG_XMP = 0x20, 0x10, 0x08, 0x04


def embed_metadata(encoded: memoryview, ext: str, metadata: PhotoMetadata, size: tuple[int, int],
                   has_alpha: bool) -> list[Piece]:
    """``encoded`` (an image file made by OpenCV, format by ``ext``) with ``metadata`` in it, as pieces.

    ``size`` (width, height) and ``has_alpha`` describe the image, which WebP's extended header repeats.
    Formats that hold none of it (BMP, PPM, PGM) are returned as they are.
    """
    if metadata == PhotoMetadata():
        return [encoded]
    if ext == '.png':
        return _png(encoded, metadata)
    if ext in ('.jpg', '.jpeg'):
        return _jpeg(encoded, metadata)
    if ext == '.webp':
        return _webp(encoded, metadata, size, has_alpha)
    if ext in ('.tif', '.tiff'):
        return _tiff(encoded, metadata)
    return [encoded]


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))


def _png(encoded: memoryview, metadata: PhotoMetadata) -> list[Piece]:
    chunks = []
    if metadata.icc_profile:  # before the image data, as the PNG specification requires
        chunks.append(_png_chunk(b'iCCP', b'ICC Profile\x00\x00' + zlib.compress(metadata.icc_profile)))
    if metadata.exif:
        chunks.append(_png_chunk(b'eXIf', metadata.exif))
    if metadata.xmp:  # uncompressed international text, no language: the form XMP's specification gives for PNG
        chunks.append(_png_chunk(b'iTXt', b'XML:com.adobe.xmp\x00\x00\x00\x00\x00' + metadata.xmp))
    head = _PNG_SIGNATURE_AND_HEADER
    return [encoded[:head], *chunks, encoded[head:]]


def _jpeg_segment(marker: int, payload: bytes) -> bytes:
    return bytes((0xFF, marker)) + struct.pack('>H', len(payload) + 2) + payload


def _jpeg(encoded: memoryview, metadata: PhotoMetadata) -> list[Piece]:
    segments = []
    if metadata.exif and len(EXIF_HEADER) + len(metadata.exif) <= _JPEG_SEGMENT_MAX:
        segments.append(_jpeg_segment(0xE1, EXIF_HEADER + metadata.exif))
    if metadata.xmp and len(_JPEG_XMP_HEADER) + len(metadata.xmp) <= _JPEG_SEGMENT_MAX:
        segments.append(_jpeg_segment(0xE1, _JPEG_XMP_HEADER + metadata.xmp))
    if metadata.icc_profile:  # in numbered pieces, each a segment (ICC.1, annex B.4)
        room = _JPEG_SEGMENT_MAX - len(_JPEG_ICC_HEADER) - 2
        pieces = [metadata.icc_profile[i:i + room] for i in range(0, len(metadata.icc_profile), room)]
        segments += [_jpeg_segment(0xE2, _JPEG_ICC_HEADER + bytes((n, len(pieces))) + piece)
                     for n, piece in enumerate(pieces, 1)]
    head = 2  # after the start-of-image marker, and after the JFIF segment, which must come first
    if bytes(encoded[2:4]) == b'\xff\xe0':
        head = 4 + struct.unpack('>H', encoded[4:6])[0]
    return [encoded[:head], *segments, encoded[head:]]


def _webp_chunk(kind: bytes, data: Piece) -> list[Piece]:
    return [kind + struct.pack('<I', len(data)), data] + ([b'\x00'] if len(data) % 2 else [])


def _webp(encoded: memoryview, metadata: PhotoMetadata, size: tuple[int, int], has_alpha: bool) -> list[Piece]:
    """An extended WebP: VP8X, ICCP, the image's own chunks (ALPH, VP8 or VP8L), EXIF, XMP (the order required)."""
    image_chunks, offset = [], 12  # after 'RIFF', the file size, 'WEBP'
    while offset + 8 <= len(encoded):
        kind, length = bytes(encoded[offset:offset + 4]), struct.unpack('<I', encoded[offset + 4:offset + 8])[0]
        if kind != b'VP8X':  # a VP8X that OpenCV wrote (a lossy image with alpha) is made again below
            image_chunks.append(encoded[offset:offset + 8 + length + length % 2])
        offset += 8 + length + length % 2
    flags = ((_WEBP_FLAG_ICC if metadata.icc_profile else 0) | (_WEBP_FLAG_ALPHA if has_alpha else 0)
             | (_WEBP_FLAG_EXIF if metadata.exif else 0) | (_WEBP_FLAG_XMP if metadata.xmp else 0))
    width, height = size
    header = bytes((flags, 0, 0, 0)) + (width - 1).to_bytes(3, 'little') + (height - 1).to_bytes(3, 'little')
    body = _webp_chunk(b'VP8X', header)
    if metadata.icc_profile:
        body += _webp_chunk(b'ICCP', metadata.icc_profile)
    body += image_chunks
    if metadata.exif:
        body += _webp_chunk(b'EXIF', metadata.exif)
    if metadata.xmp:
        body += _webp_chunk(b'XMP ', metadata.xmp)
    return [b'RIFF' + struct.pack('<I', 4 + sum(len(p) for p in body)) + b'WEBP', *body]


_TIFF_VALUE_SIZE = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8}  # bytes per value
_TIFF_ASCII, _TIFF_BYTE, _TIFF_UNDEFINED = 2, 1, 7
_TIFF_ICC_TAG, _TIFF_XMP_TAG = 34675, 700
# The EXIF tags a TIFF's own first directory holds as text: description, make, model, software, date, artist,
# copyright.
_TIFF_TEXT_TAGS = (270, 271, 272, 305, 306, 315, 33432)


def _tiff_text_tags(exif: bytes) -> dict[int, bytes]:
    """The text tags of the EXIF's first directory (``_TIFF_TEXT_TAGS``), as their bytes."""
    order = {b'II': '<', b'MM': '>'}.get(exif[:2])
    found = {}
    try:
        ifd = struct.unpack_from(order + 'I', exif, 4)[0]
        for i in range(struct.unpack_from(order + 'H', exif, ifd)[0]):
            tag, kind, count = struct.unpack_from(order + 'HHI', exif, ifd + 2 + 12 * i)
            if tag in _TIFF_TEXT_TAGS and kind == _TIFF_ASCII:
                start = ifd + 2 + 12 * i + 8 if count <= 4 else struct.unpack_from(order + 'I', exif,
                                                                                    ifd + 2 + 12 * i + 8)[0]
                found[tag] = exif[start:start + count]
    except (struct.error, TypeError):  # damaged, or no TIFF header (order None): what was read so far
        pass
    return found


def _tiff(encoded: memoryview, metadata: PhotoMetadata) -> list[Piece]:
    """A classic TIFF whose first directory is copied to the end of the file with the new tags added."""
    order = {b'II': '<', b'MM': '>'}.get(bytes(encoded[:2]))
    if order is None or struct.unpack_from(order + 'H', encoded, 2)[0] != 42:
        return [encoded]  # not a classic TIFF (BigTIFF): written as it is
    ifd = struct.unpack_from(order + 'I', encoded, 4)[0]
    count = struct.unpack_from(order + 'H', encoded, ifd)[0]
    entries = {struct.unpack_from(order + 'H', encoded, ifd + 2 + 12 * i)[0]: bytes(encoded[ifd + 2 + 12 * i:
                                                                                            ifd + 14 + 12 * i])
               for i in range(count)}
    next_ifd = encoded[ifd + 2 + 12 * count:ifd + 6 + 12 * count]
    added = {tag: (_TIFF_ASCII, value) for tag, value in _tiff_text_tags(metadata.exif or b'').items()}
    if metadata.icc_profile:
        added[_TIFF_ICC_TAG] = (_TIFF_UNDEFINED, metadata.icc_profile)
    if metadata.xmp:
        added[_TIFF_XMP_TAG] = (_TIFF_BYTE, metadata.xmp)
    start = len(encoded) + len(encoded) % 2
    tags = sorted(set(entries) | set(added))
    values, value_at = [], start + 2 + 12 * len(tags) + 4
    for tag in tags:
        if tag not in added:
            continue
        kind, value = added[tag]
        field = value.ljust(4, b'\x00') if len(value) <= 4 else struct.pack(order + 'I', value_at)
        if len(value) > 4:
            values.append(value + b'\x00' * (len(value) % 2))
            value_at += len(values[-1])
        entries[tag] = struct.pack(order + 'HHI', tag, kind, len(value)) + field
    directory = struct.pack(order + 'H', len(tags)) + b''.join(entries[t] for t in tags) + bytes(next_ifd)
    return [encoded[:4], struct.pack(order + 'I', start), encoded[8:], b'\x00' * (len(encoded) % 2), directory,
            *values]
