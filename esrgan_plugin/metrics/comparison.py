"""Outputs of several methods compared: side by side in one figure, and by how direction-dependent their detail is.

The demo draws ``comparison_figure`` of bicubic, the PSNR model, ESRGAN and their interpolation on each held-out
photo, and bounds each GAN-stage output's ``direction_ratio`` against the ground truth's (horizontal streaks raise
it; docs/demo.md#measured-result). OpenCV and numpy only, so that the demo answers ``-h`` before torch is imported.
"""
from __future__ import annotations

from typing import Optional

import cv2
import numpy as np


def direction_ratio(img: np.ndarray) -> float:
    """Vertical over horizontal mean |second difference| of ``img`` (as float, over all pixels and channels).

    Vertical: ``|I[y+1, x] - 2 I[y, x] + I[y-1, x]|``, horizontal the same along x. Horizontal streaks raise it
    above 1, vertical ones lower it; a photo's own ratio is near 1 (chelsea's ground truth: 1.10).
    """
    f = np.asarray(img, dtype=np.float64)
    vertical = np.abs(f[2:] - 2 * f[1:-1] + f[:-2]).mean()
    horizontal = np.abs(f[:, 2:] - 2 * f[:, 1:-1] + f[:, :-2]).mean()
    if horizontal == 0:
        return 1.0 if vertical == 0 else float('inf')
    return float(vertical / horizontal)


def panel(img: np.ndarray, label: str, width: int, window: Optional[tuple[int, int, int]] = None) -> np.ndarray:
    """``img`` scaled to ``width`` under a label strip; ``window`` (y, x, size) is outlined."""
    img = img.copy()
    if window:
        y, x, size = window
        cv2.rectangle(img, (x, y), (x + size - 1, y + size - 1), (0, 220, 255), max(1, img.shape[1] // 200))
    height = round(img.shape[0] * width / img.shape[1])
    interpolation = cv2.INTER_AREA if width < img.shape[1] else cv2.INTER_NEAREST
    body = cv2.resize(img, (width, height), interpolation=interpolation)
    strip = np.full((28, width, 3), 32, np.uint8)
    cv2.putText(strip, label, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
    return np.concatenate([strip, body], axis=0)


def side_by_side(panels: list[np.ndarray], gap: int) -> np.ndarray:
    """Panels of the same height in a row, ``gap`` white pixels apart."""
    spacer = np.full((panels[0].shape[0], gap, 3), 255, np.uint8)
    pieces = [piece for p in panels for piece in (p, spacer)][:-1]
    return np.concatenate(pieces, axis=1)


def comparison_figure(rows: list[tuple[str, dict, np.ndarray]], width: int = 300, gap: int = 6) -> np.ndarray:
    """For each photo: the whole images side by side, then a zoom into its most detailed region.

    Every panel has the same width, so every row has the same width whatever the photo's size.
    """
    from esrgan_plugin.metrics.results_page import detailed_region  # here: it imports basicsr, and so torch

    lines = []
    for photo, outputs, gt in rows:
        y, x, size = detailed_region(gt, 96, 1, stride=8, measure='magnitude')
        images = {**outputs, 'ground truth': gt}
        lines.append(side_by_side([panel(img, f'{photo}: {label}', width, (y, x, size))
                                   for label, img in images.items()], gap))
        lines.append(side_by_side([panel(img[y:y + size, x:x + size], f'{label}, zoomed', width)
                                   for label, img in images.items()], gap))
    separator = np.full((gap * 2, lines[0].shape[1], 3), 255, np.uint8)
    return np.concatenate([piece for line in lines for piece in (line, separator)][:-1], axis=0)
