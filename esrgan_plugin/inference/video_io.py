"""Reading and writing videos through PyAV (FFmpeg's libraries, shipped in its wheels).

``VideoReader`` demultiplexes a file once: it hands out the decoded frames of its first video stream as RGB
arrays with their own timestamps, and the packets of its audio and subtitle streams as they are, so that
``VideoWriter`` copies them into the output untouched (remuxed, not re-encoded). The writer encodes the upscaled
frames with each input frame's ``pts`` and time base, which keeps constant and variable frame rates alike, in
yuv420p (even sides). The output keeps the input's container (``video_output_path``).
``inference.video_upscale`` runs the loop between them.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator, Optional, Union

import av
import numpy as np

from esrgan_plugin.choices import DEFAULT_CRF, VIDEO_EXTENSIONS
from esrgan_plugin.inference.image_io import ImageReadError

# Streams copied into the output; others (data, attachments, extra video such as cover art) are left out.
COPIED_STREAM_TYPES = ('audio', 'subtitle')
PIXEL_FORMAT = 'yuv420p'


class VideoReadError(ImageReadError):
    """A video that cannot be used (corrupt, truncated, no video stream, a codec PyAV cannot decode): the command
    reports it on one line and goes on with the other files."""


class VideoWriteError(Exception):
    """The output cannot hold what is written into it (a codec its container does not take)."""


def is_video(path: str) -> bool:
    return path.lower().endswith(VIDEO_EXTENSIONS)


def video_output_path(input_path: str, out_dir: str, suffix: str) -> str:
    """``<out_dir>/<stem><suffix><ext>``: a video keeps its container (``--ext`` is for pictures)."""
    stem, ext = os.path.splitext(os.path.basename(input_path))
    return os.path.join(out_dir, f'{stem}{suffix}{ext.lower()}')


def video_codec(codec: str, path: str) -> str:
    """The encoder ``--video-codec`` names for the output ``path`` ('auto': libx264, libvpx-vp9 in a WebM)."""
    if codec != 'auto':
        return codec
    return 'libvpx-vp9' if path.lower().endswith('.webm') else 'libx264'


def even_size(width: int, height: int) -> tuple[int, int]:
    """The nearest even sides at or below (``width``, ``height``), at least 2: yuv420p halves both for colour."""
    return max(2, width - width % 2), max(2, height - height % 2)


@dataclass(frozen=True)
class Frame:
    """A decoded frame: RGB samples and where it sits in time (``pts`` in ``time_base`` units)."""
    rgb: np.ndarray  # H x W x 3 uint8
    pts: Optional[int]
    time_base: Optional[Fraction]
    rotation: int  # degrees of the display matrix (phones film portrait as rotated landscape)


def ffmpeg_reason(err: BaseException) -> str:
    """FFmpeg's words for a failure, without the file name PyAV appends."""
    text = getattr(err, 'strerror', None) or str(err)
    return text.rstrip('.').split(": '")[0]


class VideoReader:
    """The frames of ``path``'s first video stream and the packets of its audio and subtitle streams, in file order.

    Raises:
        VideoReadError: on opening: not a video FFmpeg can open, no video stream, a codec without decoder;
            while reading (``items``): corrupt data.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self.container = av.open(path)
        except (av.FFmpegError, OSError, UnicodeDecodeError) as err:
            raise VideoReadError(f'{path} cannot be opened as a video ({ffmpeg_reason(err)}); skipped.') from None
        try:
            if not self.container.streams.video:
                raise VideoReadError(f'{path} holds no video stream; skipped.')
            self.video = self.container.streams.video[0]
            if self.video.codec_context is None:
                raise VideoReadError(f'{path}: PyAV has no decoder for its video codec; skipped.')
            self.video.thread_type = 'AUTO'  # decode with frame threads too: the decoder then keeps up
            self.copied = [s for s in self.container.streams if s.type in COPIED_STREAM_TYPES]
            self.left_out = [s for s in self.container.streams if s is not self.video and s not in self.copied]
        except BaseException:
            self.container.close()
            raise

    def close(self) -> None:
        self.container.close()

    def frame_count(self) -> Optional[int]:
        """The frames the container announces, or its duration times the frame rate; None where neither is known."""
        if self.video.frames:
            return self.video.frames
        rate = self.video.average_rate or self.video.guessed_rate
        if self.container.duration and rate:
            return max(1, round(self.container.duration / av.time_base * rate))
        return None

    def items(self) -> Iterator[Union[Frame, av.Packet]]:
        """Decoded frames of the video stream and packets of the copied streams, as the file interleaves them."""
        frames = 0
        try:
            for packet in self.container.demux(self.video, *self.copied):
                if packet.stream is self.video:
                    for frame in packet.decode():
                        frames += 1
                        yield Frame(frame.to_ndarray(format='rgb24'), frame.pts, frame.time_base,
                                    int(frame.rotation or 0))
                elif packet.dts is not None:  # demux ends each stream with an empty packet: nothing to copy
                    yield packet
        except av.FFmpegError as err:
            raise VideoReadError(f'{self.path} is corrupt or truncated after {frames} frame(s) '
                                 f'({ffmpeg_reason(err)}); skipped.') from None
        if frames == 0:
            raise VideoReadError(f'{self.path}: its video stream has no frame that decodes; skipped.')


class VideoWriter:
    """An output video like ``reader``'s: upscaled frames encoded with ``codec``, its other streams copied.

    The file is opened at the first frame, whose size and rotation it takes; packets of the copied streams
    that come before wait until then (a few, at the start of a file).
    """

    def __init__(self, path: str, reader: VideoReader, codec: str, crf: Optional[int]) -> None:
        self.path = path
        self.reader = reader
        self.codec = video_codec(codec, path)
        self.crf = DEFAULT_CRF.get(self.codec) if crf is None else crf
        self.container: Optional[av.container.OutputContainer] = None
        self.stream = None
        self.copies: dict = {}
        self.waiting: list[av.Packet] = []
        self.next_pts = 0

    def _open(self, width: int, height: int, rotation: int) -> None:
        source = self.reader.video
        rate = source.average_rate or source.guessed_rate or Fraction(25)
        container = av.open(self.path, 'w')
        try:
            try:
                stream = container.add_stream(self.codec, rate=rate)
            except ValueError as err:  # PyAV's words where the container cannot hold the codec
                raise VideoWriteError(str(err)) from None
            stream.width, stream.height = even_size(width, height)
            stream.pix_fmt = PIXEL_FORMAT
            # Frames keep the input's timestamps, in its time base: constant and variable frame rates alike.
            stream.time_base = source.time_base
            stream.codec_context.time_base = source.time_base
            if self.crf is not None:
                stream.options = {'crf': str(self.crf)}
                stream.codec_context.bit_rate = 0  # VP9 takes crf as constant quality only without a bit rate
            if rotation:
                stream.set_display_rotation(rotation)
            self.copies = {s.index: container.add_stream_from_template(s) for s in self.reader.copied}
            container.start_encoding()
        except BaseException:
            container.close()
            raise
        self.container, self.stream = container, stream

    def write_frame(self, rgb: np.ndarray, source: Frame) -> None:
        """Encode the upscaled ``rgb`` (H x W x 3 uint8) at ``source``'s time."""
        if self.container is None:
            self._open(rgb.shape[1], rgb.shape[0], source.rotation)
            for packet in self.waiting:
                self.copy(packet)
            self.waiting = []
        frame = av.VideoFrame.from_ndarray(rgb, format='rgb24')
        # A frame without a timestamp (some AVI files) follows the one before it.
        frame.pts = self.next_pts if source.pts is None else source.pts
        frame.time_base = source.time_base or self.stream.codec_context.time_base
        self.next_pts = frame.pts + 1
        self.container.mux(self.stream.encode(frame))

    def copy(self, packet: av.Packet) -> None:
        """Put a packet of a copied stream into the output as it is."""
        if self.container is None:
            self.waiting.append(packet)
            return
        packet.stream = self.copies[packet.stream.index]
        self.container.mux(packet)

    def finish(self) -> None:
        """Drain the encoder and write the container's index; the file is complete after this."""
        if self.container is not None:
            self.container.mux(self.stream.encode(None))
            self.close()

    def close(self) -> None:
        if self.container is not None:
            container, self.container = self.container, None
            container.close()
