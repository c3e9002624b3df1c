"""The real-world degradation against basicsr 1.4.2's own RealESRNetModel.feed_data, and its draws."""
import random

import numpy as np
import pytest
import torch
from basicsr.models import realesrnet_model
from basicsr.models.realesrnet_model import RealESRNetModel
from basicsr.utils.diffjpeg import DiffJPEG
from basicsr.utils.img_process_util import USMSharp, filter2D

import esrgan_plugin
from esrgan_plugin.data.degradation_preview import describe_draws
from esrgan_plugin.data.realworld_degradation import (KERNEL_TYPES, RealWorldSettings, degrade_batch, draw_kernels,
                                                      seeded, smallest_region)

esrgan_plugin.register()  # compat: basicsr's degradations import a torchvision module current torch lacks

CPU = torch.device('cpu')
SCALE = 4


def settings(**changes) -> RealWorldSettings:
    return RealWorldSettings.from_options({'gt_size': 32, **changes})


def kernel_batch(s: RealWorldSettings, n: int) -> dict:
    drawn = [draw_kernels(s) for _ in range(n)]
    return {k: torch.stack([d[k] for d in drawn]) for k in drawn[0]}


def gt_batch(n: int = 3, size: int = 80) -> torch.Tensor:
    # smooth content with edges, as photos have (noise on pure noise would hide a wrong blur)
    g = torch.Generator().manual_seed(1)
    coarse = torch.rand(n, 3, size // 8, size // 8, generator=g)
    return torch.nn.functional.interpolate(coarse, size=(size, size), mode='bilinear').clamp(0, 1)


def basicsr_model(s: RealWorldSettings, batch: int) -> RealESRNetModel:
    """basicsr's model with only what feed_data reads (its networks are not needed), on the CPU."""
    model = RealESRNetModel.__new__(RealESRNetModel)
    model.opt = {**{k: list(v) if isinstance(v, tuple) else v for k, v in vars(s).items()}, 'scale': SCALE}
    model.is_train = True
    model.device = CPU
    model.jpeger = DiffJPEG(differentiable=False)  # what __init__ builds, without its .cuda()
    model.usm_sharpener = USMSharp()
    model.queue_size = batch  # the pool only stores the first batch: feed_data's lq is this batch's
    return model


@pytest.mark.parametrize('seed', range(8))
@pytest.mark.parametrize('changes', [{}, {'gray_noise_prob': 1.0, 'gray_noise_prob2': 1.0, 'gt_usm': False}],
                         ids=['realesrgan', 'grey-noise-no-usm'])
def test_equals_basicsr_feed_data_for_the_same_draws(monkeypatch, seed, changes):
    # _dequeue_and_enqueue puts its pool on .cuda(): on the CPU it stays where it is.
    monkeypatch.setattr(torch.Tensor, 'cuda', lambda self, *args, **kwargs: self)
    # On current torch DiffJPEG's output is channels-last and basicsr's filter2D cannot .view() it: the same
    # values, made contiguous (the module under test does the same).
    monkeypatch.setattr(realesrnet_model, 'filter2D', lambda img, kernel: filter2D(img.contiguous(), kernel))
    s = settings(**changes)
    with seeded(100 + seed, CPU):
        kernels = kernel_batch(s, 3)
    gt = gt_batch()
    model = basicsr_model(s, 3)
    with seeded(seed, CPU):
        model.feed_data({'gt': gt.clone(), **{k: v.clone() for k, v in kernels.items()}})
    with seeded(seed, CPU):
        ours = degrade_batch(gt.clone(), kernels, s, SCALE)
    assert ours.lq.shape == (3, 3, 8, 8) and ours.gt.shape == (3, 3, 32, 32)
    torch.testing.assert_close(ours.gt, model.gt, rtol=0, atol=1e-6)
    torch.testing.assert_close(ours.lq, model.lq, rtol=0, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_equals_basicsr_feed_data_on_cuda(monkeypatch):
    # on CUDA basicsr's .cuda() calls are real; the draws come from the CUDA generator in both
    monkeypatch.setattr(realesrnet_model, 'filter2D', lambda img, kernel: filter2D(img.contiguous(), kernel))
    cuda = torch.device('cuda')
    s = settings()
    for seed in range(4):
        with seeded(100 + seed, CPU):
            kernels = kernel_batch(s, 3)
        gt = gt_batch().to(cuda)
        model = basicsr_model(s, 3)
        model.device, model.jpeger, model.usm_sharpener = cuda, model.jpeger.to(cuda), model.usm_sharpener.to(cuda)
        with seeded(seed, cuda):
            model.feed_data({'gt': gt.clone(), **{k: v.clone() for k, v in kernels.items()}})
        with seeded(seed, cuda):
            ours = degrade_batch(gt.clone(), kernels, s, SCALE)
        assert ours.lq.device.type == 'cuda'
        torch.testing.assert_close(ours.lq, model.lq, rtol=0, atol=1e-5)

def test_the_draws_cover_every_branch_over_the_seeds():
    # the equivalence above means something only if its seeds go through the branches
    s = settings()
    seen = set()
    for seed in range(8):
        with seeded(100 + seed, CPU):
            kernels = kernel_batch(s, 3)
        with seeded(seed, CPU):
            draws = degrade_batch(gt_batch(), kernels, s, SCALE).draws
        seen |= {draws[0]['resize1'][0], draws[0]['resize2'][0], draws[0]['noise1'][0], draws[0]['noise2'][0],
                 draws[0]['final_order'], draws[0]['kernel2'] is None}
    assert {'up', 'down', 'keep', 'gaussian', 'poisson', 'jpeg, resize+sinc', 'resize+sinc, jpeg', True,
            False} <= seen


def test_kernels_are_basicsr_datasets_for_the_same_seed(tmp_path):
    from basicsr.data.realesrgan_dataset import RealESRGANDataset

    import cv2
    cv2.imwrite(str(tmp_path / 'a.png'), np.zeros((16, 16, 3), np.uint8))  # padded to 400: no draw before
    (tmp_path / 'meta.txt').write_text('a.png\n')
    s = settings()
    opt = {**{k: list(v) if isinstance(v, tuple) else v for k, v in vars(s).items()},
           'dataroot_gt': str(tmp_path), 'meta_info': str(tmp_path / 'meta.txt'), 'io_backend': {'type': 'disk'},
           'use_hflip': False, 'use_rot': False}
    theirs_dataset = RealESRGANDataset(opt)
    for seed in range(6):
        with seeded(seed, CPU):
            theirs = theirs_dataset[0]
        with seeded(seed, CPU):
            ours = draw_kernels(s)
        for key in ('kernel1', 'kernel2', 'sinc_kernel'):
            torch.testing.assert_close(ours[key], theirs[key], rtol=0, atol=0)

def test_batch_shapes_and_range():
    s = settings()
    with seeded(0, CPU):
        out = degrade_batch(gt_batch(5, 96), kernel_batch(s, 5), settings(gt_size=40), SCALE)
    assert out.gt.shape == (5, 3, 40, 40) and out.lq.shape == (5, 3, 10, 10)
    assert out.lq.min() >= 0 and out.lq.max() <= 1
    assert torch.equal((out.lq * 255).round(), out.lq * 255)  # 8-bit levels, as an LR file holds
    assert len(out.draws) == 5


def test_each_sample_draws_its_own_kernels_noise_and_jpeg():
    s = settings()
    with seeded(3, CPU):
        kernels = kernel_batch(s, 4)
        draws = degrade_batch(gt_batch(4), kernels, s, SCALE).draws
    assert len({kernels['kernel1'][i].sum(0).numpy().tobytes() for i in range(4)}) == 4
    assert len({d['noise1'][1] for d in draws}) == 4
    assert len({d['jpeg1_quality'] for d in draws}) == 4
    assert all(30 <= d['jpeg1_quality'] <= 95 and 30 <= d['jpeg2_quality'] <= 95 for d in draws)
    assert len({d['resize1'] for d in draws}) == 1  # basicsr resizes a batch at one scale


def test_kernels_are_drawn_as_configured():
    iso_only = settings(kernel_list=['iso'], kernel_prob=[1.0], sinc_prob=0.0, blur_sigma=[1.95, 2.0],
                        final_sinc_prob=0.0, blur_kernel_size=15)
    with seeded(0, CPU):
        k = draw_kernels(iso_only)
    assert k['kernel1'].shape == (15, 15) and k['sinc_kernel'].shape == (21, 21)
    assert KERNEL_TYPES[int(k['kernel1_type'])] == 'iso'
    assert torch.isclose(k['kernel1'].sum(), torch.tensor(1.0))
    assert k['sinc_kernel'][10, 10] == 1 and k['sinc_kernel'].sum() == 1  # no final sinc: a pulse
    with seeded(0, CPU):
        draws = degrade_batch(gt_batch(1), {n: t[None] for n, t in k.items()}, iso_only, SCALE).draws
    # an isotropic Gaussian of sigma ~2 cut to 7..15 pixels: a spread a little under 2 along both axes
    major, minor = draws[0]['kernel1']['spread']
    assert 1.3 < minor <= major < 2.05 and major - minor < 0.01
    lines = describe_draws(draws[0])
    assert lines[0].startswith('1 blur iso sd') and 'final sinc no' in lines[-1]


def test_seeded_repeats_its_draws_and_restores_the_generators():
    s = settings()
    random.seed(7)
    np.random.seed(7)
    torch.manual_seed(7)
    before = (random.random(), np.random.uniform(), torch.rand(1).item())
    random.seed(7)
    np.random.seed(7)
    torch.manual_seed(7)
    results = []
    for _ in range(2):
        with seeded(11, CPU):
            kernels = kernel_batch(s, 2)
            results.append(degrade_batch(gt_batch(2), kernels, s, SCALE))
    assert (random.random(), np.random.uniform(), torch.rand(1).item()) == before
    assert torch.equal(results[0].lq, results[1].lq) and results[0].draws == results[1].draws
    with seeded(12, CPU):
        other = degrade_batch(gt_batch(2), kernel_batch(s, 2), s, SCALE)
    assert not torch.equal(other.lq, results[0].lq)


def test_settings_read_the_dataset_section_with_realesrgan_defaults():
    s = RealWorldSettings.from_options({'noise_range': [2, 10], 'gt_usm': False})
    assert s.noise_range == (2, 10) and s.gt_usm is False
    # Real-ESRGAN's train_realesrnet_x4plus.yml, written out here independently of the table in choices.py
    assert (s.blur_sigma, s.blur_sigma2, s.final_sinc_prob, s.resize_prob, s.resize_range) == (
        (0.2, 3), (0.2, 1.5), 0.8, (0.2, 0.7, 0.1), (0.15, 1.5))
    assert (s.second_blur_prob, s.resize_prob2, s.resize_range2, s.noise_range2, s.jpeg_range2) == (
        0.8, (0.3, 0.4, 0.3), (0.3, 1.2), (1, 25), (30, 95))
    assert (s.kernel_prob, s.sinc_prob, s.gt_size, s.poisson_scale_range2) == (
        (0.45, 0.25, 0.12, 0.03, 0.12, 0.03), 0.1, 256, (0.05, 2.5))
    with pytest.raises(dataclasses_frozen_error()):
        s.gt_size = 3


def dataclasses_frozen_error():
    import dataclasses
    return dataclasses.FrozenInstanceError


def test_smallest_region_leaves_every_filter_an_image_to_pad():
    s = settings()
    smallest = smallest_region(s, SCALE)
    kernel2 = torch.ones(1, 21, 21) / 21**2
    # kernel2 after the first resize at its smallest factor, as F.interpolate sizes it
    after_resize = torch.nn.functional.interpolate(torch.rand(1, 3, smallest, smallest), scale_factor=0.15)
    filter2D(after_resize, kernel2)  # basicsr's filter2D pads by reflection: this size is enough
    too_small = torch.nn.functional.interpolate(torch.rand(1, 3, smallest - 1, smallest - 1), scale_factor=0.15)
    with pytest.raises(RuntimeError, match='[Pp]adding size'):
        filter2D(too_small, kernel2)
    assert smallest_region(settings(gt_usm=False, resize_range=[0.5, 1.5], blur_kernel_size2=9), 4) == 20  # an LR of 4 + 1 px


def test_the_training_docs_list_every_setting_with_its_default():
    import os

    import yaml

    from conftest import REPO_ROOT
    from esrgan_plugin.choices import REALWORLD_DEFAULTS
    text = open(os.path.join(REPO_ROOT, 'docs', 'training.md'), encoding='utf-8').read()
    for key, value in REALWORLD_DEFAULTS.items():
        row = f'| `{key}` | `{yaml.safe_dump(value, default_flow_style=True).splitlines()[0]}` |'
        assert row in text, row
