"""Upscaling a video as a stream: decode, gather ``--batch`` frames, run them through the network together, encode.

Only a batch of frames and the encoder's look-ahead are in memory at any time, whatever the clip's length. The
frames go through the same tiling, precision and colour fix as pictures (``inference.tiling.iter_tiles``,
``inference.upscale.paint_tile``, ``inference.color_fix``): a batch is one tensor of N frames, and with tiles
each window holds the same window of all N frames. Under ``--tile auto`` the memory model sizes the batch as
one picture N frames tall (``plan_frames``). The output is written under a temporary name in the output folder
and renamed when complete (``fileio.atomic_path``); SIGINT or SIGTERM (``training.stop_signals``) stops at the
next batch and removes it (``VideoStopped``).
"""
from __future__ import annotations

import os
import signal
from typing import Callable, Optional, Protocol, Union

import av
import numpy as np
import torch
from tqdm import tqdm

from esrgan_plugin import fileio
from esrgan_plugin.errors import UserFacingError
from esrgan_plugin.inference.color_fix import apply_color_fix
from esrgan_plugin.inference.image_io import resize
from esrgan_plugin.inference.memory import choose_tile, fastest_tile_cap, format_bytes, memory_budget
from esrgan_plugin.inference.tiling import iter_tiles
from esrgan_plugin.inference.upscale import paint_tile
from esrgan_plugin.inference.video_io import (Frame, VideoReader, VideoReadError, VideoWriteError, VideoWriter,
                                              even_size, ffmpeg_reason)
from esrgan_plugin.training.stop_signals import StopSignals


class VideoSettings(Protocol):
    """What a video reads of infer's options (``upscale_files.UpscaleSettings`` has them all)."""
    tile: Union[int, str]  # pixels (0: whole frames) or 'auto'
    tile_given: bool
    tile_pad: int
    max_memory: Optional[int]
    outscale: Optional[float]
    color_fix: str
    video_codec: str
    crf: Optional[int]
    batch: int


class VideoStopped(Exception):
    """SIGINT or SIGTERM arrived while a video was being written; its partial output has been removed."""

    def __init__(self, signum: int, path: str) -> None:
        super().__init__(f'stopped by {signal.Signals(signum).name}; {path} was not written')
        self.signum = signum


def output_size(net: torch.nn.Module, width: int, height: int, outscale: Optional[float]) -> tuple[int, int]:
    """Sides of the frames written: the net's scale or ``--outscale``, made even for yuv420p."""
    if outscale is None:
        scale = int(getattr(net, 'scale', 4))
        return even_size(width * scale, height * scale)
    return even_size(max(1, round(width * outscale)), max(1, round(height * outscale)))


def upscale_batch(net: torch.nn.Module, frames: list[np.ndarray], tile: int, tile_pad: int, color_fix: str,
                  size: tuple[int, int]) -> list[np.ndarray]:
    """RGB uint8 frames of one size upscaled together, each resized to ``size`` (width, height) if it differs."""
    lr = np.stack(frames).astype(np.float32)
    lr /= 255
    scale = int(getattr(net, 'scale', 4))
    count, height, width = lr.shape[:3]
    canvas = np.empty((count, height * scale, width * scale, 3), np.uint8)
    batch = torch.from_numpy(lr).permute(0, 3, 1, 2)  # a view: iter_tiles copies each window to the net
    for piece in iter_tiles(net, batch, tile, tile_pad):
        for i in range(count):
            paint_tile(piece.output[i:i + 1], canvas[i, piece.rows, piece.cols], False, np.dtype(np.uint8))
    outputs = []
    for i in range(count):
        apply_color_fix(color_fix, canvas[i], lr[i], scale)
        outputs.append(np.ascontiguousarray(resize(canvas[i], size)))
    return outputs


def plan_frames(net: torch.nn.Module, height: int, width: int, settings: VideoSettings, name: str,
                report: Callable[[str], None]) -> tuple[int, int]:
    """(tile, batch) for frames of this size: ``--tile`` and ``--batch`` as given, or under ``--tile auto`` the
    largest batch up to ``--batch`` whose whole frames fit the budget, else single frames in the tile that fits.

    N frames at once hold about what one picture N times as tall does (activations and output both grow with the
    pixels), so the memory model of pictures (``memory.choose_tile``) sizes the batch.
    """
    if settings.tile != 'auto':
        return settings.tile, settings.batch
    device = next(net.parameters()).device
    budget, cap = memory_budget(device, settings.max_memory), fastest_tile_cap(device)
    for batch in range(settings.batch, 0, -1):
        chosen = choose_tile(net, height * batch, width, 3, 1, settings.tile_pad, budget, cap)
        if chosen.tile == 0:
            if batch < settings.batch or settings.tile_given:
                report(f'{name}: {batch} whole frame(s) at once, predicted peak {format_bytes(chosen.peak)}')
            return 0, batch
    chosen = choose_tile(net, height, width, 3, 1, settings.tile_pad, budget, cap)
    report(f'{name}: one frame at a time in tile {chosen.tile} ({chosen.tiles} tiles), predicted peak '
           f'{format_bytes(chosen.peak)}')
    return chosen.tile, 1


def _check_net(net: torch.nn.Module) -> None:
    channels = net.conv_first.in_channels // int(getattr(net, 'unshuffle', 1))**2
    if channels != 3:
        raise UserFacingError(f'videos need a colour (3-channel) generator; this one takes {channels} channel(s).')


def upscale_video(net: torch.nn.Module, src: str, dst: str, settings: VideoSettings,
                  report: Callable[[str], None]) -> int:
    """Upscale the video ``src`` into ``dst``; returns the frames written.

    Raises:
        VideoReadError: ``src`` cannot be decoded, or ``dst`` cannot be encoded (nothing is left at ``dst``).
        VideoStopped: SIGINT or SIGTERM arrived (nothing is left at ``dst``).
    """
    _check_net(net)
    reader = VideoReader(src)
    try:
        name = os.path.basename(dst)
        if reader.left_out:
            report(f'{name}: {len(reader.left_out)} stream(s) not copied '
                   f'({", ".join(sorted({s.type for s in reader.left_out}))}); audio and subtitles are')
        context = reader.video.codec_context
        tile, batch = plan_frames(net, context.height, context.width, settings, name, report)
        with StopSignals() as signals, fileio.atomic_path(dst) as tmp:
            writer = VideoWriter(tmp, reader, settings.video_codec, settings.crf)
            try:
                written = _stream(net, reader, writer, tile, batch, settings, signals, dst)
                if signals.received:  # arrived while the encoder was drained: the run stops all the same
                    raise VideoStopped(signals.received, dst)
                return written
            except (av.FFmpegError, VideoWriteError) as err:
                reason = ffmpeg_reason(err)
                raise VideoReadError(f'cannot write {dst} with {writer.codec} ({reason}); skipped.') from None
            finally:
                writer.close()
    finally:
        reader.close()


def _stream(net: torch.nn.Module, reader: VideoReader, writer: VideoWriter, tile: int, batch: int,
            settings: VideoSettings, signals: StopSignals, dst: str) -> int:
    """The loop: frames gathered into batches, upscaled and encoded; other packets copied as they come."""
    pending: list[Frame] = []
    written = 0

    def flush() -> None:
        nonlocal written
        size = output_size(net, pending[0].rgb.shape[1], pending[0].rgb.shape[0], settings.outscale)
        try:
            outputs = upscale_batch(net, [f.rgb for f in pending], tile, settings.tile_pad, settings.color_fix, size)
        except torch.OutOfMemoryError:
            raise UserFacingError(f'out of memory while upscaling {reader.path} ({len(pending)} frame(s) at once, '
                                  f'tile {tile or "none"}); pass a smaller --batch or --tile.') from None
        for rgb, frame in zip(outputs, pending):
            writer.write_frame(rgb, frame)
        written += len(pending)
        bar.update(len(pending))
        pending.clear()

    with tqdm(total=reader.frame_count(), unit='frame', leave=False, desc=os.path.basename(reader.path)) as bar:
        for item in reader.items():
            if isinstance(item, Frame):
                if pending and pending[0].rgb.shape != item.rgb.shape:
                    flush()  # a frame of another size (a stream may change it) starts its own batch
                pending.append(item)
                if len(pending) == batch:
                    flush()
            else:
                writer.copy(item)
            if signals.received:
                raise VideoStopped(signals.received, dst)
        if pending:
            flush()
    writer.finish()
    return written
