"""The demo's real-world variant and its scoring on two test sets (docs/demo.md#the-real-world-variant).

* training data of ``--degradation realworld``: the same GT sub-images as the bicubic variant, the LR of each
  batch made on the fly by Real-ESRGAN's degradations (``GTOnlyDataset``), with the degradation settings read
  from the shipped options/train_RRDBNet_PSNR_x4_realworld.yml and only the sizes scaled to the demo's patches;
* test sets: the held-out photos' MATLAB-bicubic LR, and the same photos degraded as
  ``prepare_data --realworld-test`` degrades them, with a fixed seed (the same inputs for every run and model);
* scores: PSNR on Y (4-pixel border), NIQE, and LPIPS when its weights are on disk, per method and test set.

Library code: it returns the lines of its table; the demo command prints them.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Mapping, Optional

import cv2

from esrgan_plugin import fileio

REALWORLD_OPTION_FILE = 'train_RRDBNet_PSNR_x4_realworld'
# Real-ESRGAN's pool holds 15 batches (180 pairs of batch 12); the demo keeps 15 of its batches.
QUEUE_BATCHES = 15
TEST_SET_SEED = 0  # prepare_data --realworld-test's default: the command reproduces the demo's test set
BICUBIC_SET, REALWORLD_SET = 'bicubic LR', 'real-world LR'
SCORES = {'psnr': {'type': 'calculate_psnr', 'crop_border': 4, 'test_y_channel': True},
          'niqe': {'type': 'calculate_niqe', 'crop_border': 4}}
LPIPS_SCORE = {'lpips': {'type': 'calculate_lpips', 'crop_border': 4, 'net': 'alex'}}
SCORE_TITLES = {'psnr': 'PSNR-Y', 'niqe': 'NIQE', 'lpips': 'LPIPS'}


def shipped_degradation() -> dict:
    """The degradation of the shipped real-world file's train dataset: ``degradation`` and every setting of the
    pipeline (``RealWorldSettings``) it holds, less the sizes (``gt_size``, ``crop_pad_size``), which depend on
    the patches."""
    from esrgan_plugin.config.option_file import load_yaml
    from esrgan_plugin.config.shipped import resolve_option_file
    from esrgan_plugin.data.realworld_degradation import RealWorldSettings

    with open(resolve_option_file(REALWORLD_OPTION_FILE), encoding='utf-8') as f:
        train = load_yaml(f.read())['datasets']['train']
    keys = {f.name for f in dataclasses.fields(RealWorldSettings)} - {'gt_size', 'crop_pad_size'}
    return {key: train[key] for key in ('degradation', *sorted(keys)) if key in train}


def realworld_train_dataset(paired: Mapping, region: int) -> dict:
    """The demo's train dataset section, LR made on the fly: the same GT, crops, flips, rotations and batch.

    ``region``: the GT region degraded per sample (``crop_pad_size``), the demo's whole sub-image, which is 1.5
    times its crop as Real-ESRGAN's 400 is 1.56 times its 256.
    """
    dataset = {key: value for key, value in paired.items() if key != 'dataroot_lq'}
    return {**dataset, 'type': 'GTOnlyDataset', **shipped_degradation(), 'crop_pad_size': region,
            'queue_size': QUEUE_BATCHES * dataset['batch_size_per_gpu']}


def realworld_test_set(photo_dir: str, out_dir: str, scale: int) -> tuple[str, str]:
    """The held-out photos degraded with the fixed seed (``prepare_data --realworld-test``): (LR folder, GT
    folder). The GT is each photo's centred square, as the command cuts it."""
    from esrgan_plugin.data.realworld_test_set import prepare_realworld_test

    gt, lq, _ = prepare_realworld_test(photo_dir, out_dir, scale=scale, seed=TEST_SET_SEED, progress=False)
    return lq, gt


def score_names() -> tuple[dict, Optional[str]]:
    """The metrics to score and, when LPIPS is left out, why (its weights are not on disk)."""
    from esrgan_plugin.metrics.lpips_metric import LPIPSWeightsMissing, resolve_weights

    try:
        resolve_weights(LPIPS_SCORE['lpips']['net'])
    except LPIPSWeightsMissing as missing:
        return dict(SCORES), f'LPIPS left out: {missing}'
    return {**SCORES, **LPIPS_SCORE}, None


def read_pairs(lq_folder: str, gt_folder: str) -> list[dict]:
    from esrgan_plugin.metrics import evaluation

    return [evaluation.image_pair(os.path.splitext(f)[0], cv2.imread(os.path.join(lq_folder, f)),
                                  cv2.imread(os.path.join(gt_folder, f))) for f in sorted(os.listdir(gt_folder))]


def score_sets(upscalers: Mapping[str, object], sets: Mapping[str, tuple[str, str]], metrics: Mapping,
               results_dir: str) -> dict:
    """{set: {method: {metric: mean over the photos}}}; writes each SR image to
    ``results_dir/<set folder>/<method folder>/<photo>.png`` and one comparison figure per set beside them.

    ``upscalers``: method label -> ``metrics.evaluation.Upscaler``; ``sets``: label -> (LR folder, GT folder).
    """
    from esrgan_plugin.metrics import evaluation
    from esrgan_plugin.metrics.comparison import comparison_figure

    scores: dict = {}
    for set_label, (lq_folder, gt_folder) in sets.items():
        set_dir = os.path.join(results_dir, folder_name(set_label))
        pairs = read_pairs(lq_folder, gt_folder)
        outputs: dict = {}
        gts: dict = {}
        for label, upscale in upscalers.items():
            per_photo = []
            for result in evaluation.evaluate_pairs(upscale, pairs, metrics):
                per_photo.append(result.values)
                outputs.setdefault(result.name, {})[label] = result.sr
                gts[result.name] = result.gt
                fileio.save_image(result.sr, os.path.join(set_dir, folder_name(label), f'{result.name}.png'))
            scores.setdefault(set_label, {})[label] = evaluation.mean_values(per_photo, metrics)
        rows = [(photo, outputs[photo], gts[photo]) for photo in outputs]
        fileio.save_image(comparison_figure(rows), os.path.join(set_dir, 'comparison.png'))
    return scores


def folder_name(label: str) -> str:
    """A label as a folder name: lower case, words joined by '_', no brackets (easy to use in a shell)."""
    kept = ''.join(c if c.isalnum() or c in '.-' else ' ' for c in label.lower())
    return '_'.join(kept.split())


def score_table(scores: Mapping[str, Mapping[str, Mapping[str, float]]], photos: tuple) -> list[str]:
    """The lines of a table: one row per method, for each test set its metrics' means over ``photos``."""
    sets = list(scores)
    methods = list(scores[sets[0]])
    names = list(scores[sets[0]][methods[0]])
    cell = max(9, -(-(max(len(label) for label in sets) + 2) // len(names)))  # a set's label fits its columns
    shown = {REALWORLD_SET: f'{REALWORLD_SET} (prepare_data --realworld-test --seed {TEST_SET_SEED})'}
    lines = [f'{"means over " + ", ".join(photos):<32}'
             + ''.join(f'{shown.get(label, label):<{cell * len(names)}}' for label in sets).rstrip(),
             (f'{"method":<32}' + ''.join(f'{SCORE_TITLES[n]:<{cell}}' for n in names) * len(sets)).rstrip()]
    for method in methods:
        cells = ''.join(f'{scores[s][method][n]:<{cell}.{4 if n == "lpips" else 2}f}' for s in sets for n in names)
        lines.append(f'{method[:31]:<32}{cells}'.rstrip())
    return lines
