"""DIV2KPairedDataset: basicsr compatibility both ways, aligned augmentation, lazy LMDB, bad data at construction."""
import copy
import gc
import os
import pickle
import random

import cv2
import lmdb
import numpy as np
import pytest
import torch
from basicsr.data import build_dataset
from basicsr.utils.lmdb_util import make_lmdb_from_imgs
from basicsr.utils.registry import DATASET_REGISTRY

from esrgan_plugin.data.div2k_dataset import DIV2KPairedDataset
from esrgan_plugin.data.image_store import DataError
from esrgan_plugin.data.preparation import prepare

SCALE = 4
LR_SIZES = [(12, 15), (10, 10), (14, 11)]


@pytest.fixture
def folders(tmp_path):
    """GT = LQ repeated 4x4, so an aligned crop satisfies gt[::4, ::4] == lq exactly, whatever the flips."""
    gt_dir, lq_dir = tmp_path / 'gt', tmp_path / 'lq'
    gt_dir.mkdir()
    lq_dir.mkdir()
    for i, (h, w) in enumerate(LR_SIZES):
        lq = np.random.default_rng(i).integers(0, 256, (h, w, 3), dtype=np.uint8)
        cv2.imwrite(str(lq_dir / f'img{i}.png'), lq)
        cv2.imwrite(str(gt_dir / f'img{i}.png'), lq.repeat(SCALE, 0).repeat(SCALE, 1))
    return str(gt_dir), str(lq_dir)


def _basicsr_lmdb(folder, lmdb_path):
    names = sorted(os.listdir(folder))
    # basicsr's own map-size estimate (10x the first image) is too small for tiny images of mixed sizes
    make_lmdb_from_imgs(folder, lmdb_path, names, [os.path.splitext(n)[0] for n in names], map_size=1 << 24)
    return lmdb_path


@pytest.fixture
def basicsr_lmdbs(folders, tmp_path):
    return (_basicsr_lmdb(folders[0], str(tmp_path / 'b_gt.lmdb')),
            _basicsr_lmdb(folders[1], str(tmp_path / 'b_lq.lmdb')))


@pytest.fixture
def our_lmdbs(folders, tmp_path):
    """Built by prepare() from the GT folder with the LQ folder as official LR."""
    out = prepare(folders[0], str(tmp_path / 'ours'), scale=SCALE, lr_dir=folders[1], whole_image=True,
                  workers=1, progress=False)
    return out.gt_lmdb, out.lq_lmdb


def _opt(gt, lq, backend='lmdb', phase='train', **extra):
    opt = dict(name='t', type='DIV2KPairedDataset', dataroot_gt=gt, dataroot_lq=lq, io_backend={'type': backend},
               scale=SCALE, phase=phase, gt_size=32, use_hflip=True, use_rot=True)
    opt.update(extra)
    return opt


def _whole_images(dataset):
    items = [dataset[i] for i in range(len(dataset))]
    if hasattr(dataset, 'close'):
        dataset.close()  # LMDB allows one open environment per path and process
    return items


def _assert_same_items(ours, theirs):
    assert len(ours) == len(theirs)
    by_path = lambda items: sorted(items, key=lambda item: item['gt_path'])  # basicsr lists folders unsorted
    for a, b in zip(by_path(ours), by_path(theirs)):
        assert a['gt_path'] == b['gt_path'] and a['lq_path'] == b['lq_path']
        assert a['gt'].dtype == a['lq'].dtype == torch.float32
        assert torch.equal(a['gt'], b['gt']) and torch.equal(a['lq'], b['lq'])


def test_registered_and_built_by_basicsr(folders):
    assert DATASET_REGISTRY.get('DIV2KPairedDataset') is DIV2KPairedDataset
    dataset = build_dataset(_opt(*folders, backend='disk'))
    assert isinstance(dataset, DIV2KPairedDataset) and len(dataset) == 3


def test_reads_lmdbs_made_by_basicsr_like_basicsr(basicsr_lmdbs):
    ours = _whole_images(build_dataset(_opt(*basicsr_lmdbs, phase='val')))
    theirs = _whole_images(build_dataset(_opt(*basicsr_lmdbs, phase='val', type='PairedImageDataset')))
    _assert_same_items(ours, theirs)
    assert ours[0]['gt_path'] == 'img0' and ours[0]['gt'].shape == (3, 48, 60)


def test_basicsr_reads_our_lmdbs(our_lmdbs, basicsr_lmdbs):
    theirs_on_ours = _whole_images(build_dataset(_opt(*our_lmdbs, phase='val', type='PairedImageDataset')))
    gc.collect()
    theirs_on_theirs = _whole_images(build_dataset(_opt(*basicsr_lmdbs, phase='val', type='PairedImageDataset')))
    _assert_same_items(theirs_on_ours, theirs_on_theirs)
    gc.collect()
    train = build_dataset(_opt(*our_lmdbs, type='PairedImageDataset'))  # their crop/augment on our data
    assert train[0]['gt'].shape == (3, 32, 32) and train[0]['lq'].shape == (3, 8, 8)


def test_folder_backend_equals_basicsr(folders):
    ours = _whole_images(build_dataset(_opt(*folders, backend='disk', phase='val')))
    theirs = _whole_images(build_dataset(_opt(*folders, backend='disk', phase='val', type='PairedImageDataset')))
    _assert_same_items(ours, theirs)


def _transforms(lq):
    """The 8 flips/rotations augment() can produce."""
    out = []
    for img in (lq, lq.transpose(1, 0, 2)):
        out += [img, img[:, ::-1], img[::-1], img[::-1, ::-1]]
    return out


@pytest.mark.parametrize('source', ['ours', 'basicsr', 'raw', 'disk'])
def test_random_crops_and_augmentations_keep_gt_and_lq_aligned(source, folders, our_lmdbs, basicsr_lmdbs, tmp_path):
    if source == 'raw':
        out = prepare(folders[0], str(tmp_path / 'raw'), lr_dir=folders[1], whole_image=True, storage='raw',
                      workers=1, progress=False)
        roots, backend = (out.gt_lmdb, out.lq_lmdb), 'lmdb'
    else:
        roots, backend = {'ours': (our_lmdbs, 'lmdb'), 'basicsr': (basicsr_lmdbs, 'lmdb'),
                          'disk': (folders, 'disk')}[source]
    dataset = DIV2KPairedDataset(_opt(*roots, backend=backend, gt_size=16))
    originals = {f'img{i}': cv2.imread(os.path.join(folders[1], f'img{i}.png'))[:, :, ::-1] for i in range(3)}
    random.seed(0)
    seen = set()
    for _ in range(40):
        index = random.randrange(len(dataset))
        item = dataset[index]
        gt, lq = item['gt'], item['lq']
        assert gt.shape == (3, 16, 16) and lq.shape == (3, 4, 4)
        assert torch.equal(gt[:, ::SCALE, ::SCALE], lq)
        # the LQ crop is a window of the right image under one of the 8 transforms
        lq_hwc = (lq.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        name = os.path.splitext(os.path.basename(item['lq_path']))[0]
        found = False
        for t, img in enumerate(_transforms(originals[name])):
            windows = np.lib.stride_tricks.sliding_window_view(img, (4, 4, 3))[:, :, 0]
            if (windows == lq_hwc).all(axis=(2, 3, 4)).any():
                found = True
                seen.add(t)
                break
        assert found
    assert len(seen) >= 6  # flips and rotations really happen
    dataset.close()


def test_raw_storage_reads_the_same_as_png(folders, our_lmdbs, tmp_path):
    out = prepare(folders[0], str(tmp_path / 'raw'), lr_dir=folders[1], whole_image=True, storage='raw',
                  workers=1, progress=False)
    assert open(os.path.join(out.gt_lmdb, 'meta_info.txt')).readline().startswith('img0.raw (48,60,3) 1 build=')
    _assert_same_items(_whole_images(DIV2KPairedDataset(_opt(out.gt_lmdb, out.lq_lmdb, phase='val'))),
                       _whole_images(DIV2KPairedDataset(_opt(*our_lmdbs, phase='val'))))


def test_option_dict_is_not_changed_and_mean_std_apply(our_lmdbs):
    opt = _opt(*our_lmdbs, phase='val', mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5])
    frozen = copy.deepcopy(opt)
    dataset = DIV2KPairedDataset(opt)
    item = dataset[0]
    dataset.close()
    assert opt == frozen
    plain = _whole_images(DIV2KPairedDataset(_opt(*our_lmdbs, phase='val')))[0]
    assert torch.allclose(item['gt'], plain['gt'] * 2 - 1)


def test_lmdb_opens_lazily_and_pickles_cheaply_to_workers(our_lmdbs):
    dataset = DIV2KPairedDataset(_opt(*our_lmdbs, gt_size=16))
    assert dataset._envs is None  # nothing opened at construction
    dataset[0]
    assert dataset._envs is not None
    clone = pickle.loads(pickle.dumps(dataset))
    assert clone._envs is None and len(pickle.dumps(dataset)) < 4000
    dataset.close()
    loader = torch.utils.data.DataLoader(dataset, batch_size=2, num_workers=2, shuffle=True)
    batches = list(loader)
    assert sum(b['gt'].shape[0] for b in batches) == 3
    assert dataset._envs is None  # the workers opened their own


def test_missing_paths_and_options_are_named(folders, tmp_path):
    with pytest.raises(DataError, match="dataroot_gt .*nope.lmdb does not exist"):
        DIV2KPairedDataset(_opt(str(tmp_path / 'nope.lmdb'), str(tmp_path / 'x.lmdb')))
    with pytest.raises(DataError, match="option 'gt_size' is missing"):
        DIV2KPairedDataset(_opt(*folders, backend='disk', gt_size=None))
    with pytest.raises(DataError, match='does not fit io_backend type lmdb'):
        DIV2KPairedDataset(_opt(*folders, backend='lmdb'))


def test_lmdb_without_meta_info_is_refused(our_lmdbs):
    os.remove(os.path.join(our_lmdbs[1], 'meta_info.txt'))
    with pytest.raises(DataError, match=r'lq_x4\.lmdb has no meta_info.txt'):
        DIV2KPairedDataset(_opt(*our_lmdbs))


def test_different_key_sets_name_the_missing_keys(folders, tmp_path):
    os.remove(os.path.join(folders[1], 'img1.png'))
    gt = _basicsr_lmdb(folders[0], str(tmp_path / 'g.lmdb'))
    lq = _basicsr_lmdb(folders[1], str(tmp_path / 'l.lmdb'))
    with pytest.raises(DataError, match=r'1 key\(s\) missing from .*l\.lmdb, e\.g\. img1;'):
        DIV2KPairedDataset(_opt(gt, lq))
    with pytest.raises(DataError, match=r'have no LQ image .* e\.g\. img1;'):
        DIV2KPairedDataset(_opt(*folders, backend='disk'))


def test_lq_size_not_gt_over_scale_is_refused(folders, tmp_path):
    cv2.imwrite(os.path.join(folders[1], 'img2.png'), np.zeros((14, 12, 3), np.uint8))
    with pytest.raises(DataError, match=r'LQ .*img2\.png is 12x14 but GT .*img2\.png is 44x56'):
        DIV2KPairedDataset(_opt(*folders, backend='disk'))
    gt = _basicsr_lmdb(folders[0], str(tmp_path / 'g.lmdb'))
    lq = _basicsr_lmdb(folders[1], str(tmp_path / 'l.lmdb'))
    with pytest.raises(DataError, match='LQ img2 is 12x14 but GT img2 is 44x56'):  # from meta_info shapes
        DIV2KPairedDataset(_opt(gt, lq, phase='val'))
    with pytest.raises(DataError, match='not 2x'):
        DIV2KPairedDataset(_opt(gt, lq, scale=2, phase='val'))


def test_gt_size_is_checked_against_the_images(our_lmdbs):
    # gt_size against the scale is a rule of the options (tests/config/test_checks.py); this is about the data
    with pytest.raises(DataError, match=r'gt_size 48 is larger than GT img1 \(40x40\)'):
        DIV2KPairedDataset(_opt(*our_lmdbs, gt_size=48))
    DIV2KPairedDataset(_opt(*our_lmdbs, gt_size=40, phase='train'))
    DIV2KPairedDataset(_opt(*our_lmdbs, gt_size=400, phase='val'))  # whole images: gt_size unused


def test_undecodable_value_names_its_key(our_lmdbs):
    env = lmdb.open(our_lmdbs[0], map_size=1 << 24)
    with env.begin(write=True) as txn:
        txn.put(b'img1', b'not a png')
    env.close()
    dataset = DIV2KPairedDataset(_opt(*our_lmdbs, phase='val'))
    dataset[0]
    with pytest.raises(DataError, match=r'key img1 in .*gt\.lmdb is not a decodable image'):
        dataset[1]
    dataset.close()


def test_exposes_a_copy_of_its_options_for_basicsrs_launcher(tmp_path):
    """basicsr's train/test pipelines and validation read dataset.opt['name']."""
    import cv2
    import numpy as np
    from basicsr.data import build_dataset
    for kind, size in (('gt', 16), ('lq', 4)):
        (tmp_path / kind).mkdir()
        cv2.imwrite(str(tmp_path / kind / 'a.png'), np.zeros((size, size, 3), np.uint8))
    opt = {'name': 'val14', 'type': 'DIV2KPairedDataset', 'phase': 'val', 'scale': 4,
           'dataroot_gt': str(tmp_path / 'gt'), 'dataroot_lq': str(tmp_path / 'lq'), 'io_backend': {'type': 'disk'}}
    dataset = build_dataset(opt)
    assert dataset.opt['name'] == 'val14'
    dataset.opt['name'] = 'changed'
    assert opt['name'] == 'val14'
