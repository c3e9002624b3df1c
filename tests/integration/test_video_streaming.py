"""Videos through the real entry point in a child process: memory stays the same for a clip ten times longer
(frames are streamed), and SIGTERM in the middle of a clip exits 143 leaving nothing at the output's name."""
import os
import signal
import subprocess
import time

import pytest
import torch

from conftest import PYTHON, subprocess_env, tiny_generator
from video_clips import make_clip

pytestmark = pytest.mark.slow


@pytest.fixture
def model(tmp_path):
    torch.save({'params': tiny_generator(scale=4, seed=1, num_block=1).state_dict()}, tmp_path / 'net.pth')
    return tmp_path / 'net.pth'


def infer_command(clip, out, model) -> list[str]:
    return [PYTHON, '-m', 'esrgan_plugin.infer', '-i', str(clip), '-o', str(out), '-m', str(model)]


def peak_resident_bytes(argv: list[str]) -> int:
    """ru_maxrss of the child itself (os.wait4: not the largest of all the children this process waited for)."""
    child = subprocess.Popen(argv, env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    assert child.returncode == 0, stderr.decode()[-2000:]
    return usage.ru_maxrss * 1024


def test_memory_of_a_30_second_clip_is_that_of_a_3_second_clip(tmp_path, model):
    # 25 fps: 75 and 750 frames of 64x48, upscaled to 256x192. The 750 output frames alone would be 110 MB, more
    # than the 10 % allowed, if they were held rather than streamed; 75 frames fill the encoder's look-ahead, so
    # the short clip too holds all the encoder ever holds.
    peaks = {}
    for seconds in (3, 30):
        clip = tmp_path / f'clip{seconds}.mp4'
        make_clip(clip, frames=25 * seconds, width=64, height=48, rate=25)
        peaks[seconds] = peak_resident_bytes(infer_command(clip, tmp_path / 'out', model))
    assert peaks[30] <= 1.1 * peaks[3], peaks


def test_sigterm_mid_video_exits_143_and_leaves_no_file(tmp_path, model):
    clip = tmp_path / 'clip.mp4'
    make_clip(clip, frames=400, width=64, height=48, rate=25)
    out = tmp_path / 'out'
    child = subprocess.Popen(infer_command(clip, out, model), env=subprocess_env(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    # The temporary file appears when the video starts; a second later frames are being written into it.
    while not (out.is_dir() and any(n.startswith('.clip_out.') for n in os.listdir(out))):
        assert child.poll() is None and time.time() < deadline, child.communicate()
        time.sleep(0.2)
    time.sleep(1)
    child.send_signal(signal.SIGTERM)
    _, stderr = child.communicate(timeout=120)
    assert child.returncode == 143, stderr
    assert stderr.strip().splitlines()[-1] == f'error: stopped by SIGTERM; {out / "clip_out.mp4"} was not written'
    assert os.listdir(out) == []
