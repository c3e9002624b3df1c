"""What one option says about another, what a command needs, and what is passed on unchecked."""
from __future__ import annotations

import inspect
import os
from typing import Any

from esrgan_plugin.choices import REALWORLD_DEFAULTS, REALWORLD_QUEUE_SIZE
from esrgan_plugin.config.problems import EXAMPLE, Problem, get, is_number, mapping, warning
from esrgan_plugin.config.registered_sections import is_ours_or_basicsrs, registered
from esrgan_plugin.config.sections import DATASET_SECTIONS
from esrgan_plugin.training.launch import dataset_phase

GAN_MODELS = ('ESRGANRaGANModel', 'SRGANModel', 'ESRGANModel')
# The models whose generator step adds train.ldl_opt's term (basicsr's SRGANModel/ESRGANModel build it and never
# use it); each needs the EMA generator for it.
LDL_MODELS = ('ESRGANRaGANModel', 'RealESRGANModel')
# Discriminator classes whose input side must be a multiple of this: basicsr's U-Net halves it three times and adds
# the skip connections back after upsampling, which needs equal sizes. By class name: basicsr registers it as
# UNetDiscriminatorSN_basicsr, which its registry also finds as UNetDiscriminatorSN.
PATCH_MULTIPLE_OF_D = {'UNetDiscriminatorSN': 8}
# Keys a train-phase dataset must have: basicsr's loader reads the first two, the datasets the rest (by type).
TRAIN_PHASE_KEYS = {None: ('batch_size_per_gpu', 'num_worker_per_gpu'),
                    'DIV2KPairedDataset': ('batch_size_per_gpu', 'num_worker_per_gpu', 'gt_size'),
                    'GTOnlyDataset': ('batch_size_per_gpu', 'num_worker_per_gpu', 'gt_size'),
                    'PairedImageDataset': ('batch_size_per_gpu', 'num_worker_per_gpu', 'gt_size', 'use_hflip',
                                           'use_rot')}


def _arch(section: dict) -> Any:
    """The registered class ``section['type']`` names, or None."""
    from basicsr.utils.registry import ARCH_REGISTRY
    kind = section.get('type')
    return registered(ARCH_REGISTRY).get(kind) if isinstance(kind, str) else None


def _arch_default(section: dict, keyword: str) -> Any:
    """``section[keyword]``, or the registered class's default for it when the file leaves it out."""
    if keyword in section:
        return section[keyword]
    arch = _arch(section)
    if arch is None:
        return None
    parameter = inspect.signature(arch).parameters.get(keyword)
    return None if parameter is None or parameter.default is parameter.empty else parameter.default


def cross_field_problems(opt: dict, is_train: bool) -> list:
    """What one option says about another, and the sections a command needs."""
    problems = _needed_for_training(opt) + _prefetch(opt) if is_train else _needed_for_testing(opt)
    return (problems + _sizes(opt, is_train) + _schedule(opt) + _devices(opt) + _accumulation(opt) + _ldl(opt)
            + _degradations(opt))


def _needed_for_training(opt: dict) -> list:
    problems, datasets = [], mapping(opt, 'datasets')
    for section in ('train', 'logger'):
        if section not in opt:
            problems.append(Problem((section,), f'required section is missing; add it (see {EXAMPLE[True]})'))
    if opt.get('network_g') is None or get(opt, 'network_g', 'type') == 'auto':
        problems.append(Problem(('network_g',), "training needs the generator's architecture; add network_g with "
                                'its type'))
    if datasets and 'train' not in datasets:
        problems.append(Problem(('datasets', 'train'), 'a training file needs a dataset named train; add it'))
    for phase in datasets:  # basicsr's launcher: exactly "train", or val, val_1, val_set14, ...
        if phase != 'train' and dataset_phase(phase) != 'val':
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
            if isinstance(get(opt, *keys[:-1]), dict) and get(opt, *keys) is None:
                problems.append(Problem(keys, f'{opt["model_type"]} trains a discriminator and needs this; add it '
                                        '(see options/train_ESRGAN_x4.yml)'))
    # Every generator step here (and basicsr's SR models') needs a pixel or perceptual term; a GAN term alone is
    # not a loss the generator can start from.
    if isinstance(opt.get('train'), dict) and not any(opt['train'].get(k) for k in ('pixel_opt', 'perceptual_opt')):
        problems.append(Problem(('train', 'pixel_opt'), 'no loss is set; add pixel_opt (e.g. {type: L1Loss}) or '
                                'perceptual_opt'))
    return problems


def _needed_for_testing(opt: dict) -> list:
    if 'val' in opt:
        return []
    return [Problem(('val',), f'required section is missing; add it with save_img and metrics (see {EXAMPLE[False]})')]


def _sizes(opt: dict, is_train: bool) -> list:
    """Patch sizes against the scale; the generator's scale and the discriminator's input size against the data."""
    problems, datasets = [], mapping(opt, 'datasets')
    scale = opt.get('scale') if is_number(opt.get('scale')) and opt['scale'] > 0 else None
    for phase, dataset in datasets.items():
        gt_size = get(dataset, 'gt_size')
        if scale and is_number(gt_size) and gt_size % scale:
            problems.append(Problem(('datasets', phase, 'gt_size'), f'{gt_size} is not a multiple of scale {scale}; '
                                    f'use e.g. {max(scale, gt_size // scale * scale)}'))
    network_g, network_d = mapping(opt, 'network_g'), mapping(opt, 'network_d')
    net_scale = _arch_default(network_g, 'scale')
    if scale and is_number(net_scale) and net_scale != scale:
        where = '' if 'scale' in network_g else ' (its default)'
        problems.append(Problem(('network_g', 'scale'), f'{net_scale}{where} does not match scale {scale}, the scale '
                                'of the data; set both to the same value'))
    gt_size, input_size = get(datasets, 'train', 'gt_size'), _arch_default(network_d, 'input_size')
    if is_train and is_number(gt_size) and is_number(input_size) and input_size != gt_size:
        where = '' if 'input_size' in network_d else ' (its default)'
        problems.append(Problem(('network_d', 'input_size'), f'{input_size}{where} does not match '
                                f'datasets.train.gt_size {gt_size}; the discriminator sees gt_size patches, set both '
                                'to the same value'))
    multiple = PATCH_MULTIPLE_OF_D.get(getattr(_arch(network_d), '__name__', None))
    if is_train and multiple and is_number(gt_size) and gt_size % multiple:
        problems.append(Problem(('datasets', 'train', 'gt_size'), f'{gt_size} is not a multiple of {multiple}, which '
                                f'{network_d["type"]} needs (it halves its input three times); use e.g. '
                                f'{max(multiple, gt_size // multiple * multiple)}'))
    return problems


def _ldl(opt: dict) -> list:
    """LDL's artifact map compares the output with the EMA generator's, and only some models add the term."""
    if not get(opt, 'train', 'ldl_opt'):
        return []
    model_type = opt.get('model_type')
    if isinstance(model_type, str) and model_type not in LDL_MODELS:
        return [Problem(('train', 'ldl_opt'), f'{model_type} does not use it; remove it, or use ESRGANRaGANModel')]
    ema_decay = get(opt, 'train', 'ema_decay')
    if is_number(ema_decay) and ema_decay > 0:
        return []
    return [Problem(('train', 'ldl_opt'), "LDL compares the output with the EMA generator's, which train.ema_decay "
                    f'{ema_decay if ema_decay is not None else "(unset: 0)"} turns off; set train.ema_decay: 0.999')]


def _schedule(opt: dict) -> list:
    problems, keys = [], ('train', 'scheduler', 'milestones')
    milestones, total_iter = get(opt, *keys), get(opt, 'train', 'total_iter')
    if isinstance(milestones, list) and milestones and all(is_number(m) for m in milestones):
        if any(b <= a for a, b in zip(milestones, milestones[1:])):
            problems.append(Problem(keys, f'{milestones} is not increasing; list the iterations in order'))
        if is_number(total_iter) and max(milestones) >= total_iter:
            problems.append(warning(keys, f'{max(milestones)} is not below total_iter {total_iter}; the learning '
                                    'rate never changes there (lower it to use it)'))
    if not is_number(total_iter):
        return problems
    ends = {('val', 'val_freq'): 'validation runs once, at the end',
            ('logger', 'save_checkpoint_freq'): 'the networks are saved once, at the end',
            ('logger', 'print_freq'): 'no loss is logged'}
    for keys, effect in ends.items():
        freq = get(opt, *keys)
        if is_number(freq) and freq > total_iter:
            problems.append(warning(keys, f'{freq:g} is past total_iter {total_iter:g}: {effect} (lower it to '
                                    'use it)'))
    return problems


def _prefetch(opt: dict) -> list:
    """basicsr's CUDA prefetcher copies batches from pinned memory, so the training loader must pin it."""
    train_set = mapping(opt, 'datasets', 'train')
    if train_set.get('prefetch_mode') != 'cuda' or train_set.get('pin_memory') is True:
        return []
    return [Problem(('datasets', 'train', 'prefetch_mode'), "'cuda' needs datasets.train.pin_memory: true; set "
                    'pin_memory: true, or use prefetch_mode cpu or ~')]


def _accumulation(opt: dict) -> list:
    """``train.accumulate`` splits each process's batch into equal micro-batches, so it must divide it."""
    accumulate, batch = get(opt, 'train', 'accumulate'), get(opt, 'datasets', 'train', 'batch_size_per_gpu')
    if type(accumulate) is not int or type(batch) is not int or accumulate < 1 or batch < 1 or batch % accumulate == 0:
        return []
    divisors = [n for n in range(1, batch + 1) if batch % n == 0]
    return [Problem(('train', 'accumulate'), f'{accumulate} does not divide datasets.train.batch_size_per_gpu '
                    f'{batch} into equal micro-batches; use a divisor of it ({", ".join(map(str, divisors))}) or '
                    'change the batch size')]


def _devices(opt: dict) -> list:
    num_gpu = opt.get('num_gpu')
    if not is_number(num_gpu) or num_gpu <= 0:
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
    for phase, dataset in mapping(opt, 'datasets').items():
        for key in ('dataroot_gt', 'dataroot_lq'):
            root = get(dataset, key)
            if isinstance(root, str) and not os.path.exists(os.path.expanduser(root)):
                problems.append(Problem(('datasets', phase, key), f'{root} does not exist; prepare the data '
                                        '(docs/data.md#preparing-data) or fix the path'))
    for key, value in mapping(opt, 'path').items():
        if pretrained and str(key).startswith('pretrain_network') and isinstance(value, str) \
                and not os.path.isfile(os.path.expanduser(value)):
            problems.append(Problem(('path', key), f'{value} does not exist; put the checkpoint there or fix the '
                                    'path'))
    return problems


# ----------------------------------------------------------------------------- real-world degradations
# The settings of Real-ESRGAN's pipeline (data.realworld_degradation), named as its option files name them, by
# what a value must be. A ``2`` suffix is the second degradation's copy of a setting.
_SECOND = ('', '2')
DEGRADATION_PROBABILITIES = tuple(f'{k}{n}' for k in ('sinc_prob', 'gaussian_noise_prob', 'gray_noise_prob')
                                  for n in _SECOND) + ('final_sinc_prob', 'second_blur_prob')
DEGRADATION_CHOICES = ('kernel_prob', 'kernel_prob2', 'resize_prob', 'resize_prob2')  # one entry per choice
DEGRADATION_RANGES = tuple(f'{k}{n}' for k in ('blur_sigma', 'betag_range', 'betap_range', 'resize_range',
                                               'noise_range', 'poisson_scale_range', 'jpeg_range') for n in _SECOND)
DEGRADATION_KERNEL_SIZES = ('blur_kernel_size', 'blur_kernel_size2')
DEGRADATION_JPEG = ('jpeg_range', 'jpeg_range2')
# The choices' lists beside their probabilities (resize: up, down, keep).
_CHOICE_LISTS = {'kernel_prob': 'kernel_list', 'kernel_prob2': 'kernel_list2'}


def _degradations(opt: dict) -> list:
    """Real-world degradation settings of every dataset that makes its LR on the fly; only the train set may."""
    from esrgan_plugin.models.realworld_batches import makes_realworld_pairs
    problems = []
    for phase, dataset in mapping(opt, 'datasets').items():
        if not isinstance(dataset, dict) or not makes_realworld_pairs(dataset):
            continue
        if phase != 'train':
            problems.append(Problem(('datasets', phase, 'degradation'), 'realworld makes LR while training only; '
                                    'validate on a fixed degraded set (prepare_data --realworld-test, '
                                    'docs/data.md#a-fixed-real-world-test-set) with prepared LR'))
            continue
        problems += _degradation_values(dataset, ('datasets', phase)) + _degradation_sizes(opt, dataset)
        queue, batch = dataset.get('queue_size', REALWORLD_QUEUE_SIZE), dataset.get('batch_size_per_gpu')
        if type(queue) is int and type(batch) is int and batch > 0 and queue % batch:
            where = '' if 'queue_size' in dataset else ' (its default)'
            problems.append(Problem(('datasets', 'train', 'queue_size'), f'{queue}{where} is not a multiple of '
                                    f'batch_size_per_gpu {batch}; the pool swaps whole batches: set queue_size to '
                                    f'e.g. {max(batch, queue // batch * batch)}, or 0 for no pool'))
    train_set = mapping(opt, 'datasets', 'train')
    if not makes_realworld_pairs(train_set) and get(opt, 'train', 'degradation_preview'):
        problems.append(warning(('train', 'degradation_preview'), 'has an effect only when datasets.train is a '
                                'GTOnlyDataset with degradation realworld; remove it'))
    return problems


def _degradation_values(dataset: dict, where: tuple) -> list:
    """Probabilities, choices, ranges, kernel sizes and JPEG qualities of one dataset's settings."""
    problems = []

    def bad(key: str, message: str) -> None:
        problems.append(Problem(where + (key,), message))

    for key in DEGRADATION_PROBABILITIES:
        value = dataset.get(key)
        if is_number(value) and not 0 <= value <= 1:
            bad(key, f'{value} is not a probability; use a value in [0, 1]')
    for key in DEGRADATION_CHOICES:
        values = dataset.get(key)
        if not isinstance(values, list) or not all(is_number(v) for v in values):
            continue
        if any(not 0 <= v <= 1 for v in values):
            bad(key, f'{values} holds a value outside [0, 1]; every entry is a probability')
        elif abs(sum(values) - 1) > 1e-6:
            bad(key, f'{values} sums to {sum(values):g}, not 1; one of the choices is always taken, so the '
                'probabilities must add up to 1')
        names = dataset.get(_CHOICE_LISTS.get(key))
        if isinstance(names, list) and len(names) != len(values):
            bad(key, f'has {len(values)} entries but {_CHOICE_LISTS[key]} names {len(names)} kernels; give one '
                'probability per kernel')
    for key in DEGRADATION_RANGES:
        values = dataset.get(key)
        if not isinstance(values, list) or not all(is_number(v) for v in values):
            continue
        if len(values) == 2 and values[0] > values[1]:  # the schema says a range has two values
            bad(key, f'{values} is not ordered; write [low, high], e.g. {sorted(values)}')
    for key in DEGRADATION_KERNEL_SIZES:
        value = dataset.get(key)
        if type(value) is int and (value < 1 or value % 2 == 0):
            bad(key, f'{value} is not an odd kernel size; blur kernels have a centre pixel, use e.g. '
                f'{max(1, value + 1 if value % 2 == 0 else value)}')
    for key in DEGRADATION_JPEG:
        values = dataset.get(key)
        if isinstance(values, list) and any(is_number(v) and not 1 <= v <= 100 for v in values):
            bad(key, f'{values} holds a JPEG quality outside [1, 100]; use qualities from 1 to 100')
    return problems


def _degradation_sizes(opt: dict, dataset: dict) -> list:
    """The region degraded (``crop_pad_size``) must hold the gt_size crop, and stay wider than the blur kernels'
    reach once the first resize has shrunk it and at the LR size (reflection padding needs it)."""
    # imports torch: only for such a file
    from esrgan_plugin.data.realworld_degradation import RealWorldSettings, smallest_region
    values = {key: dataset.get(key, REALWORLD_DEFAULTS[key])
              for key in ('crop_pad_size', 'gt_size', 'resize_range', 'blur_kernel_size', 'blur_kernel_size2')}
    region, gt_size, low = values['crop_pad_size'], values['gt_size'], get(values, 'resize_range')
    sizes = (region, gt_size, values['blur_kernel_size'], values['blur_kernel_size2'], opt.get('scale'))
    if not all(type(v) is int and v > 0 for v in sizes) or not isinstance(low, list) or not low or \
            not is_number(low[0]) or low[0] <= 0:
        return []
    kernels = (values['blur_kernel_size'], values['blur_kernel_size2'])
    needed = max(smallest_region(RealWorldSettings.from_options(dataset), opt['scale']), gt_size)
    if region >= needed:
        return []
    return [Problem(('datasets', 'train', 'crop_pad_size'), f'{region} is too small: the degradations need a region '
                    f'that holds the gt_size crop ({gt_size}) and stays wider than the blur kernels\' reach '
                    f'({max(kernels) // 2} px) after resizing by {low[0]} and at the LR size; use at least {needed}')]


# ----------------------------------------------------------------------------- what is passed on unchecked
def unchecked_sections(opt: dict) -> list[tuple[tuple, str]]:
    """(key path, message) for each section whose type is registered outside basicsr and the plugin."""
    from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY

    sections = [(('network_g',), ARCH_REGISTRY), (('network_d',), ARCH_REGISTRY)]
    sections += [(('train', key), LOSS_REGISTRY) for key in mapping(opt, 'train') if str(key).endswith('_opt')]
    sections += [(('datasets', phase), DATASET_REGISTRY) for phase in mapping(opt, 'datasets')]
    sections += [(('val', 'metrics', name), METRIC_REGISTRY) for name in mapping(opt, 'val', 'metrics')]
    warnings = []
    for keys, registry in sections:
        kind = get(opt, *keys, 'type')
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
