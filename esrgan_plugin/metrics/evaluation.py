"""The one evaluation path: run a network over LR/GT pairs, convert its output to an image, score it.

Validation and the test command (``metrics.validation``), the perception-distortion sweep
(``inference.sweep``) and the demo all report metrics of SR images. They must give the same number for the same
network and image, so each of them goes through ``evaluate_pairs``: the SR tensor becomes a uint8 HWC BGR image
with basicsr's ``tensor2img`` (round to the 8 bits an image file holds, as basicsr's own validation does), the
ground truth too, and ``scoring.evaluate`` computes the metrics of ``val.metrics`` on those images. What differs
between the callers stays with them: how the network is run (precision, EMA weights, device), what is logged,
saved or plotted.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Mapping, Optional

import numpy as np
import torch
from basicsr.utils import img2tensor, tensor2img

from esrgan_plugin.metrics import scoring

# An LR batch (1 x C x h x w, values in [0, 1], RGB) -> its SR batch (1 x C x H x W), on any device.
Upscaler = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class ImageEvaluation:
    """One image's result: its name, the SR and GT images (uint8 HWC BGR; ``gt`` None without a ground truth),
    every metric's value, and the pair as it came (callers read its paths, e.g. for the results page)."""
    name: str
    sr: np.ndarray
    gt: Optional[np.ndarray]
    values: dict
    item: Mapping = field(repr=False)


def image_name(item: Mapping) -> str:
    """The pair's ``name``, else the stem of its ``lq_path`` (a string, or a batch's list of one as a basicsr
    dataloader gives it): the name validation logs and names SR files by."""
    if 'name' in item:
        return str(item['name'])
    path = item['lq_path']
    if not isinstance(path, str):
        (path,) = path
    return os.path.splitext(os.path.basename(path))[0]


def _as_batch(img: torch.Tensor) -> torch.Tensor:
    """A dataset item is C x H x W, a dataloader's batch 1 x C x H x W; networks take the latter."""
    return img.unsqueeze(0) if img.dim() == 3 else img


def evaluate_pairs(upscale: Upscaler, pairs: Iterable[Mapping],
                   metric_opts: Mapping[str, Mapping]) -> Iterator[ImageEvaluation]:
    """Each pair's SR image and metric values, one pair at a time (so callers can save, log and show progress
    as they go, and hold one image in memory).

    ``pairs`` yields mappings with ``lq`` (C x H x W or 1 x C x H x W, RGB in [0, 1], as basicsr's datasets and
    dataloaders give them), optional ``gt`` (same layout; without it only no-reference metrics can be asked
    for) and ``name`` or ``lq_path``. ``upscale`` runs the network; it is called without gradients.
    """
    for item in pairs:
        with torch.no_grad():
            output = upscale(_as_batch(item['lq']))
        sr = tensor2img([output.detach().cpu()])
        gt = tensor2img([_as_batch(item['gt']).detach().cpu()]) if 'gt' in item else None
        del output
        yield ImageEvaluation(image_name(item), sr, gt, scoring.evaluate(sr, gt, metric_opts), item)


def mean_values(per_image: Iterable[Mapping[str, float]], names: Iterable[str]) -> dict[str, float]:
    """{metric: mean over images} of the metrics ``names`` (a metric undefined for one image, nan, makes the mean
    nan: a silently smaller average would compare unfairly with other runs)."""
    per_image = list(per_image)
    return {name: float(np.mean([values[name] for values in per_image])) for name in names}


def image_pair(name: str, lq: np.ndarray, gt: Optional[np.ndarray] = None) -> dict:
    """A pair for ``evaluate_pairs`` from uint8 HWC BGR images (as cv2 reads them), converted as basicsr's
    datasets convert files, so images in memory are evaluated exactly like images on disk."""
    pair = {'name': name, 'lq': img2tensor(lq.astype(np.float32) / 255.0, bgr2rgb=True, float32=True)}
    if gt is not None:
        pair['gt'] = img2tensor(gt.astype(np.float32) / 255.0, bgr2rgb=True, float32=True)
    return pair


def image_upscaler(upscale_image: Callable[[np.ndarray], np.ndarray]) -> Upscaler:
    """An ``Upscaler`` from a function on uint8 HWC BGR images, e.g. bicubic upscaling, so that a baseline which
    is no network is scored on the same path as the networks it is compared with.

    The LR image it receives is the pair's, exactly (``tensor2img`` undoes ``image_pair``'s conversion), and the
    image it returns is the SR image that gets scored, exactly.
    """
    def upscale(lq: torch.Tensor) -> torch.Tensor:
        sr = upscale_image(tensor2img([lq.detach().cpu()]))
        return img2tensor(sr.astype(np.float32) / 255.0, bgr2rgb=True, float32=True).unsqueeze(0)
    return upscale

