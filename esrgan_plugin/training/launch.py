"""What basicsr's launcher adds to the checked options: distributed setup, seeds, folders, phases.

basicsr's ``parse_options`` reads the option file and applies ``--force_yml`` itself before doing this;
the plugin's commands have read and checked the options once already (``config.loading``), so only the
launch part is done here, on a copy, with the same results as basicsr's for the same file and arguments.
"""
from __future__ import annotations

import copy
import os
import random
from typing import NamedTuple

import torch
from basicsr.utils import set_random_seed
from basicsr.utils import options as basicsr_options
from basicsr.utils.dist_util import get_dist_info

from esrgan_plugin.training.distributed import collective, process_group_timeout


def dataset_phase(name: str) -> str:
    """The phase basicsr's launcher gives the dataset named ``name``: the text before the first ``_`` (``train``;
    ``val``, ``val_1``, ``val_set14``: ``val``). A training file may name only ``train`` and ``val*`` datasets."""
    return str(name).split('_')[0]


def experiment_folders(root: str, name: str, is_train: bool) -> dict:
    """The ``path`` keys basicsr's launcher sets: ``experiments/<name>/...`` (training) or ``results/<name>/...``
    (testing) under ``root``."""
    if is_train:
        experiment = os.path.join(root, 'experiments', name)
        return {'experiments_root': experiment, 'models': os.path.join(experiment, 'models'),
                'training_states': os.path.join(experiment, 'training_states'), 'log': experiment,
                'visualization': os.path.join(experiment, 'visualization')}
    results = os.path.join(root, 'results', name)
    return {'results_root': results, 'log': results, 'visualization': os.path.join(results, 'visualization')}


class Launch(NamedTuple):
    """The command-line arguments basicsr's launcher reads besides the option file."""
    launcher: str = 'none'  # 'none', 'pytorch' (torchrun) or 'slurm'
    auto_resume: bool = False
    debug: bool = False


def launch_options(opt: dict, launch: Launch, root: str, is_train: bool) -> dict:
    """A copy of the checked ``opt`` with the keys basicsr's launcher sets; starts the process group.

    ``root`` is the folder ``experiments/`` (training) or ``results/`` (testing) go under.
    """
    opt = copy.deepcopy(opt)
    if launch.launcher == 'none':
        opt['dist'] = False
    else:
        opt['dist'] = True
        # basicsr's launcher calls the init_dist of its options module, which compat replaces (gloo on CPU);
        # like basicsr's, it reads dist_params (backend, port) under slurm only. The timeout bounds every wait of
        # every rank (training.distributed).
        params = dict(opt.get('dist_params') or {}) if launch.launcher == 'slurm' else {}
        params.pop('timeout', None)
        # The rank is known from the launcher's variables only until the group has started.
        starting = {**opt, 'rank': os.environ.get('RANK', os.environ.get('SLURM_PROCID', '?'))}
        with collective(starting, 'starting the process group'):  # a rank that never comes: one line, in time
            basicsr_options.init_dist(launch.launcher, timeout=process_group_timeout(opt), **params)
    opt['rank'], opt['world_size'] = get_dist_info()
    if opt.get('manual_seed') is None:
        opt['manual_seed'] = random.randint(1, 10000)
    set_random_seed(opt['manual_seed'] + opt['rank'])
    opt['auto_resume'] = launch.auto_resume
    opt['is_train'] = is_train
    opt['root_path'] = root
    if launch.debug and not opt['name'].startswith('debug'):
        opt['name'] = 'debug_' + opt['name']
    if opt['num_gpu'] == 'auto':
        opt['num_gpu'] = torch.cuda.device_count()
    for phase, dataset in opt['datasets'].items():
        dataset['phase'] = dataset_phase(phase)
        if 'scale' in opt:
            dataset['scale'] = opt['scale']
        for key in ('dataroot_gt', 'dataroot_lq'):
            if dataset.get(key) is not None:
                dataset[key] = os.path.expanduser(dataset[key])
    for key, value in opt['path'].items():
        if value is not None and ('resume_state' in key or 'pretrain_network' in key):
            opt['path'][key] = os.path.expanduser(value)
    opt['path'].update(experiment_folders(root, opt['name'], is_train))
    if is_train and 'debug' in opt['name']:  # basicsr's debug mode: everything happens within a few iterations
        if 'val' in opt:
            opt['val']['val_freq'] = 8
        opt['logger']['print_freq'] = 1
        opt['logger']['save_checkpoint_freq'] = 8
    return opt
