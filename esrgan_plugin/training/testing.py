"""The test command's run: basicsr's test pipeline on options that were read and checked once.

basicsr's ``test_pipeline`` reads the option file itself (``parse_options``); this runs the same steps (folders,
log file, one loader per test set in name order, the model's validation on each) on the launched dict.
"""
from __future__ import annotations

import logging
import os

import torch
from basicsr.data import build_dataset
from basicsr.models import build_model
from basicsr.utils import get_env_info, get_root_logger, get_time_str, make_exp_dirs
from basicsr.utils.options import dict2str

from esrgan_plugin.training.train_data import WorkerSignals, build_evaluation_loader


def run_test_sets(opt: dict) -> None:
    """Evaluate ``opt``'s generator on each of its datasets; results go to ``opt['path']['results_root']``."""
    torch.backends.cudnn.benchmark = True  # fixed image sizes per set: let cuDNN pick the fastest kernels
    make_exp_dirs(opt)
    log_file = os.path.join(opt['path']['log'], f'test_{opt["name"]}_{get_time_str()}.log')
    logger = get_root_logger(logger_name='basicsr', log_level=logging.INFO, log_file=log_file)
    logger.info(get_env_info())
    logger.info(dict2str(opt))
    loaders = []
    worker_signals = WorkerSignals()  # workers leave Ctrl-C to this process: one "interrupted" line, no tracebacks
    for _, dataset_opt in sorted(opt['datasets'].items()):
        test_set = build_dataset(dataset_opt)
        loaders.append(build_evaluation_loader(test_set, dataset_opt, worker_signals))
        logger.info(f'Number of test images in {dataset_opt["name"]}: {len(test_set)}')
    model = build_model(opt)
    try:
        for loader in loaders:
            logger.info(f'Testing {loader.dataset.opt["name"]}...')
            model.validation(loader, current_iter=opt['name'], tb_logger=None, save_img=opt['val']['save_img'])
    finally:
        worker_signals.release()
