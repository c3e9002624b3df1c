"""GTOnlyDataset: GT from folders and LMDBs, its two modes, and GT images it must convert or name."""
import os
import random

import cv2
import numpy as np
import pytest
import torch
from basicsr.data import build_dataset
from basicsr.utils.lmdb_util import make_lmdb_from_imgs
from basicsr.utils.matlab_functions import imresize

import esrgan_plugin
from esrgan_plugin.data.image_store import DataError
from esrgan_plugin.data.realworld_dataset import GTOnlyDataset

esrgan_plugin.register()

SCALE = 4


def photo(seed: int, size=(80, 80), dtype=np.uint8) -> np.ndarray:
    top = 255 if dtype == np.uint8 else 65535
    return np.random.default_rng(seed).integers(0, top + 1, (*size, 3), dtype=dtype)


@pytest.fixture
def gt_folder(tmp_path):
    folder = tmp_path / 'gt'
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f'img{i}.png'), photo(i, (96, 96)))
    return str(folder)


def options(root, degradation='realworld', phase='train', backend='disk', **extra):
    return {**dict(name='t', type='GTOnlyDataset', dataroot_gt=root, io_backend={'type': backend}, scale=SCALE,
                   phase=phase, gt_size=32, crop_pad_size=80, degradation=degradation), **extra}


def item(dataset, index, seed=0):
    random.seed(seed)
    np.random.seed(seed)
    return dataset[index]


def as_bgr(tensor: torch.Tensor) -> np.ndarray:
    return tensor.numpy().transpose(1, 2, 0)[:, :, ::-1]


def find_window(image: np.ndarray, window: np.ndarray) -> bool:
    size = window.shape[0]
    return any(np.array_equal(image[t:t + size, l:l + size], window)
               for t in range(image.shape[0] - size + 1) for l in range(image.shape[1] - size + 1))


def test_realworld_items_are_gt_regions_with_their_kernels(gt_folder):
    dataset = build_dataset(options(gt_folder))  # through basicsr's registry, as training builds it
    assert isinstance(dataset, GTOnlyDataset) and len(dataset) == 3
    out = item(dataset, 1)
    assert set(out) == {'gt', 'kernel1', 'kernel2', 'sinc_kernel', 'kernel1_type', 'kernel2_type', 'gt_path'}
    assert out['gt'].shape == (3, 80, 80) and out['gt'].dtype == torch.float32
    assert out['kernel1'].shape == out['kernel2'].shape == out['sinc_kernel'].shape == (21, 21)
    assert out['gt_path'] == os.path.join(gt_folder, 'img1.png')
    window = np.round(as_bgr(out['gt']) * 255).astype(np.uint8)
    assert find_window(photo(1, (96, 96)), window)  # a crop of the image, its colours in order


def test_lmdb_gives_the_folders_items(gt_folder, tmp_path):
    names = sorted(os.listdir(gt_folder))
    lmdb_path = str(tmp_path / 'gt.lmdb')
    make_lmdb_from_imgs(gt_folder, lmdb_path, names, [n[:-4] for n in names], map_size=1 << 24)
    from_folder = GTOnlyDataset(options(gt_folder, use_hflip=True, use_rot=True))
    from_lmdb = GTOnlyDataset(options(lmdb_path, backend='lmdb', use_hflip=True, use_rot=True))
    for index in range(3):
        a, b = item(from_folder, index, seed=index), item(from_lmdb, index, seed=index)
        assert b['gt_path'] == f'img{index}'
        for key in ('gt', 'kernel1', 'kernel2', 'sinc_kernel'):
            assert torch.equal(a[key], b[key])
    from_lmdb.close()


def test_bicubic_mode_makes_matlab_bicubic_lr_of_the_crop(gt_folder):
    dataset = GTOnlyDataset(options(gt_folder, degradation='bicubic', use_hflip=True))
    out = item(dataset, 0, seed=3)
    assert set(out) == {'lq', 'gt', 'lq_path', 'gt_path'}
    assert out['gt'].shape == (3, 32, 32) and out['lq'].shape == (3, 8, 8)
    gt = np.round(as_bgr(out['gt']) * 255).astype(np.uint8)
    assert find_window(photo(0, (96, 96)), gt) or find_window(photo(0, (96, 96))[:, ::-1], gt)
    # MATLAB's imresize as basicsr implements it, rounded to 8 bits
    expected = np.clip(np.round(imresize(gt.astype(np.float32) / 255, 1 / SCALE) * 255), 0, 255)
    np.testing.assert_array_equal(np.round(as_bgr(out['lq']) * 255), expected)


def test_bicubic_validation_gives_whole_images_cut_to_the_scale(tmp_path):
    folder = tmp_path / 'val'
    folder.mkdir()
    cv2.imwrite(str(folder / 'a.png'), photo(0, (30, 43)))
    out = GTOnlyDataset(options(str(folder), degradation='bicubic', phase='val'))[0]
    assert out['gt'].shape == (3, 28, 40) and out['lq'].shape == (3, 7, 10)


def write_one(tmp_path, name, img):
    folder = tmp_path / 'one'
    folder.mkdir(exist_ok=True)
    assert cv2.imwrite(str(folder / name), img)
    return str(folder)


def test_grey_images_give_three_equal_channels(tmp_path):
    grey = photo(0)[:, :, 0]
    out = item(GTOnlyDataset(options(write_one(tmp_path, 'g.png', grey))), 0)
    np.testing.assert_array_equal(out['gt'][0], out['gt'][2])
    np.testing.assert_allclose(out['gt'][0].numpy(), grey / 255, atol=1e-7)


def test_16_bit_images_keep_their_precision(tmp_path):
    deep = photo(1, dtype=np.uint16)
    folder = write_one(tmp_path, 'd.png', deep)
    out = item(GTOnlyDataset(options(folder)), 0)
    np.testing.assert_allclose(as_bgr(out['gt']), deep / 65535, atol=1e-7)
    # the bicubic mode's pairs are 8-bit: the GT rounded to the nearest level
    out = item(GTOnlyDataset(options(folder, degradation='bicubic', gt_size=80)), 0)
    np.testing.assert_allclose(as_bgr(out['gt']), np.round(deep / 257) / 255, atol=1e-7)


def test_alpha_is_dropped(tmp_path):
    rgba = np.dstack([photo(2), photo(3)[:, :, :1]])
    folder = write_one(tmp_path, 'a.png', rgba)
    out = item(GTOnlyDataset(options(folder)), 0)
    colour = cv2.imread(os.path.join(folder, 'a.png'), cv2.IMREAD_COLOR)  # OpenCV's own conversion
    np.testing.assert_allclose(as_bgr(out['gt']), colour / 255, atol=1e-7)


def test_images_under_the_region_are_reflected_as_realesrgan_pads(tmp_path):
    small = photo(4, (40, 36))
    out = item(GTOnlyDataset(options(write_one(tmp_path, 's.png', small))), 0)
    padded = np.pad(small, ((0, 40), (0, 44), (0, 0)), mode='reflect')  # numpy's reflect is OpenCV's REFLECT_101
    np.testing.assert_allclose(as_bgr(out['gt']), padded / 255, atol=1e-7)


def test_images_under_gt_size_are_named(tmp_path):
    folder = write_one(tmp_path, 'big.png', photo(0))
    write_one(tmp_path, 'tiny.png', photo(0, (20, 50)))
    with pytest.raises(DataError, match=r'tiny\.png is 50x20, smaller than gt_size 32'):
        GTOnlyDataset(options(folder))


def test_unreadable_files_are_named_not_replaced(tmp_path):
    folder = write_one(tmp_path, 'good.png', photo(0))
    (tmp_path / 'one' / 'junk.png').write_bytes(b'not an image')
    with pytest.raises(DataError, match=r'junk\.png is not a readable image'):
        GTOnlyDataset(options(folder))
    # a file whose header reads but whose pixels do not: named when it is read
    whole = cv2.imencode('.png', photo(5))[1].tobytes()
    (tmp_path / 'one' / 'junk.png').write_bytes(whole[:len(whole) // 2])
    dataset = GTOnlyDataset(options(folder))
    assert [os.path.basename(e.key) for e in dataset.entries] == ['good.png', 'junk.png']
    with pytest.raises(DataError, match=r'junk\.png could not be decoded'):
        item(dataset, 1)


@pytest.mark.parametrize('change, message', [
    ({'degradation': 'nearest'}, 'is not one of realworld, bicubic'),
    ({'phase': 'val'}, 'makes training pairs only'),
    ({'gt_size': None}, "'gt_size' is missing"),
    ({'gt_size': 96}, 'crop_pad_size 80 is smaller than gt_size 96'),
    ({'crop_pad_size': 72}, 'at least 74 is needed'),
])
def test_bad_options_are_one_line(gt_folder, change, message):
    with pytest.raises(DataError, match=message):
        GTOnlyDataset({**options(gt_folder), **change})


def test_bicubic_validation_pairs_are_prepare_datas(tmp_path):
    from esrgan_plugin.data.div2k_dataset import DIV2KPairedDataset
    from esrgan_plugin.data.preparation import prepare

    folder = tmp_path / 'hr'
    folder.mkdir()
    for i, size in enumerate([(40, 52), (36, 36)]):
        cv2.imwrite(str(folder / f'im{i}.png'), photo(i, size))
    out = prepare(str(folder), str(tmp_path / 'prepared'), scale=SCALE, whole_image=True, workers=1, progress=False)
    prepared = DIV2KPairedDataset({'dataroot_gt': out.gt_lmdb, 'dataroot_lq': out.lq_lmdb, 'scale': SCALE,
                                   'phase': 'val', 'io_backend': {'type': 'lmdb'}})
    on_the_fly = GTOnlyDataset(options(str(folder), degradation='bicubic', phase='val'))
    for index in range(2):
        a, b = prepared[index], on_the_fly[index]
        assert torch.equal(a['gt'], b['gt'])
        assert (a['lq'] - b['lq']).abs().max() * 255 <= 1 + 1e-4  # within one level (prepare_data may round apart)
    prepared.close()
