import os

import numpy as np
import pytest
import torch

from esrgan_plugin import fileio


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / 'sub' / 'model.pth'

    def broken_writer(tmp):
        with open(tmp, 'wb') as f:
            f.write(b'half a checkpoint')
        raise KeyboardInterrupt  # as if the run were interrupted mid-write

    with pytest.raises(KeyboardInterrupt):
        fileio.write_with(str(target), broken_writer)
    assert os.listdir(tmp_path / 'sub') == []


def test_failed_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / 'model.pth'
    fileio.save_torch({'a': torch.ones(2)}, str(target))
    with pytest.raises(RuntimeError):
        fileio.write_with(str(target), lambda tmp: (_ for _ in ()).throw(RuntimeError('disk full')))
    assert torch.equal(torch.load(target, weights_only=True)['a'], torch.ones(2))
    assert os.listdir(tmp_path) == ['model.pth']


def test_image_and_text(tmp_path):
    img = (np.arange(48).reshape(4, 4, 3) * 5).astype(np.uint8)
    fileio.save_image(img, str(tmp_path / 'x.png'))
    import cv2
    assert np.array_equal(cv2.imread(str(tmp_path / 'x.png')), img)
    fileio.save_text('hello\n', str(tmp_path / 'meta.txt'))
    assert (tmp_path / 'meta.txt').read_text() == 'hello\n'
