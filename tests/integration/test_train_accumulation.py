"""train.accumulate through the training command and under DDP, and a non-finite loss through the command.

The reference for accumulation is always the same run without it (accumulate 1): the batch of an optimizer step
is the same, only its micro-batches differ.
"""
import copy
import os
import time

import pytest
import torch
import torch.multiprocessing as mp
import yaml

import esrgan_plugin  # noqa: F401  basicsr importable first: spawned processes import this module afresh
from basicsr.models import build_model
from basicsr.utils.registry import MODEL_REGISTRY

from conftest import basicsr_log_messages, free_port
from builders import gan_options, make_lmdb_pair, model_opt
from esrgan_plugin import train
from esrgan_plugin.models.nonfinite_losses import TrainingDiverged
from esrgan_plugin.models.ragan_model import ESRGANRaGANModel


_BASE = {}


def options(tmp_path, name, model='psnr', batch=8, accumulate=1, total_iter=4, images=16):
    """A tiny L1 (or GAN) run on ``images`` 32x32 crops; no validation, no perceptual loss (exactness needs
    neither)."""
    data = tmp_path / f'data{images}'
    if not data.exists():
        make_lmdb_pair(data, count=images, size=32)
    if tmp_path not in _BASE:
        _BASE[tmp_path] = gan_options(tmp_path)  # writes its own LMDBs, once per folder
    opt = copy.deepcopy(_BASE[tmp_path])
    opt['name'] = name
    opt['train']['total_iter'] = total_iter
    opt['datasets'] = {'train': {**opt['datasets']['train'], 'dataroot_gt': str(data / 'gt.lmdb'),
                                 'dataroot_lq': str(data / 'lq.lmdb'), 'batch_size_per_gpu': batch}}
    opt.pop('val')
    opt['logger'] = {'print_freq': 1, 'save_checkpoint_freq': 2, 'use_tb_logger': False}
    opt['train']['scheduler']['milestones'] = [total_iter - 1]
    opt['train']['accumulate'] = accumulate
    opt['train'].pop('perceptual_opt')
    if model == 'psnr':
        opt['model_type'] = 'ESRGANPSNRModel'
        opt.pop('network_d')
        for key in ('optim_d', 'gan_opt'):
            opt['train'].pop(key)
        opt['train']['pixel_opt']['loss_weight'] = 1.0
    elif model != 'gan':
        opt['model_type'] = model
    return opt


@pytest.fixture
def run_here(tmp_path, monkeypatch):
    """``python -m esrgan_plugin.train ARGS`` in this process, in tmp_path; returns its exit code."""
    monkeypatch.chdir(tmp_path)

    def run(opt, *args):
        path = tmp_path / f'{opt["name"]}.yml'
        path.write_text(yaml.safe_dump(opt))
        return train.main(['-opt', str(path), *args])
    return run


def networks(tmp_path, name, iteration):
    models = tmp_path / 'experiments' / name / 'models'
    return {f'{label}.{key}.{k}': v for label in ('net_g', 'net_d') if (models / f'{label}_{iteration}.pth').exists()
            for key, state in torch.load(models / f'{label}_{iteration}.pth', weights_only=True).items()
            for k, v in state.items() if v.is_floating_point()}


def assert_relatively_close(actual, expected, tolerance):
    """Every element within ``tolerance`` times the largest magnitude of its network (``net_g.params``, ...)."""
    assert actual.keys() == expected.keys()
    scales = {}
    for name, value in expected.items():
        net = '.'.join(name.split('.')[:2])
        scales[net] = max(scales.get(net, 0.0), value.abs().max().item())
    for name in expected:
        error = (actual[name] - expected[name]).abs().max().item()
        scale = scales['.'.join(name.split('.')[:2])]
        assert error <= tolerance * scale, f'{name}: {error:.3e} > {tolerance:g} x {scale:.3e}'


def test_l1_run_with_batch_8_in_4_micro_batches_ends_with_the_weights_of_batch_8(tmp_path, run_here):
    """Tolerance: 1e-6 of the network's largest weight (float32 rounding; measured about 1e-7)."""
    assert run_here(options(tmp_path, 'whole')) == 0
    with basicsr_log_messages() as lines:
        assert run_here(options(tmp_path, 'split', accumulate=4)) == 0
    assert 'Batch of an optimizer step: 8 per process x 1 process(es) = 8 (effective batch); accumulated over 4 ' \
        'micro-batch(es) of 2 per process.' in lines
    assert_relatively_close(networks(tmp_path, 'split', 4), networks(tmp_path, 'whole', 4), 1e-6)
    state = torch.load(tmp_path / 'experiments' / 'split' / 'training_states' / '4.state', weights_only=True)
    assert state['optimizers'][0]['state'][0]['step'] == 4 and state['schedulers'][0]['last_epoch'] == 3


@pytest.mark.parametrize('model', ['psnr', 'gan'])
def test_stop_and_resume_with_accumulation_is_bit_identical(tmp_path, run_here, model):
    """6 iterations in one go against resuming from iteration 4 (the middle of the second epoch: 3 batches an
    epoch)."""
    opt = options(tmp_path, 'whole', model, batch=4, accumulate=2, total_iter=6, images=12)
    assert run_here(opt) == 0
    resumed = copy.deepcopy(opt)
    resumed['name'] = 'resumed'
    resumed['train']['total_iter'] = 4
    assert run_here(resumed) == 0
    resumed['train']['total_iter'] = 6
    assert run_here(resumed, '--auto_resume') == 0
    expected, actual = networks(tmp_path, 'whole', 6), networks(tmp_path, 'resumed', 6)
    assert expected.keys() == actual.keys()
    for key in expected:
        assert torch.equal(actual[key], expected[key]), key
    for name in ('whole', 'resumed'):  # optimizers and schedulers too
        state = torch.load(tmp_path / 'experiments' / name / 'training_states' / '6.state', weights_only=True)
        assert state['optimizers'][0]['state'][0]['step'] == 6


# ------------------------------------------------------------------------------ a NaN through the command
@MODEL_REGISTRY.register()
class NaNGanLossTestModel(ESRGANRaGANModel):
    """The relativistic generator loss turns NaN from iteration 5 on; the other terms stay finite."""

    def optimize_parameters(self, current_iter):
        self.poisoned = current_iter >= 5
        super().optimize_parameters(current_iter)

    def _generator_losses(self, lq, output, gt, real_pred):
        losses = super()._generator_losses(lq, output, gt, real_pred)
        if self.poisoned:
            losses['l_g_gan'] = losses['l_g_gan'] * float('nan')
        return losses


def test_a_nan_in_one_term_is_named_and_the_error_names_the_checkpoint_to_start_from(tmp_path, run_here):
    opt = options(tmp_path, 'nan', 'NaNGanLossTestModel', batch=4, accumulate=2, total_iter=10)
    opt['train']['max_nonfinite_steps'] = 2
    with basicsr_log_messages() as lines, pytest.raises(TrainingDiverged) as diverged:
        run_here(opt)
    warnings = [line for line in lines if 'non-finite loss' in line]
    assert [w.split(':')[0] for w in warnings] == ['iter 5', 'iter 6']
    for warning in warnings:
        assert 'generator: l_g_gan = nan' in warning and 'learning rates: generator 0.0001, discriminator 0.0001' \
            in warning
        assert not any(term in warning for term in ('l_g_pix', 'l_d_real', 'l_d_fake'))
    exp = tmp_path / 'experiments' / 'nan'
    message = str(diverged.value)
    assert 'up to iteration 6 had a non-finite loss (l_g_gan)' in message
    assert f'the newest intact checkpoint is iteration 4 ({exp / "training_states" / "4.state"})' in message
    assert f'path.pretrain_network_g: {exp / "models" / "net_g_4.pth"}' in message
    assert f'path.pretrain_network_d: {exp / "models" / "net_d_4.pth"}' in message
    assert 'a lower train.optim_g.lr and train.optim_d.lr' in message


# ------------------------------------------------------------------------------ two processes, gloo
def _ddp_steps(rank, port, folder, out):
    """In each of 2 processes: 3 L1 steps on this rank's batch of 8, with accumulate 1 and 4; the weights and
    the number of gradient all-reduces (DDP's communication hook) go to ``out``."""
    from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

    torch.set_num_threads(1)
    torch.distributed.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank, world_size=2)
    results = {}
    for accumulate in (1, 4):
        opt = model_opt(folder, 'ESRGANPSNRModel')
        opt.update(dist=True, rank=rank, world_size=2)
        opt['train']['accumulate'] = accumulate
        opt['train']['pixel_opt']['loss_weight'] = 1.0
        torch.manual_seed(0)
        model = build_model(opt)
        all_reduces = []

        def counting(state, bucket):
            all_reduces.append(1)
            return default_hooks.allreduce_hook(None, bucket)
        model.net_g.register_comm_hook(None, counting)
        for it in range(1, 4):
            g = torch.Generator().manual_seed(10 * it + rank)  # each rank its own data
            model.feed_data({'lq': torch.rand(8, 3, 8, 8, generator=g), 'gt': torch.rand(8, 3, 32, 32, generator=g)})
            model.optimize_parameters(it)
        bare = model.get_bare_model(model.net_g)
        params = {f'net_g.params.{n}': p.detach().clone() for n, p in bare.named_parameters()}
        results[accumulate] = (params, len(all_reduces))
    torch.save(results, f'{out}.{rank}')
    torch.distributed.destroy_process_group()


def test_two_process_gloo_ddp_accumulates_with_one_all_reduce_per_step(tmp_path):
    """Tolerance as on one process: 1e-6 of the network's largest weight."""
    out = str(tmp_path / 'result')
    context = mp.start_processes(_ddp_steps, args=(free_port(), tmp_path, out), nprocs=2, join=False,
                                 start_method='spawn')
    deadline = time.time() + 420
    try:
        while not context.join(timeout=5):
            assert time.time() < deadline, 'the two processes did not finish in 420 s'
    finally:
        for process in context.processes:
            if process.is_alive():
                process.kill()
    ranks = [torch.load(f'{out}.{rank}', weights_only=True) for rank in (0, 1)]
    for rank in ranks:
        (whole, whole_reduces), (split, split_reduces) = rank[1], rank[4]
        assert_relatively_close(split, whole, 1e-6)
        assert whole_reduces > 0 and split_reduces == whole_reduces  # no_sync on the first 3 micro-batches
    for key in ranks[0][4][0]:
        assert torch.equal(ranks[0][4][0][key], ranks[1][4][0][key]), key  # replicas in sync
