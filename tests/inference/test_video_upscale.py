"""Upscaling videos: every frame in order at its own time, sound and subtitles copied, batches equal to single
frames, odd sizes, choices of encoder, bad files skipped with one line, and stops that leave nothing behind."""
import os
import signal

import cv2
import numpy as np
import pytest
import torch

from conftest import run_command, tiny_generator
from esrgan_plugin import infer
from esrgan_plugin.inference import video_upscale
from esrgan_plugin.inference.image_io import Picture
from esrgan_plugin.inference.upscale import list_inputs, plan_outputs, upscale_to_array
from esrgan_plugin.inference.video_io import even_size, video_codec
from video_clips import make_clip, packets, pattern, read_frames, video_info, write_srt


@pytest.fixture
def net():
    return tiny_generator(scale=4, seed=3)


@pytest.fixture
def model(tmp_path, net):
    torch.save({'params': net.state_dict()}, tmp_path / 'net.pth')
    return tmp_path / 'net.pth'


def net_output(net, rgb: np.ndarray) -> np.ndarray:
    """The net run directly on one RGB uint8 frame, as 8-bit RGB: the reference for the pipeline."""
    x = torch.from_numpy(rgb.astype(np.float32) / 255).permute(2, 0, 1)[None]
    with torch.no_grad():
        out = net(x)[0].clamp(0, 1).permute(1, 2, 0).numpy()
    return np.round(out * 255)


def hidden_files(folder) -> list:
    return [n for n in os.listdir(folder) if n.startswith('.')]


def test_a_clip_keeps_every_frame_in_order_at_its_time_with_its_sound(tmp_path, capsys, net, model):
    clip = tmp_path / 'clip.mp4'
    make_clip(clip, frames=7, audio='aac', rotation=90)
    # --batch 3 over 7 frames: two full batches and a last one of a single frame.
    result = run_command(capsys, infer.main, '-i', clip, '-o', tmp_path / 'out', '-m', model, '--batch', 3)
    assert result.code == 0, result.err
    out = tmp_path / 'out' / 'clip_out.mp4'
    frames_in, times_in = read_frames(clip)
    frames_out, times_out = read_frames(out)
    assert len(frames_out) == len(frames_in) == 7
    assert times_out == pytest.approx(times_in, abs=1e-4)
    references = [net_output(net, f) for f in frames_in]
    for i, frame in enumerate(frames_out):
        assert frame.shape == (4 * 24, 4 * 32, 3)
        distances = [np.abs(frame - ref).mean() for ref in references]
        assert int(np.argmin(distances)) == i, distances
    assert packets(out, 'audio') == packets(clip, 'audio') != []
    info = video_info(out)
    assert (info['codec'], info['pix_fmt'], info['rotation']) == ('h264', 'yuv420p', 90)
    assert hidden_files(tmp_path / 'out') == []


def test_a_variable_frame_rate_keeps_its_timestamps_pcm_sound_and_subtitles(tmp_path, capsys, model):
    write_srt(tmp_path / 'text.srt')
    clip = tmp_path / 'vfr.mkv'
    times_ms = [0, 40, 100, 110, 250, 300, 420, 430]
    make_clip(clip, frames=8, audio='pcm_s16le', pts_ms=times_ms, subtitles=tmp_path / 'text.srt')
    result = run_command(capsys, infer.main, '-i', clip, '-o', tmp_path / 'out', '-m', model, '--batch', 2,
                         '--video-codec', 'libx265', '--crf', 30)
    assert result.code == 0, result.err
    out = tmp_path / 'out' / 'vfr_out.mkv'
    _, times_out = read_frames(out)
    assert times_out == pytest.approx([t / 1000 for t in times_ms], abs=1e-4)
    assert packets(out, 'audio') == packets(clip, 'audio') != []
    assert packets(out, 'subtitle') == packets(clip, 'subtitle') == [(b'line one', 0.2), (b'line two', 0.5)]
    assert video_info(out)['codec'] == 'hevc'


def test_batches_and_tiles_give_the_frames_of_the_net_run_frame_by_frame(net):
    frames = [pattern(i, 20, 14) for i in range(3)]
    references = [net_output(net, f) for f in frames]
    for tile in (0, 8):
        batched = video_upscale.upscale_batch(net, frames, tile, 4, 'none', (80, 56))
        single = [video_upscale.upscale_batch(net, [f], tile, 4, 'none', (80, 56))[0] for f in frames]
        for got, alone, ref in zip(batched, single, references):
            assert np.abs(got.astype(int) - alone).max() <= 1
            if tile == 0:  # tiles see less context than the whole frame (docs/inference.md#tiling)
                assert np.abs(got - ref).max() <= 1


def test_colour_fix_of_a_frame_is_the_colour_fix_of_a_picture(net):
    frames = [pattern(i, 20, 14) for i in range(2)]
    batched = video_upscale.upscale_batch(net, frames, 0, 4, 'mean', (80, 56))
    for frame, got in zip(frames, batched):
        picture = Picture(frame.astype(np.float32) / 255, None, np.dtype(np.uint8))
        expected = upscale_to_array(net, picture, np.dtype(np.uint8), color_fix='mean')[..., ::-1]  # BGR to RGB
        assert np.abs(got.astype(int) - expected).max() <= 1


def test_frames_written_have_even_sides(net):
    assert even_size(33, 24) == (32, 24) and even_size(1, 1) == (2, 2)
    assert video_upscale.output_size(net, 15, 11, None) == (60, 44)
    assert video_upscale.output_size(net, 30, 22, 1.1) == (32, 24)  # 33 x 24.2 rounded, then made even
    frame = pattern(0, 30, 22)
    out = video_upscale.upscale_batch(net, [frame], 0, 4, 'none', (32, 24))[0]
    expected = cv2.resize(net_output(net, frame).astype(np.uint8), (32, 24), interpolation=cv2.INTER_AREA)
    assert out.shape == (24, 32, 3) and np.abs(out.astype(int) - expected).max() <= 1


def test_videos_keep_their_container_and_are_listed_beside_pictures(tmp_path):
    for name in ('b.MKV', 'a.png', 'c.webm', 'notes.txt'):
        (tmp_path / name).write_bytes(b'')
    inputs = list_inputs(str(tmp_path))
    assert [os.path.basename(p) for p in inputs] == ['a.png', 'b.MKV', 'c.webm']
    outputs = plan_outputs(inputs, str(tmp_path / 'out'), '_x', 'jpg')
    assert [os.path.basename(p) for p in outputs] == ['a_x.jpg', 'b_x.mkv', 'c_x.webm']
    assert video_codec('auto', 'c_x.webm') == 'libvpx-vp9' and video_codec('auto', 'b_x.mkv') == 'libx264'
    assert video_codec('libx265', 'c_x.mp4') == 'libx265'


def test_bad_videos_are_skipped_with_one_line_each_and_the_others_written(tmp_path, capsys, model):
    folder = tmp_path / 'in'
    folder.mkdir()
    cv2.imwrite(str(folder / 'photo.png'), pattern(0, 12, 10))
    make_clip(folder / 'web.webm', frames=3, audio=None, codec='libvpx-vp9')
    make_clip(tmp_path / 'whole.mp4', frames=6)
    data = (tmp_path / 'whole.mp4').read_bytes()
    (folder / 'cut.mp4').write_bytes(data[:len(data) // 2])  # the index (moov) is at the end of the file
    (folder / 'text.mkv').write_text('not a video at all')
    make_clip(folder / 'sound.mp4', frames=0, audio='aac', pts_ms=[100])  # a tone: mp4 drops a frameless video
    result = run_command(capsys, infer.main, '-i', folder, '-o', tmp_path / 'out', '-m', model)
    assert result.code == 1
    errors = [line for line in result.err.splitlines() if line.startswith('error:')]
    assert len(errors) == 3
    for name, reason in (('cut.mp4', 'cannot be opened as a video'), ('text.mkv', 'cannot be opened as a video'),
                         ('sound.mp4', 'no video stream')):
        assert any(name in line and reason in line for line in errors), (name, errors)
    assert sorted(os.listdir(tmp_path / 'out')) == ['photo_out.png', 'web_out.webm']
    assert video_info(tmp_path / 'out' / 'web_out.webm')['codec'] == 'vp9'
    assert '2 of 5 file(s) written' in result.err and '3 failed' in result.err


def test_a_codec_the_container_cannot_hold_is_one_line_and_no_file(tmp_path, capsys, model):
    make_clip(tmp_path / 'web.webm', frames=2, audio=None, codec='libvpx-vp9')
    result = run_command(capsys, infer.main, '-i', tmp_path / 'web.webm', '-o', tmp_path / 'out', '-m', model,
                         '--video-codec', 'libx264')
    assert result.code == 1
    assert f'error: cannot write {tmp_path / "out" / "web_out.webm"} with libx264 (' in result.err
    assert 'Traceback' not in result.err and os.listdir(tmp_path / 'out') == []


@pytest.mark.parametrize('signum, code', [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_stop_mid_video_removes_the_partial_file_and_exits_128_plus_the_signal(tmp_path, capsys, model,
                                                                                 monkeypatch, signum, code):
    clip = tmp_path / 'clip.mp4'
    make_clip(clip, frames=6)
    real_batch = video_upscale.upscale_batch
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def batch_then_stop(*args, **kwargs):
        outputs = real_batch(*args, **kwargs)
        os.kill(os.getpid(), signum)  # as `kill` or Ctrl-C sends it, after the first batch
        return outputs
    monkeypatch.setattr(video_upscale, 'upscale_batch', batch_then_stop)
    result = run_command(capsys, infer.main, '-i', clip, '-o', tmp_path / 'out', '-m', model, '--batch', 2)
    assert result.code == code
    name = signal.Signals(signum).name
    assert result.err.strip().splitlines()[-1] == f'error: stopped by {name}; {tmp_path / "out" / "clip_out.mp4"} ' \
        'was not written'
    assert os.listdir(tmp_path / 'out') == []
    assert {s: signal.getsignal(s) for s in handlers} == handlers  # the handlers are put back
