"""prepare_data --realworld-test: a fixed degraded test set, the same for every run and every model."""
import os

import cv2
import numpy as np
from basicsr.utils.matlab_functions import imresize

from conftest import run_command
from esrgan_plugin import prepare_data


def photo(h, w, seed):
    """Smooth content with edges (blur and noise show on it), as a photo has."""
    coarse = np.random.default_rng(seed).integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8)
    return cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)


def make_photos(folder, names):
    folder.mkdir(exist_ok=True)
    for i, name in enumerate(names):
        cv2.imwrite(str(folder / f'{name}.png'), photo(112 + 8 * i, 136, i))


def files(folder):
    return {f'{kind}/{name}': (folder / kind / name).read_bytes()
            for kind in ('gt', 'lq_x4') for name in sorted(os.listdir(folder / kind))}


def test_the_same_seed_writes_the_same_files_and_each_image_is_drawn_on_its_own(tmp_path, capsys):
    make_photos(tmp_path / 'hr', ['a', 'b'])
    run = run_command(capsys, prepare_data.main, tmp_path / 'hr', tmp_path / 'one', '--realworld-test', '--crop', '96')
    assert run.code == 0, run.err
    assert '2 real-world test pairs (seed 0) written' in run.out
    one = files(tmp_path / 'one')
    assert sorted(one) == ['gt/a.png', 'gt/b.png', 'lq_x4/a.png', 'lq_x4/b.png']
    gt = cv2.imread(str(tmp_path / 'one' / 'gt' / 'a.png'))
    lq = cv2.imread(str(tmp_path / 'one' / 'lq_x4' / 'a.png'))
    hr = cv2.imread(str(tmp_path / 'hr' / 'a.png'))  # 112x136: its centred 96x96 square
    assert np.array_equal(gt, hr[8:104, 20:116]) and lq.shape == (24, 24, 3)
    # not a bicubic downscale: the degradations (blur, noise, JPEG) show
    bicubic = np.clip(np.round(imresize(gt.astype(np.float64) / 255, 0.25) * 255), 0, 255)
    assert np.abs(lq.astype(float) - bicubic).mean() > 2

    make_photos(tmp_path / 'hr', ['a', 'b', 'c'])  # one more image: the others keep their LR
    assert run_command(capsys, prepare_data.main, tmp_path / 'hr', tmp_path / 'two', '--realworld-test',
                       '--crop', '96').code == 0
    two = files(tmp_path / 'two')
    assert {k: v for k, v in two.items() if '/c.png' not in k} == one
    assert run_command(capsys, prepare_data.main, tmp_path / 'hr', tmp_path / 'three', '--realworld-test',
                       '--crop', '96', '--seed', '7').code == 0
    three = files(tmp_path / 'three')
    assert three['gt/a.png'] == one['gt/a.png'] and three['lq_x4/a.png'] != one['lq_x4/a.png']


def test_options_that_do_not_apply_and_existing_outputs_are_one_line(tmp_path, capsys):
    make_photos(tmp_path / 'hr', ['a'])
    run = run_command(capsys, prepare_data.main, tmp_path / 'hr', tmp_path / 'o', '--realworld-test', '--whole-image')
    assert run.code == 2 and 'leave out --lr-dir and --whole-image' in run.err
    (tmp_path / 'o' / 'gt').mkdir(parents=True)
    run = run_command(capsys, prepare_data.main, tmp_path / 'hr', tmp_path / 'o', '--realworld-test')
    assert run.code != 0 and run.err.count('\n') == 1 and '--overwrite' in run.err
    assert os.listdir(tmp_path / 'o') == ['gt']
