"""Real-ESRGAN's second-order degradation: LR images made from GT batches on the fly, on the GT's device.

Real-ESRGAN (Wang et al., ICCVW 2021, https://arxiv.org/abs/2107.10833) trains for real photos with LR made by
two rounds of blur, random resize, Gaussian or Poisson noise and JPEG, then a final sinc filter. basicsr 1.4.2
ships the pieces and runs them in two places: ``RealESRGANDataset`` draws each sample's blur kernels
(:func:`draw_kernels` here) and ``RealESRNetModel.feed_data`` degrades the batch (:func:`degrade_batch`). This
module calls the same basicsr functions (``random_mixed_kernels``, ``circular_lowpass_kernel``, ``filter2D``,
``generate_gaussian_noise_pt``, ``generate_poisson_noise_pt``, ``DiffJPEG``, ``USMSharp``,
``paired_random_crop``) and differs in three ways:

* no ``.cuda()``: everything runs on the device of the GT batch, the CPU included;
* the settings are one frozen :class:`RealWorldSettings`, read from the train dataset's section;
* every draw is recorded: :class:`DegradedBatch` carries one dict per sample saying which kernel, resize, noise
  and JPEG quality it got, for the preview (``esrgan_plugin/data/degradation_preview.py``).

The draws come from the global Python, NumPy and torch generators, in exactly the order ``feed_data`` makes them
(Python: resize directions and modes, then the crop; NumPy: resize scales, the noise kind, the second blur, the
order of the last steps; torch on the device: noise amounts, grey flags and noise, JPEG qualities). Keeping that
order costs nothing and makes basicsr's own ``feed_data`` the reference: seeded alike, both give the same batch
(tests/data/test_realworld_degradation.py). basicsr's ``random_add_*_noise_pt`` draw the noise amount and grey
flag inside; here the same two ``torch.rand`` calls are made in the open, so that their values can be recorded,
and basicsr's ``generate_*_noise_pt`` make the noise. A caller makes the draws reproducible by seeding the
generators, e.g. with :func:`seeded`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import random
from typing import Any, Iterator, Mapping, NamedTuple

import numpy as np
import torch
from basicsr.data.degradations import (circular_lowpass_kernel, generate_gaussian_noise_pt,
                                       generate_poisson_noise_pt, random_mixed_kernels)
from basicsr.data.transforms import paired_random_crop
from basicsr.utils.diffjpeg import DiffJPEG
from basicsr.utils.img_process_util import USMSharp, filter2D
from torch.nn import functional as F

from esrgan_plugin.choices import BLUR_KERNELS, REALWORLD_DEFAULTS, RESIZE_MODES

# The smallest blur kernel drawn, as basicsr's RealESRGANDataset (its kernel_range: 7, 9, ... 21).
SMALLEST_KERNEL = 7
# Kernel types as the dataset reports them (kernel1_type, kernel2_type): basicsr's names, then 'sinc'.
KERNEL_TYPES = BLUR_KERNELS + ('sinc',)
# The Gaussian of basicsr's USMSharp() (radius 50, made odd).
USM_KERNEL_SIZE = 51


def _frozen(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


@dataclasses.dataclass(frozen=True)
class RealWorldSettings:
    """Every setting of the degradation, named as Real-ESRGAN's ``train_realesrnet_x4plus.yml`` names it.

    The defaults are Real-ESRGAN's (``esrgan_plugin.choices.REALWORLD_DEFAULTS``); ranges are (low, high).
    ``blur_kernel_size`` is the largest kernel: sizes 7, 9, ... up to it are drawn, each padded to it (basicsr
    fixes 21). ``crop_pad_size``: the GT region the dataset cuts (padding smaller images) before degradation;
    ``gt_size``: the crop taken from it after degradation.
    """

    blur_kernel_size: int
    kernel_list: tuple
    kernel_prob: tuple
    sinc_prob: float
    blur_sigma: tuple
    betag_range: tuple
    betap_range: tuple
    blur_kernel_size2: int
    kernel_list2: tuple
    kernel_prob2: tuple
    sinc_prob2: float
    blur_sigma2: tuple
    betag_range2: tuple
    betap_range2: tuple
    final_sinc_prob: float
    resize_prob: tuple
    resize_range: tuple
    gaussian_noise_prob: float
    noise_range: tuple
    poisson_scale_range: tuple
    gray_noise_prob: float
    jpeg_range: tuple
    second_blur_prob: float
    resize_prob2: tuple
    resize_range2: tuple
    gaussian_noise_prob2: float
    noise_range2: tuple
    poisson_scale_range2: tuple
    gray_noise_prob2: float
    jpeg_range2: tuple
    gt_usm: bool
    gt_size: int
    crop_pad_size: int

    @classmethod
    def from_options(cls, dataset_opt: Mapping) -> 'RealWorldSettings':
        """The settings of a train dataset section; a key left out takes Real-ESRGAN's value."""
        values = {f.name: _frozen(dataset_opt.get(f.name, REALWORLD_DEFAULTS[f.name]))
                  for f in dataclasses.fields(cls)}
        return cls(**values)


def smallest_region(settings: RealWorldSettings, scale: int) -> int:
    """The smallest ``crop_pad_size`` the pipeline can filter: reflection padding needs an image more than half
    a kernel wide, at each size a filter meets: the region (USM, kernel1), the region after the first resize at
    its smallest (kernel2), the LR (final sinc)."""
    def needs(kernel_size: int) -> int:
        return kernel_size // 2 + 1

    usm = needs(USM_KERNEL_SIZE) if settings.gt_usm else 1
    after_resize = math.ceil(needs(settings.blur_kernel_size2) / min(1.0, settings.resize_range[0]))
    return max(usm, needs(settings.blur_kernel_size), after_resize, needs(settings.blur_kernel_size2) * scale)

# ----------------------------------------------------------------------------- per sample: the kernels
def _draw_blur_kernel(max_size: int, kernel_list: tuple, kernel_prob: tuple, sigma: tuple, betag: tuple,
                      betap: tuple, sinc_prob: float) -> tuple[torch.Tensor, int]:
    """One blur kernel padded to ``max_size`` and its index in KERNEL_TYPES, drawn as RealESRGANDataset draws."""
    size = random.choice(range(SMALLEST_KERNEL, max_size + 1, 2))
    if np.random.uniform() < sinc_prob:
        # basicsr's cut-off range: small kernels cannot hold the low cut-offs
        omega_c = np.random.uniform(np.pi / 3 if size < 13 else np.pi / 5, np.pi)
        kernel, kind = circular_lowpass_kernel(omega_c, size, pad_to=False), 'sinc'
    else:
        # random_mixed_kernels draws the type first, with this very call; a look at it (the state put back)
        # names the type for the preview without changing what is drawn.
        state = random.getstate()
        kind = random.choices(kernel_list, kernel_prob)[0]
        random.setstate(state)
        kernel = random_mixed_kernels(list(kernel_list), list(kernel_prob), size, sigma, sigma,
                                      [-math.pi, math.pi], betag, betap, noise_range=None)
    pad = (max_size - size) // 2
    return torch.FloatTensor(np.pad(kernel, ((pad, pad), (pad, pad)))), KERNEL_TYPES.index(kind)


def _pulse(size: int) -> torch.Tensor:
    """The kernel that leaves an image as it is."""
    pulse = torch.zeros(size, size)
    pulse[size // 2, size // 2] = 1
    return pulse


def draw_kernels(settings: RealWorldSettings) -> dict[str, torch.Tensor]:
    """One sample's kernels, drawn from the global ``random`` and ``np.random`` as RealESRGANDataset draws them.

    ``kernel1`` (blur_kernel_size square), ``kernel2`` and ``sinc_kernel`` (blur_kernel_size2 square; the final
    sinc, or a pulse when none is drawn), float32; ``kernel1_type``, ``kernel2_type``: int64 indices into
    KERNEL_TYPES, for the preview's labels.
    """
    s = settings
    kernel1, type1 = _draw_blur_kernel(s.blur_kernel_size, s.kernel_list, s.kernel_prob, s.blur_sigma,
                                       s.betag_range, s.betap_range, s.sinc_prob)
    kernel2, type2 = _draw_blur_kernel(s.blur_kernel_size2, s.kernel_list2, s.kernel_prob2, s.blur_sigma2,
                                       s.betag_range2, s.betap_range2, s.sinc_prob2)
    if np.random.uniform() < s.final_sinc_prob:
        size = random.choice(range(SMALLEST_KERNEL, s.blur_kernel_size2 + 1, 2))
        omega_c = np.random.uniform(np.pi / 3, np.pi)
        sinc = torch.FloatTensor(circular_lowpass_kernel(omega_c, size, pad_to=s.blur_kernel_size2))
    else:
        sinc = _pulse(s.blur_kernel_size2)
    return {'kernel1': kernel1, 'kernel2': kernel2, 'sinc_kernel': sinc,
            'kernel1_type': torch.tensor(type1), 'kernel2_type': torch.tensor(type2)}


# ----------------------------------------------------------------------------- per batch: the degradation
class DegradedBatch(NamedTuple):
    """``gt`` (USM-sharpened if ``gt_usm``) and ``lq`` cropped to gt_size and gt_size / scale; ``draws``: one
    dict per sample:

    ``kernel1``, ``kernel2``: ``{'type': a KERNEL_TYPES name (None without the batch's kernel types),
    'spread': (major, minor) standard deviations in px, None for a sinc}``; ``kernel2`` is None where the second
    blur was not drawn. ``resize1``, ``resize2``: (``'up'``/``'down'``/``'keep'``, factor, interpolation mode).
    ``noise1``, ``noise2``: (``'gaussian'``/``'poisson'``, sigma in levels of 255 or Poisson scale, grey).
    ``jpeg1_quality``, ``jpeg2_quality``: floats in the jpeg ranges. ``final_sinc``: whether the final sinc
    was drawn; ``final_order``: ``'resize+sinc, jpeg'`` or ``'jpeg, resize+sinc'``; ``final_resize_mode``.
    Resizes, noise kinds and the order are drawn once per batch, so every sample's dict repeats them.
    """
    gt: torch.Tensor
    lq: torch.Tensor
    draws: list


_MODULES: dict = {}


def _on_device(kind: type, device: torch.device) -> torch.nn.Module:
    """One DiffJPEG / USMSharp per device, built once (their tables and kernels are buffers)."""
    key = (kind, str(device))
    if key not in _MODULES:
        module = kind(differentiable=False) if kind is DiffJPEG else kind()
        _MODULES[key] = module.to(device)
    return _MODULES[key]


def _draw_resize(prob: tuple, scale_range: tuple) -> tuple[str, float, str]:
    """(direction, scale, mode) as feed_data draws them: one for the whole batch."""
    direction = random.choices(['up', 'down', 'keep'], prob)[0]
    if direction == 'up':
        scale = np.random.uniform(1, scale_range[1])
    elif direction == 'down':
        scale = np.random.uniform(scale_range[0], 1)
    else:
        scale = 1
    return direction, float(scale), random.choice(RESIZE_MODES)


def _add_noise(out: torch.Tensor, gaussian_prob: float, sigma_range: tuple, poisson_range: tuple,
               gray_prob: float) -> tuple[torch.Tensor, str, torch.Tensor, torch.Tensor]:
    """Gaussian or Poisson noise (one kind per batch), amount and grey flag per sample; clipped to [0, 1]."""
    gaussian = np.random.uniform() < gaussian_prob
    low, high = sigma_range if gaussian else poisson_range
    b = out.size(0)
    # the two draws of basicsr's random_generate_{gaussian,poisson}_noise_pt, in its order
    amount = torch.rand(b, dtype=out.dtype, device=out.device) * (high - low) + low
    gray = (torch.rand(b, dtype=out.dtype, device=out.device) < gray_prob).float()
    generate = generate_gaussian_noise_pt if gaussian else generate_poisson_noise_pt
    noise = generate(out, amount, gray)
    return torch.clamp(out + noise, 0, 1), 'gaussian' if gaussian else 'poisson', amount, gray


def _jpeg(out: torch.Tensor, quality_range: tuple) -> tuple[torch.Tensor, torch.Tensor]:
    """JPEG at a quality drawn per sample (DiffJPEG overwrites the quality tensor it is given: a copy goes in)."""
    quality = out.new_zeros(out.size(0)).uniform_(*quality_range)
    out = torch.clamp(out, 0, 1)  # basicsr: unclamped input makes JPEG artifacts worse than real ones
    out = _on_device(DiffJPEG, out.device)(out, quality=quality.clone())
    # DiffJPEG returns a channels-last layout, which F.pad keeps on current torch; filter2D's .view() would
    # then fail (basicsr's own feed_data does, wherever the second blur follows JPEG). Values are unchanged.
    return out.contiguous(), quality


def _resize_back_and_sinc(out: torch.Tensor, size: tuple, sinc_kernel: torch.Tensor) -> tuple[torch.Tensor, str]:
    mode = random.choice(RESIZE_MODES)
    return filter2D(F.interpolate(out, size=size, mode=mode), sinc_kernel), mode


def _second_stage_end(out: torch.Tensor, s: RealWorldSettings, lq_size: tuple,
                      sinc_kernel: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """Resize to the LR size with the final sinc filter, and JPEG: in an order drawn per batch.

    Real-ESRGAN groups [resize back + sinc] and takes it before or after JPEG with equal odds: other orders
    (sinc, JPEG, resize) drew twisted lines in its experiments.
    """
    if np.random.uniform() < 0.5:
        out, mode = _resize_back_and_sinc(out, lq_size, sinc_kernel)
        out, quality = _jpeg(out, s.jpeg_range2)
        order = 'resize+sinc, jpeg'
    else:
        out, quality = _jpeg(out, s.jpeg_range2)
        out, mode = _resize_back_and_sinc(out, lq_size, sinc_kernel)
        order = 'jpeg, resize+sinc'
    return out, {'final_order': order, 'final_resize_mode': mode, 'jpeg2_quality': quality}


def degrade_batch(gt: torch.Tensor, kernels: Mapping[str, torch.Tensor], settings: RealWorldSettings,
                  scale: int) -> DegradedBatch:
    """The LR of a GT batch (N, 3, H, W) in [0, 1], made on ``gt.device`` as RealESRNetModel.feed_data makes it.

    ``kernels``: the batched ``kernel1``, ``kernel2``, ``sinc_kernel`` of :func:`draw_kernels` (the dataset's
    items, collated); ``kernel1_type`` / ``kernel2_type`` are optional (labels only). After the degradation the
    pair is cropped at one random place (basicsr's ``paired_random_crop``) to ``settings.gt_size`` and
    gt_size / scale, as feed_data does: degrading the larger ``crop_pad_size`` region keeps the blur's and the
    resizes' borders out of the crop. The LR is rounded to 8-bit levels. Draws come from the global generators
    (torch's of ``gt.device``); each sample's dict in ``draws`` names them (``esrgan_plugin/data/degradation_preview.py`` labels them).
    """
    s = settings
    if s.gt_usm:
        gt = _on_device(USMSharp, gt.device)(gt)
    kernel1, kernel2, sinc_kernel = (kernels[k].to(gt.device) for k in ('kernel1', 'kernel2', 'sinc_kernel'))
    ori_h, ori_w = gt.shape[2:4]
    batch: dict[str, Any] = {}

    # the first degradation: blur, resize, noise, JPEG
    out = filter2D(gt, kernel1)
    direction, factor, mode = _draw_resize(s.resize_prob, s.resize_range)
    batch['resize1'] = (direction, factor, mode)
    out = F.interpolate(out, scale_factor=factor, mode=mode)
    out, kind, amount, gray = _add_noise(out, s.gaussian_noise_prob, s.noise_range, s.poisson_scale_range,
                                         s.gray_noise_prob)
    batch['noise1'] = (kind, amount, gray)
    out, batch['jpeg1_quality'] = _jpeg(out, s.jpeg_range)

    # the second degradation: blur (maybe), resize, noise, then JPEG and the final sinc
    batch['blur2'] = bool(np.random.uniform() < s.second_blur_prob)
    if batch['blur2']:
        out = filter2D(out, kernel2)
    direction, factor, mode = _draw_resize(s.resize_prob2, s.resize_range2)
    batch['resize2'] = (direction, factor, mode)
    out = F.interpolate(out, size=(int(ori_h / scale * factor), int(ori_w / scale * factor)), mode=mode)
    out, kind, amount, gray = _add_noise(out, s.gaussian_noise_prob2, s.noise_range2, s.poisson_scale_range2,
                                         s.gray_noise_prob2)
    batch['noise2'] = (kind, amount, gray)
    out, ending = _second_stage_end(out, s, (ori_h // scale, ori_w // scale), sinc_kernel)
    batch.update(ending)

    lq = torch.clamp((out * 255.0).round(), 0, 255) / 255.
    gt, lq = paired_random_crop(gt, lq, s.gt_size, scale)
    return DegradedBatch(gt, lq.contiguous(), _per_sample(batch, kernels))


def _kernel_spread(kernel: torch.Tensor) -> tuple[float, float]:
    """Standard deviations (px) of a non-negative kernel along its principal axes, largest first."""
    k = kernel.double().clamp(min=0)
    k = k / k.sum()
    coords = torch.arange(k.size(0), dtype=torch.float64) - (k.size(0) - 1) / 2
    y, x = torch.meshgrid(coords, coords, indexing='ij')
    mean_y, mean_x = (k * y).sum(), (k * x).sum()
    cov = torch.stack([torch.stack([(k * (y - mean_y) ** 2).sum(), (k * (y - mean_y) * (x - mean_x)).sum()]),
                       torch.stack([(k * (y - mean_y) * (x - mean_x)).sum(), (k * (x - mean_x) ** 2).sum()])])
    low, high = torch.linalg.eigvalsh(cov).clamp(min=0).sqrt().tolist()
    return high, low


def _kernel_draw(kernels: Mapping[str, torch.Tensor], name: str, index: int) -> dict:
    kernel = kernels[name][index].detach().cpu()
    types = kernels.get(f'{name}_type')
    kind = KERNEL_TYPES[int(types[index])] if types is not None else None
    return {'type': kind, 'spread': None if kind == 'sinc' else _kernel_spread(kernel)}


def _per_sample(batch: dict, kernels: Mapping[str, torch.Tensor]) -> list[dict]:
    """The batch's draws split into one dict per sample (resize, noise kind and order are shared)."""
    draws = []
    for i in range(kernels['kernel1'].size(0)):
        sinc = kernels['sinc_kernel'][i]
        is_pulse = bool(sinc.abs().sum() == sinc.abs().max())  # a pulse: the final sinc was not drawn
        draw = {'kernel1': _kernel_draw(kernels, 'kernel1', i), 'resize1': batch['resize1'],
                'noise1': _noise_draw(batch['noise1'], i), 'jpeg1_quality': float(batch['jpeg1_quality'][i]),
                'kernel2': _kernel_draw(kernels, 'kernel2', i) if batch['blur2'] else None,
                'resize2': batch['resize2'], 'noise2': _noise_draw(batch['noise2'], i),
                'jpeg2_quality': float(batch['jpeg2_quality'][i]), 'final_sinc': not is_pulse,
                'final_order': batch['final_order'], 'final_resize_mode': batch['final_resize_mode']}
        draws.append(draw)
    return draws


def _noise_draw(noise: tuple, index: int) -> tuple[str, float, bool]:
    kind, amount, gray = noise
    return kind, float(amount[index]), bool(gray[index] > 0)


@contextlib.contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed Python's, NumPy's, the CPU's and ``device``'s torch generators with ``seed``; restore them after.

    The draws inside are a function of ``seed`` only, and the code around sees its generators as they were.
    """
    device = torch.device(device)
    cuda = [device] if device.type == 'cuda' else []
    python_state, numpy_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=cuda):
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.default_generator.manual_seed(seed)
        for d in cuda:
            with torch.cuda.device(d):
                torch.cuda.manual_seed(seed)
        try:
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)
