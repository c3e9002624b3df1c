"""A photo's colour profile, EXIF and XMP (``photo_metadata.PhotoMetadata``) put into an encoded PNG, JPEG or WebP.

OpenCV encodes the pixels (exactly as without metadata: 16-bit PNG included, which Pillow cannot write in colour,
and without a second copy of a large output in Pillow's memory); the metadata goes in as the containers define it:
PNG chunks after the header (``iCCP``, ``eXIf``, ``iTXt XML:com.adobe.xmp``), JPEG APP segments after the JFIF one
(APP1 Exif, APP1 XMP, APP2 ICC_PROFILE in pieces), WebP chunks around the image in an extended (``VP8X``) file.
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
    Formats that hold none of it (BMP, PPM, PGM, and TIFF as OpenCV writes it) are returned as they are.
    """
    if metadata == PhotoMetadata():
        return [encoded]
    if ext == '.png':
        return _png(encoded, metadata)
    if ext in ('.jpg', '.jpeg'):
        return _jpeg(encoded, metadata)
    if ext == '.webp':
        return _webp(encoded, metadata, size, has_alpha)
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
