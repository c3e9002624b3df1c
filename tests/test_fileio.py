import errno
import os
import stat

import cv2
import numpy as np
import pytest
import torch

from esrgan_plugin import fileio
from esrgan_plugin.errors import DiskFullError


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


# ------------------------------------------------------------------ full disks
def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _saves(folder):
    """(what to write first, what to write on the full disk, how to read it back) per kind of file."""
    rng = np.random.default_rng(0)
    small_img, big_img = (rng.integers(0, 256, (n, n, 3), dtype=np.uint8) for n in (8, 400))
    return {
        'checkpoint': (lambda: fileio.save_torch({'params': torch.ones(4)}, str(folder / 'net_g_2.pth')),
                       lambda: fileio.save_torch({'params': torch.rand(200_000)}, str(folder / 'net_g_2.pth')),
                       lambda: torch.load(folder / 'net_g_2.pth', weights_only=True)['params'].tolist() == [1.0] * 4),
        'image': (lambda: fileio.save_image(small_img, str(folder / 'sr.png')),
                  lambda: fileio.save_image(big_img, str(folder / 'sr.png')),
                  lambda: np.array_equal(cv2.imread(str(folder / 'sr.png')), small_img)),
    }


def _assert_one_line_and_intact(err, path, intact):
    message = str(err)
    assert '\n' not in message and message.startswith(f'cannot write {path}: no space left on device')
    assert f'the previous {os.path.basename(path)} is unchanged' in message
    assert intact()
    assert os.listdir(os.path.dirname(path)) == [os.path.basename(path)]  # no temp file left


@pytest.mark.parametrize('kind', ['checkpoint', 'image'])
def test_enospc_is_one_line_and_keeps_the_previous_file(tmp_path, monkeypatch, kind):
    first, second, intact = _saves(tmp_path)[kind]
    first()
    monkeypatch.setattr(os, 'fsync', _enospc)  # some file systems (NFS) report a full disk only here
    with pytest.raises(DiskFullError) as caught:
        second()
    path = str(tmp_path / ('net_g_2.pth' if kind == 'checkpoint' else 'sr.png'))
    _assert_one_line_and_intact(caught.value, path, intact)


@pytest.mark.parametrize('kind', ['checkpoint', 'image'])
def test_a_really_full_disk_is_one_line_and_keeps_the_previous_file(small_disk, kind):
    """torch.save to a path said "unexpected pos 44544 vs 44464" here; a tmpfs of 256 KiB runs out for real."""
    first, second, intact = _saves(small_disk)[kind]
    first()
    with pytest.raises(DiskFullError) as caught:
        second()
    path = str(small_disk / ('net_g_2.pth' if kind == 'checkpoint' else 'sr.png'))
    _assert_one_line_and_intact(caught.value, path, intact)


def test_other_write_errors_are_not_called_a_full_disk(tmp_path):
    with pytest.raises(PermissionError):
        fileio.write_with(str(tmp_path / 'x.bin'), lambda tmp: (_ for _ in ()).throw(PermissionError(13, 'denied')))
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------ permissions and leftovers
@pytest.mark.parametrize('umask, mode', [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        fileio.save_torch({'a': torch.ones(1)}, str(tmp_path / 'a.pth'))
        fileio.save_image(np.zeros((2, 2, 3), np.uint8), str(tmp_path / 'b.png'))
        fileio.save_text('x', str(tmp_path / 'c.txt'))
    finally:
        os.umask(old)
    assert {n: stat.S_IMODE(os.stat(tmp_path / n).st_mode) for n in os.listdir(tmp_path)} == \
        {'a.pth': mode, 'b.png': mode, 'c.txt': mode}


def test_leftovers_of_killed_saves_are_recognised_and_removed(tmp_path):
    models = tmp_path / 'models'
    fileio.save_torch({'a': torch.ones(1)}, str(models / 'net_g_100.pth'))
    pid = os.fork()
    if pid == 0:  # a save killed after writing its temporary file, before the rename
        try:
            fileio.write_with(str(models / 'net_g_238.pth'), lambda tmp: os._exit(0))
        finally:
            os._exit(1)
    os.waitpid(pid, 0)
    killed = [n for n in os.listdir(models) if n != 'net_g_100.pth']
    assert len(killed) == 1 and killed[0].startswith('.net_g_238.') and fileio.is_temp_file(killed[0])
    states = tmp_path / 'states'
    states.mkdir()
    # names left by earlier versions (tempfile.mkstemp), as the issue saw them, and files that must stay
    for name in ('.584.k2j_h4g5.tmp.state', '.net_g_7.a1b2c3d4.tmp.pth', '584.state', '.hidden', 'notes.tmp.txt'):
        (states / name).write_text('x')
    removed = fileio.remove_leftover_temp_files(str(tmp_path))
    assert removed == sorted([str(models / killed[0]), str(states / '.584.k2j_h4g5.tmp.state'),
                              str(states / '.net_g_7.a1b2c3d4.tmp.pth')])
    assert sorted(os.listdir(models)) == ['net_g_100.pth']
    assert sorted(os.listdir(states)) == ['.hidden', '584.state', 'notes.tmp.txt']


def test_errors_without_errno_count_as_a_full_disk_only_when_the_disk_is_full(tmp_path, monkeypatch):
    import lmdb
    eio = lmdb.Error('mdb_txn_commit: Input/output error')  # what LMDB says after a short write
    assert not fileio.is_disk_full(eio, str(tmp_path))
    assert not fileio.is_disk_full(TypeError('a bug'), str(tmp_path))
    monkeypatch.setattr(fileio, 'free_bytes', lambda path: 0)
    assert fileio.is_disk_full(eio, str(tmp_path / 'gt.lmdb'))
    assert fileio.is_disk_full(RuntimeError('[enforce fail at inline_container.cc:672] . unexpected pos'), '.')
    assert not fileio.is_disk_full(TypeError('a bug'), str(tmp_path))
