"""train.accumulate (micro-batches, gradients summed, one update per step) and the non-finite loss that names itself.

The reference for accumulation is the same model without it (accumulate 1) on the same batch: the summed
micro-batch gradients must give the same weights to float rounding.
"""
import math

import pytest
import torch
from basicsr.models import build_model

from conftest import basicsr_log_messages
from builders import model_opt

from esrgan_plugin.models.nonfinite_losses import TrainingDiverged

LOSS_TERMS = ('l_g_pix', 'l_g_percep', 'l_g_gan', 'l_d_real', 'l_d_fake')


def big_batch(seed, size=8, repeat=1):
    """``size`` random LR/HR pairs, or ``size // repeat`` pairs repeated ``repeat`` times (identical micro-batches)."""
    g = torch.Generator().manual_seed(seed)
    n = size // repeat
    lq, gt = torch.rand(n, 3, 8, 8, generator=g), torch.rand(n, 3, 32, 32, generator=g)
    return {'lq': lq.repeat(repeat, 1, 1, 1), 'gt': gt.repeat(repeat, 1, 1, 1)}


def trained(tmp_path, model_type, accumulate, steps=3, repeat=1, optimizer=None):
    opt = model_opt(tmp_path, model_type)
    opt['train']['accumulate'] = accumulate
    if model_type == 'ESRGANPSNRModel':
        opt['train']['pixel_opt']['loss_weight'] = 1.0  # an L1 run
    if optimizer:
        for key in ('optim_g', 'optim_d'):
            if key in opt['train']:
                opt['train'][key] = dict(optimizer)
    torch.manual_seed(0)
    model = build_model(opt)
    logs = []
    for it in range(1, steps + 1):
        model.feed_data(big_batch(it, repeat=repeat))
        model.optimize_parameters(it)
        logs.append(dict(model.get_current_log()))
    return model, logs


def parameters(model):
    nets = {'net_g': model.net_g, 'net_g_ema': model.net_g_ema}
    if hasattr(model, 'net_d'):
        nets['net_d'] = model.net_d
    return {f'{net}.{name}': p.detach().clone() for net, m in nets.items() for name, p in m.named_parameters()}


def assert_relatively_close(actual, expected, tolerance):
    """Every element within ``tolerance`` times the largest magnitude in its network (``net_g.*``, ...)."""
    assert actual.keys() == expected.keys()
    scales = {}
    for name, value in expected.items():
        net = name.split('.')[0]
        scales[net] = max(scales.get(net, 0.0), value.abs().max().item())
    for name in expected:
        error = (actual[name] - expected[name]).abs().max().item()
        scale = scales[name.split('.')[0]]
        assert error <= tolerance * scale, f'{name}: {error:.3e} > {tolerance:g} x {scale:.3e}'


def test_l1_batch_8_in_4_micro_batches_gives_the_weights_of_batch_8(tmp_path):
    """Tolerance: 1e-6 of the network's largest weight (float32 rounding of the differently ordered sums;
    measured about 1e-7)."""
    whole, whole_logs = trained(tmp_path, 'ESRGANPSNRModel', 1)
    split, split_logs = trained(tmp_path, 'ESRGANPSNRModel', 4)
    assert_relatively_close(parameters(split), parameters(whole), 1e-6)
    for a, b in zip(split_logs, whole_logs):  # the logged loss is the batch's mean, not a micro-batch's
        assert math.isclose(a['l_pix'], b['l_pix'], rel_tol=1e-6)
    # one optimizer step, one scheduler step per iteration
    assert split.optimizer_g.state_dict()['state'][0]['step'] == whole.optimizer_g.state_dict()['state'][0]['step'] == 3
    assert split.schedulers[0].last_epoch == whole.schedulers[0].last_epoch


def test_micro_batches_run_the_generator_once_each_and_update_the_ema_once(tmp_path):
    model, _ = trained(tmp_path, 'ESRGANPSNRModel', 4, steps=1)
    sizes = []
    model.net_g.register_forward_hook(lambda module, args, out: sizes.append(args[0].shape[0]))
    ema_before = {k: v.clone() for k, v in model.net_g_ema.state_dict().items()}
    live_before = {k: v.clone() for k, v in model.net_g.state_dict().items()}
    model.feed_data(big_batch(7))
    model.optimize_parameters(2)
    assert sizes == [2, 2, 2, 2]
    name = 'conv_first.weight'  # EMA moved once towards the new weights, by (1 - decay)
    expected = 0.9 * ema_before[name] + 0.1 * model.net_g.state_dict()[name]
    torch.testing.assert_close(model.net_g_ema.state_dict()[name], expected)
    assert not torch.equal(live_before[name], model.net_g.state_dict()[name])


def gradients_at_the_step(tmp_path, accumulate, repeat):
    """The gradients G's and D's optimizers see at the first step (their steps recorded, not taken)."""
    opt = model_opt(tmp_path)
    opt['train']['accumulate'] = accumulate
    torch.manual_seed(0)
    model = build_model(opt)
    seen = {}
    for label, optimizer, net in (('net_g', model.optimizer_g, model.net_g), ('net_d', model.optimizer_d, model.net_d)):
        def record(*args, label=label, net=net, **kwargs):
            seen.update({f'{label}.{n}': p.grad.clone() for n, p in net.named_parameters()})
        optimizer.step = record
    model.feed_data(big_batch(1, repeat=repeat))
    model.optimize_parameters(1)
    return seen, model.get_current_log()


def test_gan_accumulates_generator_and_discriminator_alike(tmp_path):
    """Identical micro-batches have the batch's own relativistic means and BatchNorm statistics, so with them the
    GAN stage in 4 micro-batches must sum to the gradients of one batch, for G and D (tolerance 1e-4 of the
    network's largest gradient: float32 rounding through D's BatchNorm; measured about 1e-5)."""
    whole, whole_log = gradients_at_the_step(tmp_path, 1, repeat=4)
    split, split_log = gradients_at_the_step(tmp_path, 4, repeat=4)
    assert any(n.startswith('net_g.') for n in whole) and any(n.startswith('net_d.') for n in whole)
    # The relativistic loss cannot move the last bias of D (a constant added to every logit cancels in
    # D(real) - mean D(fake)): its gradient is rounding noise, left out of the comparison.
    del whole['net_d.linear2.bias'], split['net_d.linear2.bias']
    assert_relatively_close(split, whole, 1e-4)
    for key in LOSS_TERMS:
        assert math.isclose(split_log[key], whole_log[key], rel_tol=1e-5), key


def test_gan_with_distinct_micro_batches_differs_from_one_batch(tmp_path):
    """The relativistic loss compares each logit with the mean of the other class's logits in its own
    micro-batch, and D's BatchNorm normalises each micro-batch by itself: not the one-batch result (see
    docs/training.md#gradient-accumulation), but the same run on the same data."""
    whole, _ = trained(tmp_path, 'ESRGANRaGANModel', 1, steps=1)
    split, _ = trained(tmp_path, 'ESRGANRaGANModel', 4, steps=1)
    a, b = parameters(split), parameters(whole)
    assert any(not torch.allclose(a[n], b[n], rtol=1e-4, atol=0) for n in a if n.startswith('net_d.'))


# ------------------------------------------------------------------------------ non-finite loss terms
def inject_nan(model, term):
    """Make the loss term ``term`` NaN where its loss is computed, leaving every other term as it is."""
    nan = float('nan')
    if term == 'l_g_pix':
        pix = model.cri_pix
        model.cri_pix = lambda out, gt: pix(out, gt) * nan
    elif term == 'l_g_percep':
        percep = model.perceptual_forward
        model.perceptual_forward = lambda out, gt: percep(out, gt) * nan
    else:
        gan = model.cri_gan

        def poisoned(real, fake, for_discriminator):
            losses = gan(real, fake, for_discriminator=for_discriminator)
            if not for_discriminator:
                return losses * nan if term == 'l_g_gan' else losses
            return tuple(loss * nan if name == term else loss for name, loss in zip(('l_d_real', 'l_d_fake'), losses))
        model.cri_gan = poisoned


@pytest.mark.parametrize('term', LOSS_TERMS)
def test_a_nan_in_one_term_is_named_alone_and_skips_only_its_network(tmp_path, term):
    opt = model_opt(tmp_path)
    opt['train']['max_nonfinite_steps'] = 2
    opt['train']['accumulate'] = 2
    model = build_model(opt)
    inject_nan(model, term)
    g0, d0 = parameters(model), None
    with basicsr_log_messages() as lines:
        model.feed_data(big_batch(1, size=4))
        model.optimize_parameters(5)
    warnings = [line for line in lines if 'non-finite' in line]
    assert len(warnings) == 1
    network = 'generator' if term.startswith('l_g') else 'discriminator'
    assert f'{network}: {term} = nan' in warnings[0] and 'iter 5:' in warnings[0]
    assert 'learning rates: generator 0.001, discriminator 0.001' in warnings[0]
    assert [t for t in LOSS_TERMS if t in warnings[0]] == [term]
    after = parameters(model)
    g_moved = any(not torch.equal(after[n], g0[n]) for n in after if n.startswith('net_g.'))
    d_moved = any(not torch.equal(after[n], g0[n]) for n in after if n.startswith('net_d.'))
    assert (g_moved, d_moved) == ((False, True) if network == 'generator' else (True, False))
    with pytest.raises(TrainingDiverged) as diverged:
        model.feed_data(big_batch(2, size=4))
        model.optimize_parameters(6)
    message = str(diverged.value)
    assert f'2 steps in a row up to iteration 6 had a non-finite loss ({term})' in message
    assert 'train.optim_g.lr and train.optim_d.lr' in message and '\n' not in message


def test_a_finite_step_resets_the_count(tmp_path):
    opt = model_opt(tmp_path, 'ESRGANPSNRModel')
    opt['train']['max_nonfinite_steps'] = 2
    model = build_model(opt)
    pix = model.cri_pix
    for it, poisoned in enumerate((True, False, True, False), start=1):
        model.cri_pix = (lambda out, gt: pix(out, gt) * float('inf')) if poisoned else pix
        model.feed_data(big_batch(it, size=2))
        model.optimize_parameters(it)  # never two in a row: no error
    assert model.nonfinite_steps.in_a_row == 0
