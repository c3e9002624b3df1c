"""What the network sees: GT/LR training pairs written as images, with a labelled contact sheet.

``write_preview`` writes ``<k>_gt.png`` and ``<k>_lq.png`` for each pair and ``sheet.png``: one row per pair,
the GT crop, its LR enlarged to the GT's size (nearest neighbour, so the LR's own pixels show), and the
degradations drawn for it (:func:`describe_draws`). The ``degrade`` command and training's
dump of its first batches both call it.
"""
from __future__ import annotations

import os
import random
from typing import Any, Mapping, NamedTuple, Optional, Sequence

import cv2
import numpy as np
import torch

from esrgan_plugin.data.realworld_degradation import DegradedBatch, degrade_batch, seeded
from esrgan_plugin.fileio import save_image

_LABEL_WIDTH = 250  # px of text beside each pair
_LINE_HEIGHT = 14
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_FONT_SCALE = 0.38
_GAP = 4  # px between the panels of a row and between rows


class PreviewPair(NamedTuple):
    """One training pair: RGB CHW float tensors in [0, 1], and its draws (None: label with ``note`` only)."""
    gt: torch.Tensor
    lq: torch.Tensor
    draw: Optional[Mapping] = None
    note: str = ''


def pairs_from_batch(batch: DegradedBatch, notes: Sequence[str] = ()) -> list[PreviewPair]:
    """A degraded batch as preview pairs, each labelled with its draws (and its note, e.g. the GT file)."""
    notes = list(notes) + [''] * (batch.gt.size(0) - len(notes))
    return [PreviewPair(batch.gt[i], batch.lq[i], batch.draws[i], notes[i]) for i in range(batch.gt.size(0))]


def sample_pairs(dataset, scale: int, count: int, seed: int, device: torch.device) -> list[PreviewPair]:
    """``count`` items of a GTOnlyDataset drawn with ``seed`` (the same seed, the same pairs), their LR made as
    training makes it: realworld items degraded on ``device``, each as a batch of its own, so that every pair
    shows its own resize and noise draws (training draws those once per batch); bicubic items as loaded."""
    pairs = []
    with seeded(seed, device):
        for _ in range(count):
            item = dataset[random.randrange(len(dataset))]
            name = os.path.basename(str(item['gt_path']))
            if 'lq' in item:
                pairs.append(PreviewPair(item['gt'], item['lq'], None, f'{name}: MATLAB bicubic 1/{scale}'))
                continue
            kernels = {k: v[None] for k, v in item.items() if k.startswith('kernel') or k == 'sinc_kernel'}
            batch = degrade_batch(item['gt'][None].to(device), kernels, dataset.settings, scale)
            pairs += pairs_from_batch(batch, [name + (' (GT sharpened)' if dataset.settings.gt_usm else '')])
    return pairs


def to_bgr8(image: torch.Tensor) -> np.ndarray:
    """RGB CHW float in [0, 1] -> uint8 BGR HWC, rounded as basicsr's tensor2img rounds."""
    rgb = image.detach().float().clamp(0, 1).cpu().numpy().transpose(1, 2, 0)
    return np.ascontiguousarray((rgb[:, :, ::-1] * 255.0).round().astype(np.uint8))


def describe_draws(draw: Mapping) -> list[str]:
    """One sample's draws as short lines (the preview's labels)."""
    def kernel(k: Any) -> str:
        if k is None:
            return 'none'
        spread = '' if k['spread'] is None else ' sd %.1f/%.1f' % k['spread']
        return f"{k['type'] or 'blur'}{spread}"

    def resize(r: tuple) -> str:
        return f'{r[0]} x{r[1]:.2f} {r[2]}'

    def noise(n: tuple) -> str:
        unit = 'sigma' if n[0] == 'gaussian' else 'scale'
        return f"{n[0]}{' grey' if n[2] else ''} {unit} {n[1]:.2f}"

    return [f"1 blur {kernel(draw['kernel1'])}", f"1 resize {resize(draw['resize1'])}",
            f"1 noise {noise(draw['noise1'])}", f"1 jpeg q{draw['jpeg1_quality']:.0f}",
            f"2 blur {kernel(draw['kernel2'])}", f"2 resize {resize(draw['resize2'])}",
            f"2 noise {noise(draw['noise2'])}", f"2 jpeg q{draw['jpeg2_quality']:.0f}",
            f"final sinc {'yes' if draw['final_sinc'] else 'no'}, {draw['final_order']}"]


def _labels(pair: PreviewPair) -> list[str]:
    lines = [pair.note] if pair.note else []
    return lines + (describe_draws(pair.draw) if pair.draw is not None else [])


def _row(gt: np.ndarray, lq: np.ndarray, lines: list[str]) -> np.ndarray:
    h, w = gt.shape[:2]
    enlarged = cv2.resize(lq, (w, h), interpolation=cv2.INTER_NEAREST)
    height = max(h, _LINE_HEIGHT * (len(lines) + 1))
    row = np.full((height, 2 * w + _LABEL_WIDTH + 2 * _GAP, 3), 255, np.uint8)
    row[:h, :w] = gt
    row[:h, w + _GAP:2 * w + _GAP] = enlarged
    x = 2 * w + 2 * _GAP
    for i, line in enumerate(lines, 1):
        cv2.putText(row, line, (x, i * _LINE_HEIGHT), _FONT, _FONT_SCALE, (0, 0, 0), 1, cv2.LINE_AA)
    return row


def contact_sheet(pairs: Sequence[PreviewPair]) -> np.ndarray:
    """The rows of all pairs, one under the other (uint8 BGR)."""
    rows = [_row(to_bgr8(p.gt), to_bgr8(p.lq), _labels(p)) for p in pairs]
    width = max(r.shape[1] for r in rows)
    padded = [np.pad(r, ((0, _GAP), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    return np.concatenate(padded)


def write_preview(pairs: Sequence[PreviewPair], out_dir: str, first_index: int = 0) -> list[str]:
    """Write ``<k>_gt.png``, ``<k>_lq.png`` (k from ``first_index``) and ``sheet.png`` into ``out_dir``.

    Each file is written whole or not at all (``fileio.save_image``). Returns the paths written, sheet last.
    """
    if not pairs:
        raise ValueError('write_preview needs at least one pair')
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for k, pair in enumerate(pairs, first_index):
        for name, image in (('gt', pair.gt), ('lq', pair.lq)):
            path = os.path.join(out_dir, f'{k}_{name}.png')
            save_image(to_bgr8(image), path)
            written.append(path)
    sheet = os.path.join(out_dir, 'sheet.png')
    save_image(contact_sheet(pairs), sheet)
    return written + [sheet]
