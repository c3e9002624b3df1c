"""Small videos made in the tests with PyAV: a moving pattern (every frame different), a sine tone, subtitles, and
what is read back from a file (frames with their times, the packets of a stream)."""
from __future__ import annotations

from fractions import Fraction
from typing import Optional, Sequence

import av
import numpy as np

SAMPLE_RATE = 8000


def pattern(index: int, width: int, height: int) -> np.ndarray:
    """Frame ``index`` of a moving pattern: a bright bar sliding right over a gradient whose tint changes."""
    img = np.zeros((height, width, 3), np.uint8)
    img[..., 0] = np.linspace(0, 200, width, dtype=np.uint8)[None, :]
    img[..., 1] = np.linspace(0, 200, height, dtype=np.uint8)[:, None]
    img[..., 2] = (index * 37) % 256
    left = (index * 3) % max(1, width - 4)
    img[:, left:left + 4] = 255
    return img


def make_clip(path, frames: int = 8, width: int = 32, height: int = 24, rate: int = 10,
              audio: Optional[str] = 'aac', pts_ms: Optional[Sequence[int]] = None, codec: str = 'libx264',
              subtitles: Optional[str] = None, rotation: int = 0) -> None:
    """A clip of ``frames`` pattern frames at ``rate`` fps, or at the times ``pts_ms`` (milliseconds: a variable
    frame rate), with a 440 Hz tone as long as the video in ``audio`` ('aac', 'pcm_s16le', 'libopus' or None),
    and the subtitles of the .srt file ``subtitles`` copied in."""
    out = av.open(str(path), 'w')
    video = out.add_stream(codec, rate=rate)
    video.width, video.height, video.pix_fmt = width, height, 'yuv420p'
    if pts_ms is not None:
        video.codec_context.time_base = Fraction(1, 1000)
    if rotation:
        video.set_display_rotation(rotation)
    sound = None
    if audio:
        sound = out.add_stream(audio, rate=48000 if audio == 'libopus' else SAMPLE_RATE)
        sound.layout = 'mono'
    srt = av.open(str(subtitles)) if subtitles else None
    text = out.add_stream_from_template(srt.streams.subtitles[0]) if srt else None
    out.start_encoding()
    for i in range(frames):
        frame = av.VideoFrame.from_ndarray(pattern(i, width, height), format='rgb24')
        if pts_ms is not None:
            frame.pts, frame.time_base = pts_ms[i], Fraction(1, 1000)
        out.mux(video.encode(frame))
    out.mux(video.encode(None))
    if sound is not None:
        rate_hz = sound.codec_context.sample_rate
        seconds = (pts_ms[-1] / 1000 + 0.1) if pts_ms is not None else frames / rate
        samples = (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * rate_hz)) / rate_hz))
        fmt = 's16' if audio == 'pcm_s16le' else 'flt'
        samples = (samples * 32767).astype(np.int16) if fmt == 's16' else samples.astype(np.float32)
        step = 960 if audio == 'libopus' else 1024
        for start in range(0, len(samples), step):
            chunk = np.ascontiguousarray(samples[None, start:start + step])
            if audio != 'pcm_s16le' and chunk.shape[1] < step:
                chunk = np.pad(chunk, ((0, 0), (0, step - chunk.shape[1])))
            piece = av.AudioFrame.from_ndarray(chunk, format=fmt, layout='mono')
            piece.sample_rate, piece.pts = rate_hz, start
            out.mux(sound.encode(piece))
        out.mux(sound.encode(None))
    if srt is not None:
        for packet in srt.demux():
            if packet.dts is not None:
                packet.stream = text
                out.mux(packet)
        srt.close()
    out.close()


def write_srt(path) -> None:
    path.write_text('1\n00:00:00,200 --> 00:00:00,400\nline one\n\n2\n00:00:00,500 --> 00:00:00,700\nline two\n')


def read_frames(path) -> tuple[list[np.ndarray], list[float]]:
    """The decoded frames of the first video stream as RGB, and their times in seconds."""
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
        return [f.to_ndarray(format='rgb24') for f in frames], [float(f.time) for f in frames]


def packets(path, kind: str) -> list[tuple[bytes, Optional[float]]]:
    """The packets of the first ``kind`` stream ('audio', 'subtitle'): their bytes and presentation times."""
    with av.open(str(path)) as container:
        stream = getattr(container.streams, 'subtitles' if kind == 'subtitle' else kind)[0]
        return [(bytes(p), None if p.pts is None else float(p.pts * p.time_base))
                for p in container.demux(stream) if p.dts is not None]


def video_info(path) -> dict:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        first = next(container.decode(stream))
        return {'codec': stream.codec_context.name, 'width': first.width, 'height': first.height,
                'pix_fmt': first.format.name, 'rotation': first.rotation,
                'streams': sorted(s.type for s in container.streams)}
