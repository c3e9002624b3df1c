"""The check of an option file before anything runs: the schema, then what one field says about another.

Every problem is one line, ``<file>: <dotted key>: <what is wrong>; <what to do>``,
and all of them are reported together. The check reads the dict; it never changes it.
"""
from __future__ import annotations

import copy
import inspect
import os
from typing import Any, Iterable, NamedTuple, Optional

import yaml
from pydantic import ValidationError

from esrgan_plugin.config import schema
from esrgan_plugin.config.registered_sections import is_ours_or_basicsrs, registered
from esrgan_plugin.config.sections import DATASET_SECTIONS, UnknownOption, suggestion
from esrgan_plugin.config.option_file import apply_overrides, load_yaml

GAN_MODELS = ('ESRGANRaGANModel', 'SRGANModel', 'ESRGANModel')
# Keys a train-phase dataset must have: basicsr's loader reads the first two, the datasets the rest (by type).
TRAIN_PHASE_KEYS = {None: ('batch_size_per_gpu', 'num_worker_per_gpu'),
                    'DIV2KPairedDataset': ('batch_size_per_gpu', 'num_worker_per_gpu', 'gt_size'),
                    'PairedImageDataset': ('batch_size_per_gpu', 'num_worker_per_gpu', 'gt_size', 'use_hflip',
                                           'use_rot')}
SECTIONS = {'datasets', 'network_g', 'network_d', 'path', 'train', 'val', 'logger', 'dist_params', 'io_backend',
            'optim_g', 'optim_d', 'scheduler', 'metrics', 'wandb'}
EXAMPLE = {True: 'options/train_RRDBNet_PSNR_x4.yml', False: 'options/test_set14.yml'}
VALUE_KINDS = {
    'int_type': 'a whole number', 'float_type': 'a number', 'bool_type': 'true or false', 'string_type': 'text',
    'list_type': 'a list such as [0.9, 0.99]', 'dict_type': 'a mapping of options',
    'model_type': 'a mapping of options', 'model_attributes_type': 'a mapping of options',
}


class Report(NamedTuple):
    errors: list
    warnings: list


class Problem(NamedTuple):
    keys: tuple  # where, in the option dict
    message: str  # what is wrong; what to do
    # 'error': the run would break, or do something other than what the file says; it is refused.
    # 'warning': valid but probably unintended (a setting the run never reaches); one line, and the run goes on.
    severity: str = 'error'


def warning(keys: tuple, message: str) -> Problem:
    return Problem(keys, message, 'warning')


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
    for phase in _mapping(opt, 'datasets'):
        values[('datasets', phase, 'phase')] = str(phase).split('_')[0]
        if 'scale' in opt:
            values[('datasets', phase, 'scale')] = opt['scale']
    name = opt.get('name')
    if isinstance(name, str):
        if is_train:
            experiment = os.path.join(root, 'experiments', name)
            folders = {'experiments_root': experiment, 'models': os.path.join(experiment, 'models'),
                       'training_states': os.path.join(experiment, 'training_states'), 'log': experiment,
                       'visualization': os.path.join(experiment, 'visualization')}
        else:
            results = os.path.join(root, 'results', name)
            folders = {'results_root': results, 'log': results, 'visualization': os.path.join(results, 'visualization')}
        values.update({('path', key): value for key, value in folders.items()})
    return values


def without_launcher_keys(opt: dict, is_train: bool, root: Optional[str] = None) -> tuple[dict, list]:
    """A copy of ``opt`` for the schema without the launcher's keys that are given, and a problem for each.

    A copied log dump carries them: with the value the launcher sets anyway the key is harmless (a warning);
    with another value the file says something the run will not do (an error). Keys whose launch value is not
    known here are left in, for the schema to refuse.
    """
    given = [(keys, value) for keys, value in launcher_values(opt, is_train, root).items()
             if isinstance(_get(opt, *keys[:-1]), dict) and keys[-1] in _get(opt, *keys[:-1])]
    if not given:
        return opt, []
    validated, problems = copy.deepcopy(opt), []
    for keys, value in given:
        written = _get(opt, *keys)
        del _get(validated, *keys[:-1])[keys[-1]]
        if written == value:
            problems.append(warning(keys, f'is set by the launcher to {_shown(value)} anyway; remove it'))
        else:
            problems.append(Problem(keys, f'is set by the launcher to {_shown(value)}, not {_shown(written)}; '
                                    'remove it'))
    return validated, problems


# ----------------------------------------------------------------------------- the schema
def schema_problems(opt: dict, example: str = EXAMPLE[True]) -> list:
    """What the schema finds wrong; ``example`` is the shipped file that missing options point to."""
    try:
        schema.options_model().model_validate(opt)
    except ValidationError as err:
        return [describe(error, opt, example) for error in err.errors()]
    return []


def _keys_in_data(opt: dict, loc: tuple) -> tuple:
    """pydantic's location without the union tags it inserts (``network_g.ESRGANRRDBNet.num_block``)."""
    keys, node = [], opt
    for i, part in enumerate(loc):
        if isinstance(node, dict) and part in node:
            keys.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int):
            keys.append(part)
            node = node[part] if part < len(node) else None
        elif i == len(loc) - 1:  # a missing key
            keys.append(part)
    return tuple(keys)


def _shown(value: Any) -> str:
    """A value as the user wrote it in YAML, saying when it was read as text."""
    if isinstance(value, str):
        return f'{value!r} (text)'
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value)


def describe(error: dict, opt: dict, example: str = EXAMPLE[True]) -> Problem:
    """One pydantic error as what is wrong and what to do."""
    kind, value, ctx = error['type'], error.get('input'), error.get('ctx') or {}
    keys = _keys_in_data(opt, error['loc'])
    if kind == 'extra_forbidden':
        hint = value.hint if isinstance(value, UnknownOption) else 'unknown option; remove it'
        return Problem(keys, hint)
    if kind == 'missing':
        what = 'section' if keys and keys[-1] in SECTIONS else 'option'
        return Problem(keys, f'required {what} is missing; add it (see {example})')
    if kind == 'unknown_type':
        category, *choices = error['msg'].split('|')
        return Problem(keys + ('type',) if isinstance(value, dict) else keys,
                       _unknown_type(category, choices, value, example))
    if kind == 'literal_error':
        choices = [c.strip().strip("'") for c in ctx.get('expected', '').replace(' or ', ', ').split(', ')]
        close = suggestion(value, choices) if isinstance(value, str) else None
        advice = f'did you mean {close}? (allowed: {", ".join(choices)})' if close else \
            f'use one of: {", ".join(choices)}'
        return Problem(keys, f'{_shown(value)} is not allowed; {advice}')
    if kind in VALUE_KINDS:
        as_text = {'int_type': 'write a whole number without quotes, e.g. 16',
                   'float_type': 'write a number without quotes, e.g. 2e-4',
                   'bool_type': 'write true or false without quotes'}
        advice = as_text.get(kind, 'fix the value') if isinstance(value, str) else 'fix the value'
        return Problem(keys, f'expected {VALUE_KINDS[kind]}, got {_shown(value)}; {advice}')
    bounds = {'greater_than_equal': ('>=', 'ge'), 'greater_than': ('>', 'gt'), 'less_than': ('<', 'lt'),
              'less_than_equal': ('<=', 'le')}
    if kind in bounds:
        sign, name = bounds[kind]
        return Problem(keys, f'must be {sign} {ctx.get(name)}, got {_shown(value)}; change the value')
    if kind == 'too_short':
        return Problem(keys, 'is empty; add at least one entry')
    return Problem(keys, f'{error["msg"]}; fix the value')


def _unknown_type(category: str, choices: list, value: Any, example: str) -> str:
    listed = ', '.join(choices) if len(choices) <= 12 else f"the names in basicsr's {category} registry"
    if not isinstance(value, dict):
        return f'expected a mapping with a type key, got {_shown(value)}; see {example}'
    if 'type' not in value:
        return f'required option is missing; set the {category} type, one of: {listed}'
    close = suggestion(value['type'], choices)
    advice = f'did you mean {close}?' if close else f'use one of: {listed} (or register your own class)'
    return f'unknown {category} type {_shown(value["type"])}; {advice}'


# ----------------------------------------------------------------------------- one field against another
def _get(opt: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(opt, dict):
            return None
        opt = opt.get(key)
    return opt


def _mapping(opt: Any, *keys: str) -> dict:
    """The section at ``keys``, or {} when it is missing or not a mapping (the schema reports that)."""
    section = _get(opt, *keys)
    return section if isinstance(section, dict) else {}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _arch_default(section: dict, keyword: str) -> Any:
    """``section[keyword]``, or the registered class's default for it when the file leaves it out."""
    if keyword in section:
        return section[keyword]
    from basicsr.utils.registry import ARCH_REGISTRY
    arch = registered(ARCH_REGISTRY).get(section.get('type'))
    if arch is None:
        return None
    parameter = inspect.signature(arch).parameters.get(keyword)
    return None if parameter is None or parameter.default is parameter.empty else parameter.default


def cross_field_problems(opt: dict, is_train: bool) -> list:
    """What one option says about another, and the sections a command needs."""
    problems = _needed_for_training(opt) if is_train else _needed_for_testing(opt)
    return problems + _sizes(opt, is_train) + _schedule(opt) + _devices(opt) + _accumulation(opt)


def _needed_for_training(opt: dict) -> list:
    problems, datasets = [], _mapping(opt, 'datasets')
    for section in ('train', 'logger'):
        if section not in opt:
            problems.append(Problem((section,), f'required section is missing; add it (see {EXAMPLE[True]})'))
    if opt.get('network_g') is None or _get(opt, 'network_g', 'type') == 'auto':
        problems.append(Problem(('network_g',), "training needs the generator's architecture; add network_g with "
                                'its type'))
    if datasets and 'train' not in datasets:
        problems.append(Problem(('datasets', 'train'), 'a training file needs a dataset named train; add it'))
    for phase in datasets:  # basicsr's launcher: exactly "train", or val, val_1, val_set14, ...
        if phase != 'train' and str(phase).split('_')[0] != 'val':
            problems.append(Problem(('datasets', phase), 'in a training file a dataset is named train, val or '
                                    'val_<anything>; rename it'))
    train_set = datasets.get('train')
    if isinstance(train_set, dict):
        for key in TRAIN_PHASE_KEYS.get(train_set.get('type'), TRAIN_PHASE_KEYS[None]):
            if key not in train_set:
                problems.append(Problem(('datasets', 'train', key), 'required option of the train dataset is '
                                        'missing; add it'))
    if isinstance(opt.get('val'), dict) and 'val_freq' not in opt['val']:
        problems.append(Problem(('val', 'val_freq'), 'required option is missing when training; add it (e.g. 5000)'))
    if opt.get('model_type') in GAN_MODELS:
        for keys in (('network_d',), ('train', 'optim_d'), ('train', 'gan_opt')):
            if isinstance(_get(opt, *keys[:-1]), dict) and _get(opt, *keys) is None:
                problems.append(Problem(keys, f'{opt["model_type"]} trains a discriminator and needs this; add it '
                                        '(see options/train_ESRGAN_x4.yml)'))
    elif isinstance(opt.get('train'), dict) and not any(opt['train'].get(k) for k in ('pixel_opt', 'perceptual_opt')):
        problems.append(Problem(('train', 'pixel_opt'), 'no loss is set; add pixel_opt (e.g. {type: L1Loss}) or '
                                'perceptual_opt'))
    return problems


def _needed_for_testing(opt: dict) -> list:
    if 'val' in opt:
        return []
    return [Problem(('val',), f'required section is missing; add it with save_img and metrics (see {EXAMPLE[False]})')]


def _sizes(opt: dict, is_train: bool) -> list:
    """Patch sizes against the scale; the generator's scale and the discriminator's input size against the data."""
    problems, datasets = [], _mapping(opt, 'datasets')
    scale = opt.get('scale') if _is_number(opt.get('scale')) and opt['scale'] > 0 else None
    for phase, dataset in datasets.items():
        gt_size = _get(dataset, 'gt_size')
        if scale and _is_number(gt_size) and gt_size % scale:
            problems.append(Problem(('datasets', phase, 'gt_size'), f'{gt_size} is not a multiple of scale {scale}; '
                                    f'use e.g. {max(scale, gt_size // scale * scale)}'))
    network_g, network_d = _mapping(opt, 'network_g'), _mapping(opt, 'network_d')
    net_scale = _arch_default(network_g, 'scale')
    if scale and _is_number(net_scale) and net_scale != scale:
        where = '' if 'scale' in network_g else ' (its default)'
        problems.append(Problem(('network_g', 'scale'), f'{net_scale}{where} does not match scale {scale}, the scale '
                                'of the data; set both to the same value'))
    gt_size, input_size = _get(datasets, 'train', 'gt_size'), _arch_default(network_d, 'input_size')
    if is_train and _is_number(gt_size) and _is_number(input_size) and input_size != gt_size:
        where = '' if 'input_size' in network_d else ' (its default)'
        problems.append(Problem(('network_d', 'input_size'), f'{input_size}{where} does not match '
                                f'datasets.train.gt_size {gt_size}; the discriminator sees gt_size patches, set both '
                                'to the same value'))
    return problems


def _schedule(opt: dict) -> list:
    problems, keys = [], ('train', 'scheduler', 'milestones')
    milestones, total_iter = _get(opt, *keys), _get(opt, 'train', 'total_iter')
    if isinstance(milestones, list) and milestones and all(_is_number(m) for m in milestones):
        if any(b <= a for a, b in zip(milestones, milestones[1:])):
            problems.append(Problem(keys, f'{milestones} is not increasing; list the iterations in order'))
        if _is_number(total_iter) and max(milestones) >= total_iter:
            problems.append(warning(keys, f'{max(milestones)} is not below total_iter {total_iter}; the learning '
                                    'rate never changes there (lower it to use it)'))
    if not _is_number(total_iter):
        return problems
    ends = {('val', 'val_freq'): 'validation runs once, at the end',
            ('logger', 'save_checkpoint_freq'): 'the networks are saved once, at the end',
            ('logger', 'print_freq'): 'no loss is logged'}
    for keys, effect in ends.items():
        freq = _get(opt, *keys)
        if _is_number(freq) and freq > total_iter:
            problems.append(warning(keys, f'{freq:g} is past total_iter {total_iter:g}: {effect} (lower it to '
                                    'use it)'))
    return problems


def _accumulation(opt: dict) -> list:
    """``train.accumulate`` splits each process's batch into equal micro-batches, so it must divide it."""
    accumulate, batch = _get(opt, 'train', 'accumulate'), _get(opt, 'datasets', 'train', 'batch_size_per_gpu')
    if type(accumulate) is not int or type(batch) is not int or accumulate < 1 or batch < 1 or batch % accumulate == 0:
        return []
    divisors = [n for n in range(1, batch + 1) if batch % n == 0]
    return [Problem(('train', 'accumulate'), f'{accumulate} does not divide datasets.train.batch_size_per_gpu '
                    f'{batch} into equal micro-batches; use a divisor of it ({", ".join(map(str, divisors))}) or '
                    'change the batch size')]


def _devices(opt: dict) -> list:
    num_gpu = opt.get('num_gpu')
    if not _is_number(num_gpu) or num_gpu <= 0:
        return []
    import torch
    available = torch.cuda.device_count()
    if num_gpu <= available:
        return []
    where = 'no CUDA device is available here' if not available else f'only {available} CUDA device(s) here'
    return [Problem(('num_gpu',), f'{num_gpu} but {where}; set num_gpu: auto (all CUDA devices, the CPU without '
                    'CUDA)')]


def missing_files(opt: dict, pretrained: bool = True) -> list:
    """Data folders and (``pretrained``) checkpoints must exist; paths are relative to the current directory."""
    problems = []
    for phase, dataset in _mapping(opt, 'datasets').items():
        for key in ('dataroot_gt', 'dataroot_lq'):
            root = _get(dataset, key)
            if isinstance(root, str) and not os.path.exists(os.path.expanduser(root)):
                problems.append(Problem(('datasets', phase, key), f'{root} does not exist; prepare the data '
                                        '(docs/data.md#preparing-data) or fix the path'))
    for key, value in _mapping(opt, 'path').items():
        if pretrained and str(key).startswith('pretrain_network') and isinstance(value, str) \
                and not os.path.isfile(os.path.expanduser(value)):
            problems.append(Problem(('path', key), f'{value} does not exist; put the checkpoint there or fix the '
                                    'path'))
    return problems


# ----------------------------------------------------------------------------- what is passed on unchecked
def unchecked_sections(opt: dict) -> list[tuple[tuple, str]]:
    """(key path, message) for each section whose type is registered outside basicsr and the plugin."""
    from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY

    sections = [(('network_g',), ARCH_REGISTRY), (('network_d',), ARCH_REGISTRY)]
    sections += [(('train', key), LOSS_REGISTRY) for key in _mapping(opt, 'train') if str(key).endswith('_opt')]
    sections += [(('datasets', phase), DATASET_REGISTRY) for phase in _mapping(opt, 'datasets')]
    sections += [(('val', 'metrics', name), METRIC_REGISTRY) for name in _mapping(opt, 'val', 'metrics')]
    warnings = []
    for keys, registry in sections:
        kind = _get(opt, *keys, 'type')
        obj = registered(registry).get(kind) if isinstance(kind, str) else None
        if obj is None:
            continue
        if not is_ours_or_basicsrs(obj):
            warnings.append((keys, f'{kind} is registered by {obj.__module__}, not by basicsr or esrgan_plugin; '
                             'its options are passed to it unchecked'))
        elif registry is DATASET_REGISTRY and kind not in DATASET_SECTIONS:
            warnings.append((keys, f'the options {kind} reads itself are not checked (only '
                             f'{", ".join(DATASET_SECTIONS)} are)'))
    return warnings
