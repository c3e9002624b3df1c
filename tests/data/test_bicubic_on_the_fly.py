"""The paper's bicubic LR made at load time equals the LR prepare_data writes, to within one level of 255."""
import os

import cv2
import numpy as np

import esrgan_plugin
from esrgan_plugin.data.preparation import prepare
from esrgan_plugin.data.realworld_dataset import GTOnlyDataset

esrgan_plugin.register()


def test_bicubic_on_the_fly_equals_the_prepared_matlab_bicubic_lr(tmp_path):
    (tmp_path / 'hr').mkdir()
    for i in range(3):  # photo-like content; 64x64 = gt_size, so the training crop is the whole image
        coarse = np.random.default_rng(i).integers(0, 256, (8, 8, 3), dtype=np.uint8)
        cv2.imwrite(str(tmp_path / 'hr' / f'{i}.png'), cv2.resize(coarse, (64, 64), interpolation=cv2.INTER_CUBIC))
    prepared = prepare(str(tmp_path / 'hr'), str(tmp_path / 'prepared'), scale=4, whole_image=True, lmdb=False,
                       folders=True, workers=1, progress=False)
    dataset = GTOnlyDataset({'name': 'b', 'type': 'GTOnlyDataset', 'dataroot_gt': str(tmp_path / 'hr'),
                             'io_backend': {'type': 'disk'}, 'scale': 4, 'phase': 'train', 'gt_size': 64,
                             'degradation': 'bicubic', 'use_hflip': False, 'use_rot': False})
    assert len(dataset) == 3
    for item in (dataset[i] for i in range(3)):
        name = os.path.basename(item['gt_path'])
        expected_lq = cv2.imread(os.path.join(prepared.lq_folder, name))[:, :, ::-1]  # BGR file -> RGB
        expected_gt = cv2.imread(os.path.join(prepared.gt_folder, name))[:, :, ::-1]
        lq = item['lq'].numpy().transpose(1, 2, 0) * 255
        assert lq.shape == (16, 16, 3)
        assert np.array_equal(np.round(item['gt'].numpy().transpose(1, 2, 0) * 255), expected_gt)
        assert np.abs(lq - expected_lq).max() <= 1
