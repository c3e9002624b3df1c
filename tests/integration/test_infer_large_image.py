"""infer on a large image in a process of its own, whose peak resident memory is the measurement (slow: it upscales
3000 x 2000 to 12000 x 8000)."""
import subprocess

import cv2
import numpy as np
import torch

from conftest import PYTHON, subprocess_env, tiny_generator


def write(path, img) -> str:
    assert cv2.imwrite(str(path), img)
    return str(path)


def test_a_large_image_is_upscaled_in_bounded_memory(tmp_path):
    """3000 x 2000 in, 12000 x 8000 out, 384-pixel tiles: only the 8-bit output is held (a float copy alone would be
    1.15 GB), and the network's memory is bounded by the window and the upsampling bands (docs/inference.md#memory).
    """
    net = tiny_generator(scale=4, num_feat=2, num_block=1, num_grow_ch=1)
    torch.save({'params': net.state_dict()}, tmp_path / 'model.pth')
    rows, cols = np.mgrid[0:2000, 0:3000]
    smooth = np.stack([rows * 255 // 2000, cols * 255 // 3000, (rows + cols) % 256], axis=2).astype(np.uint8)
    write(tmp_path / 'big.png', smooth)
    # A wrapper process reads the peak resident memory of its one child, the command.
    measure = ('import resource, subprocess, sys; '
               'code = subprocess.run([sys.executable, "-m", "esrgan_plugin.infer", "-i", "big.png", "-o", "out", '
               '"-m", "model.pth", "--tile", "384"]).returncode; '
               'print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)')
    env = {**subprocess_env(), 'OMP_NUM_THREADS': '2'}  # the suite's slowest test: both cores
    result = subprocess.run([PYTHON, '-c', measure], capture_output=True, text=True, env=env,
                            timeout=600, cwd=tmp_path)
    code, peak_kib = map(int, result.stdout.split())
    assert code == 0, result.stderr
    header = (tmp_path / 'out' / 'big_out.png').read_bytes()[16:26]  # PNG IHDR: width, height, depth, color type
    assert (int.from_bytes(header[:4], 'big'), int.from_bytes(header[4:8], 'big'), header[8], header[9]) == \
        (12000, 8000, 8, 2)
    print(f'peak resident memory {peak_kib / 2**20:.2f} GiB')
    assert peak_kib * 1024 < 1.5e9
