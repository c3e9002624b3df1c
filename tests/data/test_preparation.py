"""Data preparation: sub-image layout, LR alignment, official LR folders, safe outputs, clear errors."""
import os
import subprocess

import cv2
import lmdb
import numpy as np
import pytest
from basicsr.utils.matlab_functions import imresize

from conftest import PYTHON, REPO_ROOT, run_command, subprocess_env
from esrgan_plugin import prepare_data
from esrgan_plugin.data import preparation
from esrgan_plugin.data.image_store import DataError, read_meta_info
from esrgan_plugin.data.preparation import prepare, window_starts


def _random_image(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _matlab_lr(hr, scale):
    """Reference LR computed here, independently of the code under test."""
    return np.clip(np.round(imresize(hr.astype(np.float64) / 255.0, 1 / scale) * 255), 0, 255).astype(np.uint8)


def _lmdb_items(path):
    env = lmdb.open(path, readonly=True, lock=False)
    with env.begin() as txn:
        items = {k.decode(): cv2.imdecode(np.frombuffer(v, np.uint8), cv2.IMREAD_COLOR) for k, v in txn.cursor()}
    env.close()
    return items


def test_window_starts_follow_basicsr_extract_subimages():
    assert window_starts(1000, 480, 240, 0) == [0, 240, 480, 520]  # 40-pixel strip gets a flush window
    assert window_starts(960, 480, 240, 0) == [0, 240, 480]  # exact fit: nothing extra
    assert window_starts(1000, 480, 240, 40) == [0, 240, 480]  # strip not wider than thresh: dropped
    assert window_starts(480, 480, 240, 0) == [0]
    assert window_starts(479, 480, 240, 0) == []


@pytest.mark.parametrize('workers', [1, 2])
def test_subimage_count_and_lr_alignment_for_odd_sizes(tmp_path, workers):
    hr = _random_image(203, 157)  # neither side a multiple of the scale
    (tmp_path / 'hr').mkdir()
    cv2.imwrite(str(tmp_path / 'hr' / 'pic.png'), hr)
    out = prepare(str(tmp_path / 'hr'), str(tmp_path / 'out'), scale=4, crop=48, step=24, thresh=0,
                  folders=True, workers=workers, progress=False)

    # HR is cut to 200x156 first; rows at 0,24,...,144 plus 152 flush (8 left over), columns 0..96 plus 108.
    rows, cols = [0, 24, 48, 72, 96, 120, 144, 152], [0, 24, 48, 72, 96, 108]
    assert out.num_pairs == len(rows) * len(cols) == 48
    gt, lq = _lmdb_items(out.gt_lmdb), _lmdb_items(out.lq_lmdb)
    assert sorted(gt) == sorted(lq) == [f'pic_s{i:03d}' for i in range(1, 49)]
    lr = _matlab_lr(hr[:200, :156], 4)
    for i, (y, x) in enumerate([(y, x) for y in rows for x in cols], 1):
        key = f'pic_s{i:03d}'
        np.testing.assert_array_equal(gt[key], hr[y:y + 48, x:x + 48])
        np.testing.assert_array_equal(lq[key], lr[y // 4:y // 4 + 12, x // 4:x // 4 + 12])
        np.testing.assert_array_equal(cv2.imread(os.path.join(out.lq_folder, key + '.png')), lq[key])
    meta = open(os.path.join(out.gt_lmdb, 'meta_info.txt')).read().splitlines()
    # the first line also carries the run's build identifier, the same in GT and LQ
    first_gt, build = meta[0].split(' build=')
    assert first_gt == 'pic_s001.png (48,48,3) 1' and len(meta) == 48 and meta[1] == 'pic_s002.png (48,48,3) 1'
    assert open(os.path.join(out.lq_lmdb, 'meta_info.txt')).readline() == f'pic_s001.png (12,12,3) 1 build={build}\n'


def test_thresh_drops_thin_edge_strips(tmp_path):
    (tmp_path / 'hr').mkdir()
    cv2.imwrite(str(tmp_path / 'hr' / 'a.png'), _random_image(203, 157))
    # leftover strips: 8 rows (dropped with thresh 10), 12 columns (kept)
    out = prepare(str(tmp_path / 'hr'), str(tmp_path / 'out'), crop=48, step=24, thresh=10, progress=False)
    assert out.num_pairs == 7 * 6


def test_whole_image_mode_crops_to_scale_multiple_and_matches_imresize(tmp_path):
    (tmp_path / 'hr').mkdir()
    hr = _random_image(203, 157, seed=3)
    cv2.imwrite(str(tmp_path / 'hr' / 'photo.png'), hr)
    out = prepare(str(tmp_path / 'hr'), str(tmp_path / 'out'), scale=4, whole_image=True, lmdb=False,
                  folders=True, progress=False)
    assert out.num_pairs == 1 and out.gt_lmdb is None
    np.testing.assert_array_equal(cv2.imread(os.path.join(out.gt_folder, 'photo.png')), hr[:200, :156])
    np.testing.assert_array_equal(cv2.imread(os.path.join(out.lq_folder, 'photo.png')), _matlab_lr(hr[:200, :156], 4))


def _official_layout(tmp_path, sizes=((40, 52), (33, 27)), scale=4, lr_name='{}x4.png'):
    """DIV2K-like folders where HR is LR repeated scale x scale, so alignment is visible pixel by pixel."""
    (tmp_path / 'HR').mkdir()
    (tmp_path / 'LR').mkdir()
    lrs = {}
    for i, (h, w) in enumerate(sizes, 1):
        lr = _random_image(h, w, seed=i)
        stem = f'{i:04d}'
        cv2.imwrite(str(tmp_path / 'LR' / lr_name.format(stem)), lr)
        cv2.imwrite(str(tmp_path / 'HR' / f'{stem}.png'), lr.repeat(scale, 0).repeat(scale, 1))
        lrs[stem] = lr
    return str(tmp_path / 'HR'), str(tmp_path / 'LR'), lrs


def test_official_lr_folder_is_used_and_aligned(tmp_path):
    hr_dir, lr_dir, lrs = _official_layout(tmp_path)
    out = prepare(hr_dir, str(tmp_path / 'out'), crop=64, step=32, lr_dir=lr_dir, workers=2, progress=False)
    gt, lq = _lmdb_items(out.gt_lmdb), _lmdb_items(out.lq_lmdb)
    assert len(gt) == out.num_pairs > 0
    for key in gt:
        np.testing.assert_array_equal(gt[key][::4, ::4], lq[key])  # LQ is the given file, cut at the same place
    # the given LR was used, not bicubic of HR (which would blur the 4x4 blocks)
    assert not np.array_equal(_matlab_lr(gt['0001_s001'], 4), lq['0001_s001'])


def test_official_lr_folder_with_hr_names_in_whole_image_mode(tmp_path):
    hr_dir, lr_dir, lrs = _official_layout(tmp_path, lr_name='{}.png')
    out = prepare(hr_dir, str(tmp_path / 'out'), lr_dir=lr_dir, whole_image=True, progress=False)
    lq = _lmdb_items(out.lq_lmdb)
    for stem, lr in lrs.items():
        np.testing.assert_array_equal(lq[stem], lr)


def test_missing_or_misaligned_lr_is_refused(tmp_path):
    hr_dir, lr_dir, _ = _official_layout(tmp_path)
    os.remove(os.path.join(lr_dir, '0002x4.png'))
    with pytest.raises(DataError, match=r'no LR image for .*0002\.png'):
        prepare(hr_dir, str(tmp_path / 'out'), crop=64, step=32, lr_dir=lr_dir, progress=False)
    cv2.imwrite(os.path.join(lr_dir, '0002x4.png'), _random_image(30, 27))
    with pytest.raises(DataError, match=r'0002x4\.png is 27x30 .* must be 27x33'):
        prepare(hr_dir, str(tmp_path / 'out'), crop=64, step=32, lr_dir=lr_dir, progress=False)
    assert not (tmp_path / 'out').exists()


def test_bad_inputs_are_one_clear_error(tmp_path):
    with pytest.raises(DataError, match='does not exist'):
        prepare(str(tmp_path / 'nope'), str(tmp_path / 'out'))
    (tmp_path / 'empty').mkdir()
    (tmp_path / 'empty' / 'notes.txt').write_text('x')
    with pytest.raises(DataError, match='no images'):
        prepare(str(tmp_path / 'empty'), str(tmp_path / 'out'))
    with pytest.raises(DataError, match='multiples of the scale'):
        prepare(str(tmp_path / 'empty'), str(tmp_path / 'out'), crop=50)
    (tmp_path / 'small').mkdir()
    cv2.imwrite(str(tmp_path / 'small' / 'a.png'), _random_image(20, 20))
    with pytest.raises(DataError, match='smaller than the crop size'):
        prepare(str(tmp_path / 'small'), str(tmp_path / 'out'), crop=48, step=24)
    cv2.imwrite(str(tmp_path / 'small' / 'my photo.png'), _random_image(20, 20))
    with pytest.raises(DataError, match='cannot be an LMDB key'):
        prepare(str(tmp_path / 'small'), str(tmp_path / 'out'), whole_image=True)
    assert not (tmp_path / 'out').exists()


def test_existing_output_is_kept_without_overwrite(tmp_path):
    (tmp_path / 'hr').mkdir()
    cv2.imwrite(str(tmp_path / 'hr' / 'a.png'), _random_image(48, 48))
    out = prepare(str(tmp_path / 'hr'), str(tmp_path / 'out'), whole_image=True, progress=False)
    before = open(os.path.join(out.gt_lmdb, 'data.mdb'), 'rb').read()
    cv2.imwrite(str(tmp_path / 'hr' / 'a.png'), _random_image(48, 48, seed=9))
    with pytest.raises(DataError, match='already exists; pass --overwrite'):
        prepare(str(tmp_path / 'hr'), str(tmp_path / 'out'), whole_image=True, progress=False)
    assert open(os.path.join(out.gt_lmdb, 'data.mdb'), 'rb').read() == before
    prepare(str(tmp_path / 'hr'), str(tmp_path / 'out'), whole_image=True, overwrite=True, progress=False)
    np.testing.assert_array_equal(_lmdb_items(out.gt_lmdb)['a'], _random_image(48, 48, seed=9))
    assert sorted(os.listdir(tmp_path / 'out')) == ['gt.lmdb', 'lq_x4.lmdb']


def _assert_nothing_complete(out_dir):
    left = os.listdir(out_dir) if os.path.isdir(out_dir) else []
    assert not [n for n in left if n.endswith('.lmdb')], left
    for name in left:  # whatever remains must not pass for a database
        with pytest.raises(DataError):
            read_meta_info(os.path.join(out_dir, name))


def test_failing_worker_leaves_no_complete_database(tmp_path):
    (tmp_path / 'hr').mkdir()
    for i in range(4):
        cv2.imwrite(str(tmp_path / 'hr' / f'{i}.png'), _random_image(64, 64, seed=i))
    data = (tmp_path / 'hr' / '2.png').read_bytes()
    (tmp_path / 'hr' / '2.png').write_bytes(data[:len(data) // 2])  # header intact, pixels cut off
    with pytest.raises(DataError, match=r'2\.png could not be decoded'):
        prepare(str(tmp_path / 'hr'), str(tmp_path / 'out'), crop=32, step=16, workers=2, progress=False)
    _assert_nothing_complete(str(tmp_path / 'out'))


def test_interrupted_build_leaves_no_complete_database(tmp_path, monkeypatch):
    (tmp_path / 'hr').mkdir()
    for i in range(4):
        cv2.imwrite(str(tmp_path / 'hr' / f'{i}.png'), _random_image(64, 64, seed=i))
    real, calls = preparation._process_image, []

    def interrupted_on_third(settings, job):
        calls.append(job.key)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(settings, job)

    monkeypatch.setattr(preparation, '_process_image', interrupted_on_third)
    with pytest.raises(KeyboardInterrupt):
        prepare(str(tmp_path / 'hr'), str(tmp_path / 'out'), crop=32, step=16, workers=1, folders=True,
                progress=False)
    assert len(calls) == 3  # two images were already written when it stopped
    _assert_nothing_complete(str(tmp_path / 'out'))
    assert not [n for n in os.listdir(tmp_path / 'out') if n in ('gt', 'lq_x4')]


def test_killed_build_leftover_is_not_mistaken_for_a_database(tmp_path):
    from esrgan_plugin import fileio

    (tmp_path / 'hr').mkdir()
    cv2.imwrite(str(tmp_path / 'hr' / 'a.png'), _random_image(48, 48))
    # what a SIGKILL mid-build leaves: a .partial folder with data but no meta_info.txt
    stale = tmp_path / 'out' / ('gt.lmdb' + fileio.PARTIAL_SUFFIX)
    stale.mkdir(parents=True)
    (stale / 'data.mdb').write_bytes(b'\0' * 4096)
    with pytest.raises(DataError, match='no meta_info.txt'):
        read_meta_info(str(stale))
    out = prepare(str(tmp_path / 'hr'), str(tmp_path / 'out'), whole_image=True, progress=False)  # replaces it
    assert sorted(os.listdir(tmp_path / 'out')) == ['gt.lmdb', 'lq_x4.lmdb']
    assert [e.key for e in read_meta_info(out.gt_lmdb)] == ['a']


def test_set14_whole_image_lr_matches_published_lr(tmp_path, shared_data):
    out = prepare(os.path.join(shared_data, 'Set14', 'GTmod12'), str(tmp_path / 'out'), whole_image=True,
                  lmdb=False, folders=True, workers=2, progress=False)
    ref_dir = os.path.join(shared_data, 'Set14', 'LRbicx4')
    names = sorted(os.listdir(ref_dir))
    assert out.num_pairs == len(names) == 14
    total = off = 0
    for name in names:
        ours = cv2.imread(os.path.join(out.lq_folder, name)).astype(int)
        ref = cv2.imread(os.path.join(ref_dir, name)).astype(int)
        assert ours.shape == ref.shape, name
        diff = np.abs(ours - ref)
        assert diff.max() <= 1, name  # only rounding ties may differ
        total, off = total + diff.size, off + int((diff > 0).sum())
    assert off <= 1e-4 * total


def test_cli_help(capsys):
    result = run_command(capsys, prepare_data.main, '-h')
    assert result.code == 0, result.err
    assert '--lr-dir' in result.out and '--whole-image' in result.out and '--overwrite' in result.out


def test_cli_bad_input_is_one_line_error(tmp_path, capsys):
    result = run_command(capsys, prepare_data.main, tmp_path / 'nope', tmp_path / 'o')
    assert result.code == 1
    assert result.err.startswith('error: HR folder') and result.err.count('\n') == 1
    assert not (tmp_path / 'o').exists()


def test_cli_script_builds_databases_and_refuses_to_overwrite(tmp_path, capsys):
    (tmp_path / 'hr').mkdir()
    cv2.imwrite(str(tmp_path / 'hr' / 'a.png'), _random_image(100, 80))
    args = [str(tmp_path / 'hr'), str(tmp_path / 'o'), '--crop', '48', '--step', '24', '--workers', '2']
    # the script from a clone, as a user runs it: a real process, since the script hands over to python -m
    result = subprocess.run([PYTHON, os.path.join(REPO_ROOT, 'scripts', 'prepare_data.py')] + args,
                            capture_output=True, text=True, env=subprocess_env(), timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert '12 pairs written' in result.stdout
    assert [e.shape for e in read_meta_info(str(tmp_path / 'o' / 'lq_x4.lmdb'))] == [(12, 12, 3)] * 12
    again = run_command(capsys, prepare_data.main, *args)
    assert again.code == 1 and 'already exists; pass --overwrite' in again.err


def test_parallel_prepare_after_the_caller_used_threads(tmp_path):
    """A caller whose OpenCV/torch thread pools are running (like the demo) must not hang the workers.

    A child interpreter: the caller's thread pools are the point, started afresh with default thread counts."""
    import textwrap

    code = textwrap.dedent(f'''
        import cv2, numpy as np, torch, esrgan_plugin
        from esrgan_plugin.data.preparation import prepare
        torch.set_num_threads(2)
        big = np.random.rand(1200, 1200, 3).astype(np.float32)
        for _ in range(3):
            cv2.GaussianBlur(big, (31, 31), 5)
            torch.randn(600, 600) @ torch.randn(600, 600)
        import os
        os.makedirs({str(tmp_path / 'hr')!r})
        for i in range(4):
            cv2.imwrite({str(tmp_path / 'hr')!r} + f'/{{i}}.png', (np.random.rand(64, 64, 3) * 255).astype(np.uint8))
        out = prepare({str(tmp_path / 'hr')!r}, {str(tmp_path / 'out')!r}, crop=32, step=32, workers=2,
                      progress=False)
        print('pairs', out.num_pairs)
    ''')
    env = subprocess_env()
    env.pop('OMP_NUM_THREADS', None)
    run = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, env=env, timeout=90)
    assert run.returncode == 0, run.stderr[-2000:]
    assert 'pairs 16' in run.stdout


# ------------------------------------------------------------------ --overwrite and full disks
class _Killed(BaseException):
    """Stands for SIGKILL: not an Exception, so no handler that tidies up on errors runs."""


def _hr_folder(folder, seed, count=2, size=32):
    folder.mkdir(exist_ok=True)
    for i in range(count):
        cv2.imwrite(str(folder / f'img{i}.png'), _random_image(size, size, seed=seed * 10 + i))
    return str(folder)


def _which_run(out_dir, seeds):
    """The seed both databases were made from, or 'refused' when the pair is not accepted as data."""
    from esrgan_plugin.data.div2k_dataset import DIV2KPairedDataset
    gt, lq = os.path.join(out_dir, 'gt.lmdb'), os.path.join(out_dir, 'lq_x4.lmdb')
    try:
        DIV2KPairedDataset({'dataroot_gt': gt, 'dataroot_lq': lq, 'io_backend': {'type': 'lmdb'}, 'scale': 4,
                            'phase': 'val'})
    except DataError:
        return 'refused'
    gt_items, lq_items = _lmdb_items(gt), _lmdb_items(lq)
    for seed in seeds:
        hr = _random_image(32, 32, seed=seed * 10)
        if np.array_equal(gt_items['img0'], hr):
            assert np.array_equal(lq_items['img0'], _matlab_lr(hr, 4)), 'GT and LQ from different runs accepted'
            return seed
    raise AssertionError('GT is from neither run')


@pytest.mark.parametrize('kill_at', [1, 2, 3, 4, 5])
def test_overwrite_killed_while_swapping_never_pairs_new_with_old(tmp_path, monkeypatch, kill_at):
    """The swap is 5 renames in OUT_DIR (journal, 2 old folders aside, 2 new ones in); a kill after any of them
    leaves the old pair, or data the dataset refuses until the next run completes the swap: never a mixed pair."""
    out = str(tmp_path / 'out')
    prepare(_hr_folder(tmp_path / 'old', seed=1), out, whole_image=True, workers=1, progress=False)
    real_replace, renames = os.replace, []

    def killed_at_the_nth_rename_in_out(src, dst):
        if os.path.dirname(os.path.abspath(dst)) == out:
            renames.append(os.path.basename(dst))
            if len(renames) == kill_at:
                raise _Killed
        return real_replace(src, dst)

    monkeypatch.setattr(os, 'replace', killed_at_the_nth_rename_in_out)
    with pytest.raises(_Killed):
        prepare(_hr_folder(tmp_path / 'new', seed=2), out, whole_image=True, workers=1, overwrite=True,
                progress=False)
    monkeypatch.undo()
    assert renames[-1] == ['.replacing.json', 'gt.lmdb.old', 'lq_x4.lmdb.old', 'gt.lmdb', 'lq_x4.lmdb'][kill_at - 1]
    assert _which_run(out, (1, 2)) == (1 if kill_at == 1 else 'refused')
    # the next run into OUT_DIR completes the swap first (here it then stops: no --overwrite)
    with pytest.raises(DataError, match='already exists'):
        prepare(str(tmp_path / 'new'), out, whole_image=True, workers=1, progress=False)
    assert _which_run(out, (1, 2)) == (1 if kill_at == 1 else 2)
    assert sorted(os.listdir(out)) == ['gt.lmdb', 'lq_x4.lmdb']


def test_full_disk_during_an_lmdb_build_is_one_line_and_keeps_the_previous_pair(small_disk):
    """LMDB says "mdb_txn_commit: Input/output error" when its write comes up short on a full disk."""
    from esrgan_plugin.errors import DiskFullError
    out = str(small_disk / 'out')
    prepare(_hr_folder(small_disk.parent / 'small', seed=1), out, whole_image=True, workers=1, progress=False)
    big = _hr_folder(small_disk.parent / 'big', seed=2, count=3, size=160)  # 3 x 77 KB of PNG: more than is left
    with pytest.raises(DiskFullError) as caught:
        prepare(big, out, whole_image=True, workers=1, overwrite=True, progress=False)
    message = str(caught.value)
    assert '\n' not in message and 'no space left on device' in message
    assert message.startswith(f'cannot write {os.path.join(out, "gt.lmdb")}')
    assert _which_run(out, (1, 2)) == 1 and sorted(os.listdir(out)) == ['gt.lmdb', 'lq_x4.lmdb']


def test_enospc_while_finishing_an_lmdb_is_one_line(tmp_path, monkeypatch):
    from esrgan_plugin.errors import DiskFullError
    out = str(tmp_path / 'out')
    prepare(_hr_folder(tmp_path / 'old', seed=1), out, whole_image=True, workers=1, progress=False)

    def enospc(fd):
        raise OSError(28, os.strerror(28))

    monkeypatch.setattr(os, 'fsync', enospc)  # meta_info.txt, the last file of a database, cannot be flushed
    with pytest.raises(DiskFullError, match=r'cannot write .*gt\.lmdb\.partial/meta_info\.txt: no space left'):
        prepare(_hr_folder(tmp_path / 'new', seed=2), out, whole_image=True, workers=1, overwrite=True,
                progress=False)
    monkeypatch.undo()
    assert _which_run(out, (1, 2)) == 1 and sorted(os.listdir(out)) == ['gt.lmdb', 'lq_x4.lmdb']
