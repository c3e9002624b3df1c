"""Validation and the test command's report: one dataset's images run, scored, logged and saved.

The models call ``validate`` from their ``nondist_validation``; how the network is run is theirs (an
``evaluation.Upscaler``), everything else is here:

* every metric per image and the mean in the log, each with the direction that is better (NIQE and LPIPS:
  lower), and the best mean so far tracked that way round (basicsr's ``# psnr: ... Best: ... @ iter`` block);
* the means as TensorBoard scalars ``metrics/<dataset>/<metric>``;
* SR images written atomically: ``visualization/<image>/<image>_<iter>.png`` when training,
  ``visualization/<dataset>/<image>_<suffix or name>.png`` when testing;
* when testing, a progress bar, ``results/<name>/index.html`` (``results_page``) and a table of the means of
  every set tested so far.

Images are run and scored by ``evaluation.evaluate_pairs``, the path the sweep and the demo take too, so their
numbers agree.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Optional

from basicsr.utils import get_root_logger
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from esrgan_plugin import fileio
from esrgan_plugin.metrics import evaluation, results_page, scoring


@dataclass
class ValidationRecord:
    """What validation keeps from one call to the next (a model holds one).

    ``best``: dataset -> metric -> ``{'better', 'val', 'iter'}``, the best mean so far (basicsr's
    ``best_metric_results`` layout); ``tested_sets``: the sets tested so far, which the results page shows.
    """
    best: dict = field(default_factory=dict)
    tested_sets: list = field(default_factory=list)  # results_page.DatasetResult

    def start_tracking(self, dataset_name: str, metric_opts: dict) -> None:
        """Best values of a dataset seen for the first time: the worst possible, in each metric's direction
        (``scoring.directions``: its own, unless the option's ``better`` overrides it)."""
        if dataset_name in self.best:
            return
        self.best[dataset_name] = {
            name: dict(better=way, val=float('-inf') if way == 'higher' else float('inf'), iter=-1)
            for name, way in scoring.directions(metric_opts).items()}

    def update_best(self, dataset_name: str, name: str, value: float, current_iter: Any) -> None:
        """As basicsr's ``_update_best_metric_result``: a tie with the best so far moves it to this iteration."""
        best = self.best[dataset_name][name]
        if (value >= best['val']) if best['better'] == 'higher' else (value <= best['val']):
            best['val'], best['iter'] = value, current_iter


def validate(upscale: evaluation.Upscaler, dataloader, opt: dict, current_iter: Any, tb_logger, save_img: bool,
             record: ValidationRecord) -> Optional[dict]:
    """Run ``upscale`` over ``dataloader``'s pairs; log, save and report as the module docstring says.

    ``opt``: the run's options (``val``, ``path``, ``is_train``, ``scale``, ``name`` are read). Returns the
    means of the set's metrics, or None when there are no metrics or no images.
    """
    dataset_name = dataloader.dataset.opt['name']
    metric_opts = opt['val'].get('metrics') or {}
    better_by_name = scoring.directions(metric_opts)
    logger = get_root_logger()
    if metric_opts:
        record.start_tracking(dataset_name, metric_opts)
    testing = not opt['is_train']
    tested = results_page.DatasetResult(dataset_name, int(opt['scale']), better_by_name)
    bar = tqdm(total=len(dataloader), unit='image', desc=dataset_name, disable=not opt['val'].get('pbar', testing))
    with logging_redirect_tqdm(loggers=[logger]), bar:  # log lines print above the bar
        for result in evaluation.evaluate_pairs(upscale, dataloader, metric_opts):
            sr_path = sr_image_path(opt, dataset_name, result.name, current_iter) if save_img else None
            if sr_path:
                fileio.save_image(result.sr, sr_path)
            if result.values:
                logger.info(f'{dataset_name} {result.name}: {scoring.describe(result.values, better_by_name)}')
            tested.images.append(results_page.image_result(result.name, result.item, sr_path, result.values))
            bar.update(1)
    means = None
    if metric_opts and tested.images:
        means = tested.means()
        for name, value in means.items():
            record.update_best(dataset_name, name, value, current_iter)
        _log_means(means, record.best[dataset_name], dataset_name, current_iter, tb_logger)
    if testing:
        _report_test_results(opt, record, tested, save_img)
    return means


def _log_means(means: dict, best: dict, dataset_name: str, current_iter: Any, tb_logger) -> None:
    """basicsr's mean block ('# psnr: 24.1234 ... Best: ... @ iter'), with the better direction of each."""
    lines = [f'Validation {dataset_name}']
    for name, value in means.items():
        lines.append(f'\t # {name}: {value:.4f} ({best[name]["better"]} is better)\tBest: {best[name]["val"]:.4f} @ '
                     f'{best[name]["iter"]} iter')
    get_root_logger().info('\n'.join(lines) + '\n')
    if tb_logger:
        for name, value in means.items():
            tb_logger.add_scalar(f'metrics/{dataset_name}/{name}', value, current_iter)


def _report_test_results(opt: dict, record: ValidationRecord, tested: results_page.DatasetResult,
                         save_img: bool) -> None:
    """After a test set: rewrite index.html with every set tested so far, and log the table of their means."""
    record.tested_sets = [t for t in record.tested_sets if t.name != tested.name] + [tested]
    logger = get_root_logger()
    if save_img and tested.images:
        index = results_page.write(opt['path']['results_root'], record.tested_sets)
        logger.info(f'Results page: {index}')
    else:
        logger.info('No results page: val.save_img is off, so there are no SR images to show.')
    better_by_name = {}
    for t in record.tested_sets:
        better_by_name.update(t.better)
    if better_by_name:
        rows = [(t.name, t.means()) for t in record.tested_sets]
        logger.info('Mean of each metric:\n' + scoring.summary_table(rows, better_by_name))


def sr_image_path(opt: dict, dataset_name: str, img_name: str, current_iter: Any) -> str:
    """Where an SR image is saved: per image and iteration when training, per test set when testing."""
    vis = opt['path']['visualization']
    if opt['is_train']:
        return os.path.join(vis, img_name, f'{img_name}_{current_iter}.png')
    suffix = opt['val'].get('suffix') or opt['name']
    return os.path.join(vis, dataset_name, f'{img_name}_{suffix}.png')
