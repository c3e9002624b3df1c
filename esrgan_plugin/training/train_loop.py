"""The training loop, built from basicsr's parts, so that a run can stop and continue exactly.

basicsr's ``train_pipeline`` restarts an interrupted epoch from its first batch and saves no random-number
state, so a resumed run is not the run it replaced. This loop keeps what users rely on (the same option files,
log lines, TensorBoard logs, validation, checkpoints, ``--auto_resume``, torchrun/slurm) and adds:

* a training state that holds everything that decides what happens next: iteration, epoch, the number of
  batches of that epoch already trained on, every rank's random-number states and the model's part
  (``training_state()``: optimizers, schedulers, ...); the data order continues where it stopped
  (``train_data``), so stop-and-resume gives the same weights as an uninterrupted run;
* ``--auto_resume`` from the newest intact checkpoint, and removal of temporary files of killed saves;
* SIGINT/SIGTERM stop after the current step with a checkpoint (``stop_signals``);
* one run per experiment folder (``run_lock``);
* ``train.deterministic`` for GPU runs that repeat bit for bit.

It also fixes two basicsr behaviours: a negative ETA ("-1 day, 23:59:58") on the last iteration, and validation
run twice at the end when the last iteration is a validation iteration.
"""
from __future__ import annotations

import contextlib
import copy
import datetime
import logging
import os
import signal
import time
import traceback
from typing import Iterator, Optional

import torch
from basicsr.data import build_dataset
from basicsr.data.prefetch_dataloader import CPUPrefetcher, CUDAPrefetcher
from basicsr.models import build_model
from basicsr.train import init_tb_loggers
from basicsr.utils import (AvgTimer, MessageLogger, check_resume, get_env_info, get_root_logger, get_time_str,
                           make_exp_dirs, mkdir_and_rename)
from basicsr.utils.options import dict2str

from esrgan_plugin import fileio
from esrgan_plugin.training import distributed, resume
from esrgan_plugin.errors import UserFacingError
from esrgan_plugin.training.launch import dataset_phase
from esrgan_plugin.training.run_lock import ExperimentLock
from esrgan_plugin.training.stop_signals import StopSignals
from esrgan_plugin.training.train_data import (WorkerSignals, build_evaluation_loader, build_train_loader,
                                               stop_signals_held)


class EtaMessageLogger(MessageLogger):
    """basicsr's message logger; its ETA counts one iteration too few (``total - iter - 1``), which prints
    "eta: -1 day, 23:59:58" on the last iteration. Counting one more iteration in the total fixes that."""

    def __init__(self, opt: dict, start_iter: int, tb_logger) -> None:
        super().__init__(opt, start_iter, tb_logger)
        self.max_iters = int(self.max_iters) + 1


@contextlib.contextmanager
def determinism(deterministic: bool) -> Iterator[None]:
    """``train.deterministic: true``: only deterministic kernels (an error names any op that has none).

    CPU training is deterministic anyway; on CUDA, cuDNN's autotuned and atomic-add kernels are not. The
    setting is process-wide, so it is put back afterwards (tests run several trainings in one process).
    """
    previous = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic,
                torch.backends.cudnn.benchmark)
    if deterministic:
        # cuBLAS needs a fixed workspace for reproducible matrix products; read when CUDA starts.
        os.environ.setdefault('CUBLAS_WORKSPACE_CONFIG', ':4096:8')
    torch.use_deterministic_algorithms(deterministic)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic  # basicsr's default: the fastest kernels
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = previous[1:]


def _take_lock(lock: ExperimentLock, opt: dict) -> Optional[str]:
    """Rank 0 takes the lock; every rank raises the same error when it is held."""
    error, note = None, None
    if opt['rank'] == 0:
        try:
            note = lock.acquire()
        except UserFacingError as err:
            error = str(err)
    if opt['dist']:
        shared = [error]
        with distributed.collective(opt, 'taking the experiment\'s lock'):
            torch.distributed.broadcast_object_list(shared, src=0)
        error = shared[0]
    if error:
        raise UserFacingError(error)
    return note


def train_pipeline(opt: dict, option_file: str, command: str) -> int:
    """Train with ``opt``, the launched options (``training.launch``). Returns the exit code.

    ``option_file`` is copied into the experiment folder with ``command``, the command line, as basicsr does.
    """
    lock = ExperimentLock(opt['path']['experiments_root'])
    notes = [_take_lock(lock, opt)]  # before anything in the experiment folder is read, moved or removed
    try:
        with determinism(bool(opt['train'].get('deterministic', False))), StopSignals() as signals:
            return _train(opt, option_file, command, signals, notes)
    finally:
        lock.release()


def _prepare_experiment(opt: dict, notes: list) -> tuple[Optional[resume.ResumePoint], dict]:
    """Find what to resume from; otherwise make (archiving an old one) the experiment and TensorBoard folders.
    Returns the resume point (None for a fresh run) and the run's options: ``opt`` itself for a fresh run,
    ``resumed_options`` for a resumed one.

    Every rank resumes from rank 0's choice or all stop, before anything is written or removed."""
    point = resume.agreed_resume_point(opt)
    root = opt['path']['experiments_root']
    if opt['rank'] == 0 and os.path.isdir(root):
        removed = fileio.remove_leftover_temp_files(root)
        if removed:
            notes.append(f'removed {len(removed)} temporary files of interrupted saves: {", ".join(removed)}')
    if point is None:
        make_exp_dirs(opt)
        if opt['logger'].get('use_tb_logger') and 'debug' not in opt['name'] and opt['rank'] == 0:
            mkdir_and_rename(os.path.join(opt['root_path'], 'tb_logger', opt['name']))
        return None, opt
    if point.damaged:
        notes.append(f'resuming from {point.path} (iteration {point.iteration}) because newer files are damaged: '
                     f'{"; ".join(point.damaged)}')
    return point, resumed_options(opt, point)


def resumed_options(opt: dict, point: resume.ResumePoint) -> dict:
    """The options of a run resumed from ``point``: a copy of the launched ``opt`` (which stays as the checks
    returned it) with ``path.resume_state`` set and, by basicsr's ``check_resume``, ``path.pretrain_network_*``
    pointing at the networks saved at that iteration."""
    resumed = copy.deepcopy(opt)
    resumed['path']['resume_state'] = point.path
    check_resume(resumed, point.iteration)
    return resumed


def _build_data(opt: dict, worker_signals: WorkerSignals, logger: logging.Logger):
    train_opt = opt['datasets']['train']
    train_set = build_dataset(train_opt)
    loader, sampler = build_train_loader(train_set, train_opt, opt, worker_signals)
    if len(loader) == 0:
        raise UserFacingError(f'datasets.train has {len(train_set)} samples per epoch per process, fewer than one '
                              f'batch of {loader.batch_size}; lower batch_size_per_gpu or raise dataset_enlarge_ratio')
    logger.info(f'Training statistics:\n\tNumber of train images: {len(train_set)}'
                f'\n\tDataset enlarge ratio: {train_opt.get("dataset_enlarge_ratio", 1)}'
                f'\n\tBatch size per gpu: {train_opt["batch_size_per_gpu"]}'
                f'\n\tWorld size (gpu number): {opt["world_size"]}'
                f'\n\tRequire iter number per epoch: {len(loader)}'
                f'\n\tTotal iters: {int(opt["train"]["total_iter"])}.')
    val_loaders = []
    for phase, dataset_opt in opt['datasets'].items():
        if dataset_phase(phase) == 'val':  # the checks allow only train and val* in a training file
            val_set = build_dataset(dataset_opt)
            val_loaders.append(build_evaluation_loader(val_set, dataset_opt, worker_signals))
            logger.info(f'Number of val images/folders in {dataset_opt["name"]}: {len(val_set)}')
    return loader, sampler, val_loaders


def _prefetcher(loader, opt: dict):
    train_opt = opt['datasets']['train']  # the checks allow prefetch_mode ~, cpu or cuda
    if train_opt.get('prefetch_mode') == 'cuda':
        assert train_opt.get('pin_memory'), 'the checks: prefetch_mode cuda needs pin_memory: true'
        return CUDAPrefetcher(loader, opt)
    return CPUPrefetcher(loader)


def _batches(prefetcher) -> Iterator[dict]:
    with stop_signals_held():  # a new iterator starts new workers (unless they are persistent)
        prefetcher.reset()
    batch = prefetcher.next()
    while batch is not None:
        yield batch
        batch = prefetcher.next()


def _copy_option_file(option_file: str, folder: str, command: str) -> None:
    """The option file in the experiment folder, headed by when and how it ran (basicsr's copy_opt_file format)."""
    with open(option_file, encoding='utf-8') as f:
        text = f.read()
    fileio.save_text(f'# GENERATE TIME: {time.asctime()}\n# CMD:\n# {command}\n\n{text}',
                     os.path.join(folder, os.path.basename(option_file)))


def _train(launched: dict, option_file: str, command: str, signals: StopSignals, notes: list) -> int:
    point, opt = _prepare_experiment(launched, notes)
    if opt['rank'] == 0:
        _copy_option_file(option_file, opt['path']['experiments_root'], command)
    log_file = os.path.join(opt['path']['log'], f'train_{opt["name"]}_{get_time_str()}.log')
    logger = get_root_logger(logger_name='basicsr', log_level=logging.INFO, log_file=log_file)
    logger.info(get_env_info())
    logger.info(dict2str(opt))
    for note in filter(None, notes):
        logger.warning(note)
    tb_logger = init_tb_loggers(opt)
    worker_signals = WorkerSignals()
    try:
        return _run(opt, point, signals, worker_signals, logger, tb_logger)
    except BaseException as err:
        # torch re-raises a worker's error from a frame that references it (a reference cycle), which keeps
        # the DataLoader iterator and its workers alive until the interpreter exits and kills them. Clearing
        # the finished frames lets the iterator shut its workers down now.
        traceback.clear_frames(err.__traceback__)
        raise
    finally:
        worker_signals.release()  # an exception may leave workers behind; Python's exit ends them with SIGTERM
        if tb_logger:
            tb_logger.close()


def _run(opt: dict, point: Optional[resume.ResumePoint], signals: StopSignals, worker_signals: WorkerSignals,
         logger, tb_logger) -> int:
    loader, sampler, val_loaders = _build_data(opt, worker_signals, logger)
    model = build_model(opt)
    total_iters = int(opt['train']['total_iter'])
    epoch, current_iter, batches_done = 0, 0, 0
    if point:
        model.resume_training(point.state)
        epoch, current_iter = int(point.state['epoch']), point.iteration
        batches_done = _restore_loop_state(point.state, opt, logger)
        logger.info(f'Resuming training from epoch: {epoch}, iter: {current_iter}.')
    msg_logger = EtaMessageLogger(opt, current_iter, tb_logger)
    with stop_signals_held():  # basicsr's prefetchers start an iterator, and so workers, when created
        prefetcher = _prefetcher(loader, opt)
    val_opt = opt.get('val')
    save_freq = int(opt['logger']['save_checkpoint_freq'])
    logger.info(f'Start training from epoch: {epoch}, iter: {current_iter}')
    data_timer, iter_timer = AvgTimer(), AvgTimer()
    start_time = time.time()
    validated_at, first_step = None, True
    stop = _agreed_stop(signals, opt, model)  # a signal during the set-up: nothing to save yet

    while current_iter < total_iters and stop is None:
        sampler.set_epoch(epoch, start=batches_done * loader.batch_size)
        for batch in _batches(prefetcher):
            data_timer.record()
            current_iter += 1
            batches_done += 1
            model.update_learning_rate(current_iter, warmup_iter=opt['train'].get('warmup_iter', -1))
            model.feed_data(batch)
            model.optimize_parameters(current_iter)
            iter_timer.record()
            if first_step:
                msg_logger.reset_start_time()
                first_step = False
            if current_iter % opt['logger']['print_freq'] == 0:
                msg_logger({'epoch': epoch, 'iter': current_iter, 'lrs': model.get_current_learning_rate(),
                            'time': iter_timer.get_avg_time(), 'data_time': data_timer.get_avg_time(),
                            **model.get_current_log()})
            stop = _agreed_stop(signals, opt, model)
            if current_iter % save_freq == 0 or stop:
                logger.info('Saving models and training states.')
                model.save(epoch, current_iter, _loop_state(opt, batches_done))
            if stop:
                break
            if val_opt is not None and current_iter % val_opt['val_freq'] == 0:
                for val_loader in val_loaders:
                    model.validation(val_loader, current_iter, tb_logger, val_opt['save_img'])
                validated_at = current_iter
            if current_iter >= total_iters:
                break
            data_timer.start()
            iter_timer.start()
        else:  # the epoch's batches are used up
            epoch, batches_done = epoch + 1, 0

    if stop:
        saved = 'checkpoint and training state saved' if not first_step else 'nothing to save'
        logger.warning(f'Stopped by {signal.Signals(stop).name} at iteration {current_iter}: {saved}; '
                       'continue with --auto_resume.')
        return 128 + stop
    consumed = datetime.timedelta(seconds=int(time.time() - start_time))
    logger.info(f'End of training. Time consumed: {consumed}')
    logger.info('Save the latest model.')
    model.save(epoch=-1, current_iter=-1)  # -1: net_*_latest.pth
    if val_opt is not None and validated_at != current_iter:  # the last iteration may have validated already
        for val_loader in val_loaders:
            model.validation(val_loader, current_iter, tb_logger, val_opt['save_img'])
    return 0


def _agreed_stop(signals: StopSignals, opt: dict, model) -> Optional[int]:
    with distributed.collective(opt, 'agreeing whether to stop after this step'):
        return signals.agreed_stop(opt['dist'], model.device)


def _loop_state(opt: dict, batches_done: int) -> dict:
    """The loop's part of a training state (a collective call under DDP: it gathers every rank's generators)."""
    return {'epoch_batches_done': batches_done, 'world_size': opt['world_size'],
            'rng': resume.gather_rng_states(opt)}


def _restore_loop_state(state: dict, opt: dict, logger: logging.Logger) -> int:
    """Put back every rank's generator states; return the number of batches of the epoch already trained on."""
    if 'rng' not in state:
        logger.warning('this training state predates exact resume: the interrupted epoch restarts from its first '
                       'batch and the random-number states start afresh.')
        return 0
    if state.get('world_size') != opt['world_size']:
        logger.warning(f'the training state was written by {state.get("world_size")} processes and this run has '
                       f'{opt["world_size"]}: training continues, but not exactly as the interrupted run would have.')
    ranks = state['rng']
    resume.set_rng_state(ranks[opt['rank'] % len(ranks)])
    return int(state['epoch_batches_done'])
