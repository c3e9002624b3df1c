"""Damaged or mismatched training data: one line before training starts, never a crash or a traceback."""
import os
import shutil
import subprocess

import cv2
import lmdb
import numpy as np
import pytest
import torch
import yaml

from conftest import PYTHON, TINY_ARCH, run_command, subprocess_env
from esrgan_plugin import train
from esrgan_plugin.data.div2k_dataset import DIV2KPairedDataset
from esrgan_plugin.errors import DataError, one_line
from esrgan_plugin.data.lmdb_check import check_data_file, check_lmdb_pair
from esrgan_plugin.data.preparation import prepare


def make_hr(folder, count=4, size=32, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        cv2.imwrite(str(folder / f'img{i}.png'), rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    return str(folder)


@pytest.fixture
def data(tmp_path):
    """A GT/LQ LMDB pair made by prepare_data, relative to tmp_path (the runs' working directory)."""
    prepare(make_hr(tmp_path / 'hr'), str(tmp_path / 'data'), whole_image=True, workers=1, progress=False)
    return tmp_path / 'data' / 'gt.lmdb', tmp_path / 'data' / 'lq_x4.lmdb'


def options(tmp_path, workers=0):
    opt = {'name': 'damaged', 'model_type': 'ESRGANPSNRModel', 'scale': 4, 'num_gpu': 0, 'manual_seed': 0,
           'datasets': {'train': {'name': 'd', 'type': 'DIV2KPairedDataset', 'dataroot_gt': 'data/gt.lmdb',
                                  'dataroot_lq': 'data/lq_x4.lmdb', 'io_backend': {'type': 'lmdb'}, 'gt_size': 32,
                                  'use_hflip': True, 'use_rot': True, 'num_worker_per_gpu': workers,
                                  'batch_size_per_gpu': 2, 'dataset_enlarge_ratio': 1, 'prefetch_mode': None}},
           'network_g': {'type': 'ESRGANRRDBNet', 'num_in_ch': 3, 'num_out_ch': 3, **TINY_ARCH},
           'path': {'pretrain_network_g': None, 'resume_state': None},
           'train': {'optim_g': {'type': 'Adam', 'lr': 1e-4}, 'total_iter': 2, 'warmup_iter': -1,
                     'scheduler': {'type': 'MultiStepLR', 'milestones': [1], 'gamma': 0.5},
                     'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0}},
           'logger': {'print_freq': 1, 'save_checkpoint_freq': 2, 'use_tb_logger': False}}
    (tmp_path / 'o.yml').write_text(yaml.safe_dump(opt))
    return 'o.yml'


def train_subprocess(tmp_path):
    """The train command in a process of its own: a file that LMDB maps past its end kills the process that reads
    it (SIGBUS), which must not be the test's."""
    env = subprocess_env()
    env['CUDA_VISIBLE_DEVICES'] = ''
    return subprocess.run([PYTHON, '-m', 'esrgan_plugin.train', '-opt', 'o.yml'], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)


def train_in_process(tmp_path, monkeypatch, capsys):
    """The train command in this process; its exit code and what it printed to stderr."""
    monkeypatch.chdir(tmp_path)
    result = run_command(capsys, train.main, '-opt', 'o.yml')
    return result.code, result.err


def truncate(path, size):
    with open(path, 'r+b') as f:
        f.truncate(size)


def test_half_truncated_data_mdb_is_one_line_through_the_train_command(tmp_path, data):
    """Without the check LMDB maps the file and the process dies of SIGBUS (exit 135), with no message."""
    mdb = data[0] / 'data.mdb'
    full = os.path.getsize(mdb)
    truncate(mdb, full // 2)
    options(tmp_path)
    result = train_subprocess(tmp_path)
    assert result.returncode == 1, result.stderr[-2000:]
    assert result.stderr.strip() == (f'error: {os.path.join("data", "gt.lmdb", "data.mdb")} is truncated: '
                                     f'{full // 2} bytes, but its meta page says {full} ({full // 4096} pages of '
                                     '4096); rebuild it with python -m esrgan_plugin.prepare_data (with --overwrite) '
                                     'or copy data/gt.lmdb again from an intact source.')
    assert not (tmp_path / 'experiments').exists() and not (tmp_path / 'tb_logger').exists()


@pytest.mark.parametrize('damage', ['4 KB', '100 bytes', 'overwritten header'])
def test_truncated_or_corrupt_data_mdb_is_one_line(tmp_path, data, monkeypatch, capsys, damage):
    mdb = data[1] / 'data.mdb'
    if damage == '4 KB':  # raw lmdb.InvalidError: MDB_INVALID without the check
        truncate(mdb, 4096)
        expected = 'data.mdb is truncated or damaged: 4096 bytes'
    elif damage == '100 bytes':
        truncate(mdb, 100)
        expected = 'data.mdb is not an LMDB data file'
    else:
        with open(mdb, 'r+b') as f:
            f.write(b'\0' * 64)
        expected = 'data.mdb is not an LMDB data file'
    options(tmp_path)
    code, err = train_in_process(tmp_path, monkeypatch, capsys)
    assert code == 1 and err.count('\n') == 1 and err.startswith('error: data/lq_x4.lmdb/') and expected in err
    assert not (tmp_path / 'experiments').exists()
    with pytest.raises(DataError, match=expected):  # the dataset checks too (e.g. when --force_yml skips the above)
        DIV2KPairedDataset({'dataroot_gt': str(data[0]), 'dataroot_lq': str(data[1]), 'io_backend': {'type': 'lmdb'},
                            'scale': 4, 'phase': 'val'})


def test_check_agrees_with_lmdb_on_intact_files(tmp_path, data):
    """Intact files of every size pass: ours, and one grown over many transactions by lmdb itself."""
    check_lmdb_pair(str(data[0]), str(data[1]))
    path = str(tmp_path / 'grown.lmdb')
    env = lmdb.open(path, map_size=1 << 24)
    rng = np.random.default_rng(0)
    for i in range(20):
        with env.begin(write=True) as txn:
            txn.put(f'k{i}'.encode(), rng.bytes(int(rng.integers(1, 20000))))
            if i % 3 == 0:
                txn.delete(f'k{i // 2}'.encode())
    pages = env.info()['last_pgno'] + 1
    env.close()
    check_data_file(path)
    mdb = os.path.join(path, 'data.mdb')
    truncate(mdb, pages * 4096 - 1)
    with pytest.raises(DataError, match=f'but its meta page says {pages * 4096}'):
        check_data_file(path)


def test_gt_and_lq_from_different_runs_are_refused(tmp_path, monkeypatch, capsys):
    hr = make_hr(tmp_path / 'hr')
    prepare(hr, str(tmp_path / 'a'), whole_image=True, workers=1, progress=False)
    prepare(hr, str(tmp_path / 'data'), whole_image=True, workers=1, progress=False)
    shutil.rmtree(tmp_path / 'data' / 'gt.lmdb')
    shutil.copytree(tmp_path / 'a' / 'gt.lmdb', tmp_path / 'data' / 'gt.lmdb')  # same keys and sizes, other run
    options(tmp_path)
    code, err = train_in_process(tmp_path, monkeypatch, capsys)
    assert code == 1 and err.count('\n') == 1
    assert 'GT data/gt.lmdb and LQ data/lq_x4.lmdb were built by different prepare_data runs' in err
    assert not (tmp_path / 'experiments').exists()
    opt = {'dataroot_gt': str(tmp_path / 'data' / 'gt.lmdb'), 'dataroot_lq': str(tmp_path / 'data' / 'lq_x4.lmdb'),
           'io_backend': {'type': 'lmdb'}, 'scale': 4, 'phase': 'val'}
    with pytest.raises(DataError, match='different prepare_data runs'):
        DIV2KPairedDataset(opt)


def test_lmdbs_without_a_build_identifier_still_load(tmp_path):
    """basicsr's own tool writes no identifier; such pairs are accepted as before."""
    from basicsr.utils.lmdb_util import make_lmdb_from_imgs
    hr = make_hr(tmp_path / 'gt')
    lr = tmp_path / 'lq'
    lr.mkdir()
    for name in sorted(os.listdir(hr)):
        cv2.imwrite(str(lr / name), cv2.imread(os.path.join(hr, name))[::4, ::4])
    names = sorted(n[:-4] for n in os.listdir(hr))
    for kind in ('gt', 'lq'):
        make_lmdb_from_imgs(str(tmp_path / kind), str(tmp_path / f'{kind}.lmdb'), [f'{n}.png' for n in names], names,
                            map_size=1 << 24)
    dataset = DIV2KPairedDataset({'dataroot_gt': str(tmp_path / 'gt.lmdb'), 'dataroot_lq': str(tmp_path / 'lq.lmdb'),
                                  'io_backend': {'type': 'lmdb'}, 'scale': 4, 'phase': 'val'})
    assert len(dataset) == 4 and dataset[0]['gt'].shape == (3, 32, 32)
    dataset.close()


def _spoil_values(lmdb_path):
    env = lmdb.open(str(lmdb_path), map_size=1 << 24)
    with env.begin(write=True) as txn:
        for key, _ in list(txn.cursor()):
            txn.put(key, b'not a png')
    env.close()


def test_undecodable_value_in_a_worker_is_the_workers_one_line(tmp_path, data):
    """torch re-raises a worker's DataError as 'Caught DataError in DataLoader worker process 0' + traceback."""
    _spoil_values(data[1])
    dataset = DIV2KPairedDataset({'dataroot_gt': str(data[0]), 'dataroot_lq': str(data[1]),
                                  'io_backend': {'type': 'lmdb'}, 'scale': 4, 'phase': 'val'})
    loader = torch.utils.data.DataLoader(dataset, batch_size=1, num_workers=2)
    with pytest.raises(DataError) as caught:
        next(iter(loader))
    assert 'DataLoader worker process' in str(caught.value)  # what torch gives ...
    assert one_line(caught.value) == f'key img0 in {data[1]} is not a decodable image; rebuild the database.'


def test_undecodable_value_during_training_with_two_workers_is_one_line(tmp_path, data, monkeypatch, capsys):
    _spoil_values(data[1])
    options(tmp_path, workers=2)
    code, err = train_in_process(tmp_path, monkeypatch, capsys)
    assert code == 1, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith('error: key img') and last.endswith('is not a decodable image; rebuild the database.')
    assert 'Traceback' not in err and 'Caught DataError' not in err


def test_basicsrs_own_dataset_type_is_checked_before_training_too(tmp_path, data, monkeypatch, capsys):
    """The command checks every LMDB of the option file, whichever dataset type will read it."""
    truncate(data[0] / 'data.mdb', os.path.getsize(data[0] / 'data.mdb') // 2)
    options(tmp_path)
    opt = yaml.safe_load((tmp_path / 'o.yml').read_text())
    opt['datasets']['train']['type'] = 'PairedImageDataset'
    (tmp_path / 'o.yml').write_text(yaml.safe_dump(opt))
    code, err = train_in_process(tmp_path, monkeypatch, capsys)
    assert code == 1 and err.count('\n') == 1 and err.startswith('error: data/gt.lmdb/data.mdb is truncated')
    assert not (tmp_path / 'experiments').exists()
