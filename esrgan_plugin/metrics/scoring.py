"""Metrics of ``val.metrics`` as the plugin evaluates them: which direction is better, one image at a time.

Distortion metrics (PSNR, SSIM) are higher-is-better; the perceptual ones ESRGAN is judged by (NIQE, LPIPS) are
lower-is-better. basicsr assumes 'higher' unless an option says ``better: lower``; here each metric type has its
own default, so a NIQE entry without ``better`` is still tracked the right way round.

Metric types are looked up in basicsr's METRIC_REGISTRY: basicsr's ``calculate_psnr``, ``calculate_ssim``,
``calculate_niqe`` (its parameters ship inside basicsr), and the plugin's ``calculate_lpips`` (lpips_metric) and
``calculate_color_shift`` (color_metric), which ``esrgan_plugin.register()`` registers.
"""
from __future__ import annotations

import warnings
from typing import Mapping, Optional

import numpy as np
from basicsr.metrics import calculate_metric
from basicsr.utils import get_root_logger

from esrgan_plugin.errors import UserFacingError
from esrgan_plugin.metrics import lpips_metric

LOWER_IS_BETTER = {'calculate_niqe', 'calculate_lpips', 'calculate_color_shift'}


def better(metric_opt: Mapping) -> str:
    """'higher' or 'lower': the option's ``better`` if given, else the metric type's own direction."""
    value = metric_opt.get('better') or ('lower' if metric_opt.get('type') in LOWER_IS_BETTER else 'higher')
    if value not in ('higher', 'lower'):
        raise UserFacingError(f'val.metrics: better: {value!r} is not valid; use higher or lower.')
    return value


def directions(metric_opts: Mapping[str, Mapping]) -> dict[str, str]:
    return {name: better(opt) for name, opt in metric_opts.items()}


def evaluate(sr: np.ndarray, gt: Optional[np.ndarray], metric_opts: Mapping[str, Mapping]) -> dict[str, float]:
    """Every metric of ``metric_opts`` on one SR image (uint8 HWC BGR) and its ground truth (None: no GT)."""
    data = {'img': sr} if gt is None else {'img': sr, 'img2': gt}
    # 'better' is ours, not an argument of the metric functions.
    return {name: _calculate(name, data, {k: v for k, v in opt.items() if k != 'better'})
            for name, opt in metric_opts.items()}


def _calculate(name: str, data: dict, opt: dict) -> float:
    try:
        with warnings.catch_warnings():
            if opt.get('type') == 'calculate_niqe':  # numpy's empty-slice warnings of blocks without texture
                warnings.simplefilter('ignore', RuntimeWarning)
            return float(calculate_metric(data, opt))
    except np.linalg.LinAlgError:
        # NIQE fits a Gaussian to the statistics of 96x96 blocks; an image without texture (a flat output of an
        # untrained network) or smaller than two blocks has none to fit. basicsr then fails inside an SVD; the
        # value is undefined, not an error of the run.
        if opt.get('type') != 'calculate_niqe':
            raise
        get_root_logger().warning(f'{name}: NIQE is undefined for this image (no textured 96x96 blocks: it is '
                                  'flat or too small); counted as nan.')
        return float('nan')


def describe(values: Mapping[str, float], better_by_name: Mapping[str, str]) -> str:
    """'psnr_y 24.1234 (higher is better), niqe 4.7300 (lower is better)'."""
    return ', '.join(f'{name} {value:.4f} ({better_by_name[name]} is better)' for name, value in values.items())


def check_weights_available(metric_opts: Optional[Mapping[str, Mapping]]) -> None:
    """Fail before anything is written when a metric's weight files are missing (LPIPS), or a direction is bad."""
    for opt in (metric_opts or {}).values():
        better(opt)
        if opt.get('type') == 'calculate_lpips':
            lpips_metric.resolve_weights(opt.get('net', 'alex'), opt.get('backbone_weights'), opt.get('lpips_weights'))


def summary_table(rows: list[tuple[str, Mapping[str, float]]], better_by_name: Mapping[str, str]) -> str:
    """A plain-text table of means, one row per (label, {metric: mean}); the second line says which way is better.

    dataset       psnr_y     niqe
    better:       higher    lower
    Set14        24.1234   4.7300
    """
    names = list(better_by_name)
    label_width = max([len('better:')] + [len(label) for label, _ in rows])
    widths = [max(len(n), 9) for n in names]

    def line(label: str, cells: list[str]) -> str:
        return '  '.join([f'{label:<{label_width}}'] + [f'{c:>{w}}' for c, w in zip(cells, widths)])

    lines = [line('dataset', names), line('better:', [better_by_name[n] for n in names])]
    for label, means in rows:
        lines.append(line(label, [f'{means[n]:.4f}' if n in means else '-' for n in names]))
    return '\n'.join(lines)
