"""Reading an option file as the train and test commands see it: YAML, then the ``--force_yml`` overrides.

Two rules differ from plain PyYAML, and basicsr reads files and overrides with
the same rules (``compat`` installs them into ``basicsr.utils.options``), so the
dict that is validated is the dict that trains:

* **floats as people write them.** PyYAML implements YAML 1.1, whose float needs a
  dot and a signed exponent, so ``lr: 2e-4`` is the *string* ``'2e-4'`` and training
  fails deep inside torch. We add YAML 1.2's float syntax (``2e-4``, ``1e5``, ``5E+3``);
  ``!!float 2e-4`` keeps working, and nothing that YAML 1.1 reads as an int, bool or
  null changes.
* **an override value means what it means in the file.** ``--force_yml
  train:optim_g:lr=2e-4`` is read with the same YAML rules as ``lr: 2e-4``
  (basicsr's own parser keeps ``2e-4`` and ``-1`` as strings and ``eval``s lists).
  ``none`` in any case stays ``None``, as in basicsr.

Only PyYAML here, so the module is cheap to import.
"""
from __future__ import annotations

import copy
import re
from typing import Any, Iterable, NamedTuple

import yaml

# YAML 1.2 core-schema floats that YAML 1.1 misses: an exponent without a dot or without a sign.
YAML12_FLOAT = re.compile(r'^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$')
_FLOAT_TAG = 'tag:yaml.org,2002:float'
_with_floats_cache: dict = {}


def with_yaml12_floats(loader: type) -> type:
    """A subclass of the PyYAML loader ``loader`` that also reads YAML 1.2 floats (cached per loader).

    PyYAML copies the resolver table on a subclass's first ``add_implicit_resolver``,
    so ``loader`` itself is unchanged. Works for the C loaders too: they resolve tags
    through the same Python table.
    """
    if loader not in _with_floats_cache:
        subclass = type(f'{loader.__name__}WithYaml12Floats', (loader,), {})
        subclass.add_implicit_resolver(_FLOAT_TAG, YAML12_FLOAT, list('-+0123456789.'))
        _with_floats_cache[loader] = subclass
    return _with_floats_cache[loader]


OptionLoader = with_yaml12_floats(yaml.SafeLoader)


def load_yaml(text: str) -> Any:
    """Parse option-file YAML (raises ``yaml.YAMLError``)."""
    return yaml.load(text, Loader=OptionLoader)


def parse_override_value(text: str) -> Any:
    """The value of a ``--force_yml KEY=VALUE`` entry, read as it would be in the file."""
    text = text.strip()
    if text.lower() == 'none':  # basicsr's spelling of null on the command line
        return None
    try:
        return load_yaml(text)
    except yaml.YAMLError:
        return text  # e.g. an unbalanced bracket: basicsr keeps such text as a string too


class Override(NamedTuple):
    keys: tuple  # the option's key path, e.g. ('train', 'ema_decay')
    value: Any


class OverrideError(ValueError):
    """A ``--force_yml`` entry that cannot be applied; the message says what to do."""


def parse_override(entry: str) -> Override:
    """``'train:ema_decay=0.999'`` -> ``Override(('train', 'ema_decay'), 0.999)``, as basicsr splits it."""
    if entry.count('=') != 1:  # basicsr splits on every '=' and fails otherwise
        raise OverrideError(f'--force_yml {entry}: expected KEY=VALUE with one "=", e.g. train:ema_decay=0.999')
    keys, value = entry.split('=')
    keys = tuple(keys.strip().split(':'))
    if not all(keys):
        raise OverrideError(f'--force_yml {entry}: empty key; nested keys are joined by ":", e.g. '
                            'train:optim_g:lr=1e-4')
    return Override(keys, parse_override_value(value))


def apply_overrides(opt: dict, entries: Iterable[str]) -> tuple[dict, list[tuple], list[str]]:
    """A copy of ``opt`` with ``--force_yml`` entries applied as basicsr applies them.

    As in basicsr, every key but the last must exist (the last may be new: a typo
    there becomes an unknown option for the schema to report). Returns the new dict,
    the key paths that were set, and one message per entry that could not be applied.
    """
    opt = copy.deepcopy(opt)
    applied, problems = [], []
    for entry in entries:
        try:
            override = parse_override(entry)
        except OverrideError as err:
            problems.append(str(err))
            continue
        node = opt
        for depth, key in enumerate(override.keys[:-1]):
            if not isinstance(node, dict) or key not in node or not isinstance(node[key], dict):
                where = ':'.join(override.keys[:depth + 1])
                problems.append(f'--force_yml {entry}: {where} is not a section of the option file; '
                                'add the section to the file or fix the key')
                break
            node = node[key]
        else:
            node[override.keys[-1]] = override.value
            applied.append(override.keys)
    return opt, applied, problems
