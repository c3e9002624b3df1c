"""``results/<name>/index.html``: the test results as a page people can look at.

One table per test set, one row per image: the LR input, bicubic upscaling, the SR output and the ground truth,
each shown as a crop of the same detailed region side by side (pixels enlarged without smoothing) and linked to
the full image; then every metric of the image, and the means in the last row. The page is self-contained: plain
HTML and CSS, no script, every image a file under ``page/`` (or the SR images already in ``visualization/``)
referenced by a relative path, so the folder can be moved, archived or opened offline.

The crop is where the ground truth has the most gradient energy (sum of squared Sobel responses over the
window): textures and edges, where super-resolution methods differ most.
"""
from __future__ import annotations

import html
import os
from dataclasses import dataclass, field
from typing import Mapping, Optional

import cv2
import numpy as np

from esrgan_plugin import fileio
from esrgan_plugin.data.bicubic import matlab_bicubic
from esrgan_plugin.metrics import evaluation

CROP = 128  # ground-truth pixels per side of the detailed region
SHOWN = 192  # CSS pixels per side of each crop on the page


@dataclass
class ImageResult:
    name: str
    lq_path: str
    gt_path: Optional[str]
    sr_path: Optional[str]  # None when val.save_img is off
    metrics: dict
    page_images: dict = field(default_factory=dict)  # kind -> (full image, crop), once written


@dataclass
class DatasetResult:
    name: str
    scale: int
    better: dict  # metric name -> 'higher' | 'lower'
    images: list = field(default_factory=list)  # ImageResult

    def means(self) -> dict:
        return evaluation.mean_values([img.metrics for img in self.images], self.better) if self.images else {}


def detailed_region(gt: np.ndarray, size: int, scale: int, stride: Optional[int] = None,
                    measure: str = 'squared') -> tuple[int, int, int]:
    """(top, left, size) of the ``size``-pixel square of ``gt`` with the most gradient energy.

    ``size`` is cut to fit the image and to a multiple of ``scale``; corners are tried every ``stride`` pixels
    (default ``scale``; a multiple of ``scale`` keeps corners on the LR grid, so the same region of the LR image
    is exact, and a coarser one is faster on large images). ``measure`` is what is summed over the window:
    'squared' (sum of squared Sobel responses: strong edges count most, the results page's choice) or
    'magnitude' (their length: texture spread over the window counts more). Ties go to the first window in
    row-major order.
    """
    if measure not in ('squared', 'magnitude'):
        raise ValueError(f"measure must be 'squared' or 'magnitude', not {measure!r}")
    stride = stride or scale
    h, w = gt.shape[:2]
    size = max(scale, min(size, h, w) // scale * scale)
    gray = cv2.cvtColor(gt, cv2.COLOR_BGR2GRAY).astype(np.float64) if gt.ndim == 3 else gt.astype(np.float64)
    energy = cv2.Sobel(gray, cv2.CV_64F, 1, 0) ** 2 + cv2.Sobel(gray, cv2.CV_64F, 0, 1) ** 2
    if measure == 'magnitude':
        energy = np.sqrt(energy)
    table = cv2.integral(energy)  # (h + 1) x (w + 1): window sums in four look-ups
    tops, lefts = np.meshgrid(np.arange(0, h - size + 1, stride), np.arange(0, w - size + 1, stride), indexing='ij')
    sums = (table[tops + size, lefts + size] - table[tops, lefts + size] - table[tops + size, lefts]
            + table[tops, lefts])
    i, j = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return int(tops[i, j]), int(lefts[i, j]), size


def _rel(path: str, root: str) -> str:
    return os.path.relpath(path, root).replace(os.sep, '/')


def _image_cell(full: str, crop: str, root: str, caption: str) -> str:
    return (f'<td><a href="{html.escape(_rel(full, root))}" title="full image">'
            f'<img src="{html.escape(_rel(crop, root))}" width="{SHOWN}" height="{SHOWN}" '
            f'alt="{html.escape(caption)}"></a></td>')


def _write_assets(result: ImageResult, dataset: DatasetResult, assets: str) -> dict:
    """Full images and crops of one test image under ``assets``; returns {kind: (full path, crop path)}."""
    lq = cv2.imread(result.lq_path, cv2.IMREAD_COLOR)
    gt = cv2.imread(result.gt_path, cv2.IMREAD_COLOR) if result.gt_path else None
    sr = cv2.imread(result.sr_path, cv2.IMREAD_COLOR) if result.sr_path else None
    bicubic = matlab_bicubic(lq, dataset.scale)  # the baseline, made as the LR images were
    reference = gt if gt is not None else (sr if sr is not None else bicubic)
    top, left, size = detailed_region(reference, CROP, dataset.scale)
    s = dataset.scale
    images = {'LR': (lq, (top // s, left // s, size // s)), 'bicubic': (bicubic, (top, left, size)),
              'SR': (sr, (top, left, size)), 'ground truth': (gt, (top, left, size))}
    paths = {}
    for kind, (img, (t, l, n)) in images.items():
        if img is None:
            continue
        tag = kind.replace(' ', '_')
        if kind == 'SR':
            full = result.sr_path  # already saved by the validation loop
        else:
            full = os.path.join(assets, f'{result.name}_{tag}.png')
            fileio.save_image(img, full)
        crop = os.path.join(assets, f'{result.name}_{tag}_crop.png')
        fileio.save_image(img[t:t + n, l:l + n], crop)
        paths[kind] = (full, crop)
    return paths


def write(results_root: str, datasets: list[DatasetResult]) -> str:
    """Write ``<results_root>/index.html`` (and its images under ``page/``) for ``datasets``; returns its path."""
    parts = ['<!DOCTYPE html>', '<html lang="en"><head><meta charset="utf-8">',
             f'<title>{html.escape(os.path.basename(os.path.abspath(results_root)))}: results</title>',
             '<style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse;margin-bottom:2em}'
             'td,th{border:1px solid #ccc;padding:4px;text-align:center;vertical-align:top}'
             'img{image-rendering:pixelated;display:block}td.num{text-align:right;font-family:monospace}'
             'tr.means{font-weight:bold;background:#eee}</style></head><body>',
             f'<h1>{html.escape(os.path.basename(os.path.abspath(results_root)))}</h1>',
             f'<p>Crops of {CROP}&times;{CROP} ground-truth pixels where the ground truth has the most detail, '
             f'enlarged to {SHOWN}&times;{SHOWN} without smoothing; click a crop for the full image.</p>']
    for dataset in datasets:
        assets = os.path.join(results_root, 'page', dataset.name)
        metric_names = list(dataset.better)
        parts.append(f'<h2>{html.escape(dataset.name)}</h2><table><tr><th>image</th><th>LR</th><th>bicubic</th>'
                     '<th>SR</th><th>ground truth</th>'
                     + ''.join(f'<th>{html.escape(m)}<br><small>{dataset.better[m]} is better</small></th>'
                               for m in metric_names) + '</tr>')
        for result in dataset.images:
            # The page is rewritten after each test set; the images of earlier sets are already there.
            result.page_images = result.page_images or _write_assets(result, dataset, assets)
            paths = result.page_images
            cells = [_image_cell(*paths[k], results_root, k) if k in paths else '<td>&mdash;</td>'
                     for k in ('LR', 'bicubic', 'SR', 'ground truth')]
            values = ''.join(f'<td class="num">{result.metrics[m]:.4f}</td>' for m in metric_names)
            parts.append(f'<tr><th>{html.escape(result.name)}</th>{"".join(cells)}{values}</tr>')
        means = dataset.means()
        if means:
            parts.append(f'<tr class="means"><th>mean of {len(dataset.images)}</th><td colspan="4"></td>'
                         + ''.join(f'<td class="num">{means[m]:.4f}</td>' for m in metric_names) + '</tr>')
        parts.append('</table>')
    parts.append('</body></html>')
    index = os.path.join(results_root, 'index.html')
    fileio.save_text('\n'.join(parts) + '\n', index)
    return index


def image_result(name: str, data: Mapping, sr_path: Optional[str], values: Mapping[str, float]) -> ImageResult:
    """An ImageResult from a basicsr data dict (batch of one: ``lq_path``, optional ``gt_path``)."""
    gt_path = data['gt_path'][0] if 'gt_path' in data else None
    return ImageResult(name=name, lq_path=data['lq_path'][0], gt_path=gt_path, sr_path=sr_path, metrics=dict(values))
