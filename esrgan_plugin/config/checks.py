"""The check of an option file before anything runs: the schema (``config.schema_errors``), then what one field
says about another (``config.cross_field_rules``), the keys the launcher sets, files that must exist.

Every problem is one line, ``<file>: <dotted key>: <what is wrong>; <what to do>``,
and all of them are reported together. The check reads the dict; it never changes it.
"""
from __future__ import annotations

import copy
import os
from typing import Iterable, NamedTuple, Optional

import yaml

from esrgan_plugin.config.cross_field_rules import cross_field_problems, missing_files, unchecked_sections
from esrgan_plugin.config.option_file import apply_overrides, load_yaml
from esrgan_plugin.config.problems import EXAMPLE, Problem, get, mapping, shown, warning
from esrgan_plugin.config.schema_errors import schema_problems
from esrgan_plugin.training.launch import dataset_phase, experiment_folders


class Report(NamedTuple):
    errors: list
    warnings: list


# ----------------------------------------------------------------------------- reading
def read_options(path: str, overrides: Iterable[str] = (), is_train: bool = True,
                 check_files: bool = True, pretrained: bool = True) -> tuple[Optional[dict], Report]:
    """The option dict the command will run with (file, then overrides) and what is wrong with it."""
    if not os.path.isfile(path):
        return None, Report([f'{path}: option file does not exist; pass the path of a YAML file such as '
                             f'{EXAMPLE[is_train]}'], [])
    try:
        with open(path, encoding='utf-8') as f:
            opt = load_yaml(f.read())
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        return None, Report([f'{path}: not valid YAML ({str(err).splitlines()[0]}); fix the syntax'], [])
    if not isinstance(opt, dict):
        return None, Report([f'{path}: does not hold a mapping of options; see {EXAMPLE[is_train]}'], [])
    opt, overridden, override_problems = apply_overrides(opt, overrides or ())
    report = check_options(opt, path, is_train, overridden, check_files, pretrained)
    return opt, Report([f'{path}: {p}' for p in override_problems] + report.errors, report.warnings)


def check_options(opt: dict, file: str, is_train: bool, overridden: Iterable[tuple] = (),
                  check_files: bool = True, pretrained: bool = True, root: Optional[str] = None) -> Report:
    """Errors and warnings, one line each, for an option dict read from ``file``.

    ``check_files``: also check that data folders and (``pretrained``) checkpoints exist. ``root``: the folder
    the run writes ``experiments/``/``results/`` under (the current directory when None).
    """
    validated, problems = without_launcher_keys(opt, is_train, root)
    problems += schema_problems(validated, EXAMPLE[is_train]) + cross_field_problems(opt, is_train)
    if check_files:
        problems += missing_files(opt, pretrained)
    problems += [warning(keys, message) for keys, message in unchecked_sections(opt)]
    overridden = [tuple(keys) for keys in overridden]
    lines, seen = {'error': [], 'warning': []}, set()
    for problem in problems:
        key = '.'.join(str(k) for k in problem.keys)
        forced = any(problem.keys[:len(o)] == o for o in overridden)
        line = f'{file}: {key}{" (set by --force_yml)" if forced else ""}: {problem.message}'
        if line not in seen:
            seen.add(line)
            lines[problem.severity].append(line)
    return Report(lines['error'], lines['warning'])


# ----------------------------------------------------------------------------- keys the launcher sets
def launcher_values(opt: dict, is_train: bool, root: Optional[str] = None) -> dict:
    """The values basicsr's ``parse_options`` gives the keys it sets itself, by key path, where they are known
    before the launch (``dist``, ``rank`` and ``world_size`` are not: they depend on the launcher)."""
    root = os.path.abspath(root or os.getcwd())
    values: dict = {('is_train',): is_train, ('root_path',): root}
    for phase in mapping(opt, 'datasets'):
        values[('datasets', phase, 'phase')] = dataset_phase(phase)
        if 'scale' in opt:
            values[('datasets', phase, 'scale')] = opt['scale']
    name = opt.get('name')
    if isinstance(name, str):
        folders = experiment_folders(root, name, is_train)
        values.update({('path', key): value for key, value in folders.items()})
    return values


def without_launcher_keys(opt: dict, is_train: bool, root: Optional[str] = None) -> tuple[dict, list]:
    """A copy of ``opt`` for the schema without the launcher's keys that are given, and a problem for each.

    A copied log dump carries them: with the value the launcher sets anyway the key is harmless (a warning);
    with another value the file says something the run will not do (an error). Keys whose launch value is not
    known here are left in, for the schema to refuse.
    """
    given = [(keys, value) for keys, value in launcher_values(opt, is_train, root).items()
             if isinstance(get(opt, *keys[:-1]), dict) and keys[-1] in get(opt, *keys[:-1])]
    if not given:
        return opt, []
    validated, problems = copy.deepcopy(opt), []
    for keys, value in given:
        written = get(opt, *keys)
        del get(validated, *keys[:-1])[keys[-1]]
        if written == value:
            problems.append(warning(keys, f'is set by the launcher to {shown(value)} anyway; remove it'))
        else:
            problems.append(Problem(keys, f'is set by the launcher to {shown(value)}, not {shown(written)}; '
                                    'remove it'))
    return validated, problems

