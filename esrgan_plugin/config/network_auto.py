"""``network_g`` for evaluation, read off the checkpoint.

``infer`` and ``export`` read the generator's architecture from the file; the
test command does the same: when the option file has no ``network_g`` (or
``network_g: {type: auto}``), the generator is built with the architecture of
``path.pretrain_network_g``. A ``network_g`` that is given must agree with the
file; a disagreement stops the run with one line, before basicsr creates any
folder (``config.loading`` calls it with every other check).
"""
from __future__ import annotations

import copy
import inspect
import os
from typing import Optional

from esrgan_plugin.archs.checkpoint import infer_arch_params, load_generator_state
from esrgan_plugin.errors import UserFacingError
from esrgan_plugin.archs.rrdbnet_arch import ESRGANRRDBNet

AUTO = 'auto'
GENERATOR_TYPE = 'ESRGANRRDBNet'


def _described(params: dict) -> str:
    return f'{GENERATOR_TYPE}(' + ', '.join(f'{k}={v}' for k, v in params.items()) + ')'


def checkpoint_architecture(opt: dict, source: str) -> tuple[str, dict]:
    """The checkpoint's path and the ``ESRGANRRDBNet`` arguments read off its tensors."""
    path = (opt.get('path') or {}).get('pretrain_network_g')
    if not path:
        raise UserFacingError(f'{source}: path.pretrain_network_g is not set; the test needs a generator '
                              'checkpoint there (its architecture is read from the file).')
    path = os.path.expanduser(path)
    state = load_generator_state(path, (opt.get('path') or {}).get('param_key_g'))
    return path, infer_arch_params(state)


def _disagreement(given: dict, found: dict) -> Optional[tuple]:
    """The first (key, value in network_g) where ``given`` differs from the checkpoint's ``found`` arguments."""
    stated = {k: v for k, v in given.items() if k != 'type'}
    if given.get('type') == GENERATOR_TYPE:  # what the constructor will build, its defaults included
        defaults = {name: p.default for name, p in inspect.signature(ESRGANRRDBNet).parameters.items()}
        stated = {**defaults, **stated}
    return next(((key, stated[key]) for key, value in found.items() if key in stated and stated[key] != value), None)


def check_training_generator(opt: dict, source: str) -> None:
    """Training from ``path.pretrain_network_g`` (e.g. fine-tuning released weights): the file must be a generator
    in a layout that loads, with ``network_g``'s architecture. Checked before basicsr creates any folder; the model
    loads it again (``models.pretrained_weights``).

    Raises:
        UserFacingError: one line naming the file and what to change.
    """
    given, paths = opt.get('network_g') or {}, opt.get('path') or {}
    if not paths.get('pretrain_network_g') or paths.get('resume_state') or given.get('type') != GENERATOR_TYPE:
        return  # nothing to load, the run's own files (resume), or another class: the model's loader names problems
    path, found = checkpoint_architecture(opt, source)
    disagreement = _disagreement(given, found)
    if disagreement:
        key, stated = disagreement
        raise UserFacingError(f'{source}: network_g.{key} is {stated} but path.pretrain_network_g {path} has {key} '
                              f'{found[key]} ({_described(found)}); set network_g to the checkpoint\'s architecture '
                              'or start from a checkpoint of this one.')


def resolve_network_g(opt: dict, source: str) -> tuple[dict, Optional[str]]:
    """``opt`` with ``network_g`` filled in from the checkpoint when absent or ``type: auto``.

    Returns the (new) option dict and a sentence saying what was read from the file, or None when ``network_g``
    was given; ``opt`` itself is never changed.

    Raises:
        UserFacingError: no checkpoint; an unreadable one; a given ``network_g`` or ``scale`` that disagrees with it.
    """
    given = opt.get('network_g') or {}
    if given and given.get('type') not in (AUTO, GENERATOR_TYPE):
        return opt, None  # another generator class: its options are the user's business
    path, found = checkpoint_architecture(opt, source)
    disagreement = _disagreement(given, found)
    if disagreement:
        key, stated = disagreement
        raise UserFacingError(
            f'{source}: network_g.{key} is {stated} but the checkpoint {path} has {key} {found[key]} '
            f'({_described(found)}); remove network_g, and the test reads the architecture from the file, '
            'or correct it.')
    if opt.get('scale') is not None and opt['scale'] != found['scale']:
        raise UserFacingError(f'{source}: scale is {opt["scale"]} but the checkpoint {path} is an x{found["scale"]} '
                              f'generator; set scale: {found["scale"]} or use an x{opt["scale"]} checkpoint.')
    if given.get('type') == GENERATOR_TYPE:
        return opt, None
    resolved = copy.deepcopy(opt)
    resolved['network_g'] = {'type': GENERATOR_TYPE, **found}
    return resolved, f'network_g read from {path}: {_described(found)}'
