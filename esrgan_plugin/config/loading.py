"""Options read once: the file, the ``--force_yml`` overrides, every check, the network read off a checkpoint.

``load_options`` is the one place a command's options come from. It reports every problem together:

* the option problems (``config.checks``: the schema, what one field says about another, data folders and
  checkpoints that must exist), one line each as ``<file>: <dotted key>: <what>; <what to do>``;
* what the components need before anything is written: the VGG19 weights of the perceptual loss, a
  precision the device can run (fp16 needs CUDA), the LPIPS weights, intact LMDBs of one preparation run;
* for the test command, ``network_g`` read off ``path.pretrain_network_g``; for training, that checkpoint checked
  against ``network_g`` (``config.network_auto``).

The dict it returns is what the run uses: the launcher adds its keys (``training.launch``) and basicsr's
models, datasets and loggers receive it as it is; nothing reads the file or applies the overrides again.
"""
from __future__ import annotations

import os
from typing import Callable, Iterable, NamedTuple, Optional

from esrgan_plugin.config.checks import read_options
from esrgan_plugin.errors import UserFacingError, one_line


class LoadedOptions(NamedTuple):
    opt: Optional[dict]  # None when the file could not be read as options
    option_errors: list  # '<file>: <key>: ...' lines: the file says something the run cannot do (exit code 2)
    component_errors: list  # what a component is missing (weights, intact data): one sentence each (exit code 1)
    warnings: list  # valid but probably unintended; the run goes on
    notes: list  # what was read or decided for the user, e.g. the architecture read off the checkpoint

    @property
    def ok(self) -> bool:
        return self.opt is not None and not self.option_errors and not self.component_errors


def _perceptual_weights(opt: dict) -> None:
    from esrgan_plugin.losses.perceptual_loss import check_vgg19_available
    check_vgg19_available((opt.get('train') or {}).get('perceptual_opt'))


def _precision(opt: dict) -> None:
    from esrgan_plugin.training.precision import check_options, planned_device_type
    check_options(opt, planned_device_type(opt))


def _metric_weights(opt: dict) -> None:
    from esrgan_plugin.metrics.scoring import check_weights_available
    check_weights_available((opt.get('val') or {}).get('metrics'))


def _lmdb_data(opt: dict) -> None:
    """LMDBs, whichever dataset type reads them: truncation, and GT and LQ from different preparation runs."""
    from esrgan_plugin.data.lmdb_check import check_lmdb_pair
    for dataset in (opt.get('datasets') or {}).values():
        backend = dataset.get('io_backend')
        if isinstance(backend, dict) and backend.get('type') == 'lmdb':
            gt, lq = (os.path.expanduser(dataset[key]) if dataset.get(key) else None
                      for key in ('dataroot_gt', 'dataroot_lq'))
            check_lmdb_pair(gt, lq)


# What the components need, in the order they are reported. Each raises a UserFacingError.
COMPONENT_CHECKS: tuple[Callable[[dict], None], ...] = (_perceptual_weights, _precision, _metric_weights, _lmdb_data)


def load_options(path: str, overrides: Iterable[str] = (), is_train: bool = True, pretrained: bool = True,
                 check_files: bool = True, resolve_network: bool = True) -> LoadedOptions:
    """The options a command runs with, and everything wrong with them.

    ``pretrained``: the checkpoints of ``path.pretrain_network_*`` must exist (not on ``--auto_resume``, which
    loads the experiment's own). ``check_files``: also check the data folders, checkpoints, weights and LMDBs on
    disk. ``resolve_network``: for testing, read ``network_g`` off the checkpoint where the file leaves it out.
    """
    opt, report = read_options(path, overrides, is_train, check_files=check_files, pretrained=pretrained)
    if opt is None:
        return LoadedOptions(None, report.errors, [], report.warnings, [])
    component_errors, notes = [], []
    checks = COMPONENT_CHECKS if check_files else (_precision,)
    for check in checks:
        try:
            check(opt)
        except UserFacingError as err:
            component_errors.append(one_line(err))
        except Exception:  # noqa: BLE001  a malformed section the option report already names
            if not report.errors:
                raise
    if is_train and pretrained and check_files and not report.errors and not component_errors:
        from esrgan_plugin.config.network_auto import check_training_generator
        try:  # the generator a run starts from (e.g. released weights) fits network_g
            check_training_generator(opt, path)
        except UserFacingError as err:
            component_errors.append(one_line(err))
    if not is_train and resolve_network and not report.errors and not component_errors:
        from esrgan_plugin.config.network_auto import resolve_network_g
        try:
            opt, note = resolve_network_g(opt, path)
        except UserFacingError as err:
            component_errors.append(one_line(err))
        else:
            notes += [note] if note else []
    return LoadedOptions(opt, report.errors, component_errors, report.warnings, notes)
