import copy

import pytest
import torch
from basicsr.models import build_model

from conftest import TINY_ARCH
from builders import batch, model_opt


def snapshot(net):
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def changed(before, net):
    return any(not torch.equal(before[k], v) for k, v in net.state_dict().items() if v.is_floating_point())


def test_one_gan_step_updates_g_d_and_ema_and_logs(tmp_path):
    opt = model_opt(tmp_path)
    frozen = copy.deepcopy(opt)
    model = build_model(opt)
    g0, d0, ema0 = snapshot(model.net_g), snapshot(model.net_d), snapshot(model.net_g_ema)
    model.feed_data(batch())
    model.optimize_parameters(1)
    assert changed(g0, model.net_g) and changed(d0, model.net_d) and changed(ema0, model.net_g_ema)
    for key in ('l_g_pix', 'l_g_percep', 'l_g_gan', 'l_d_real', 'l_d_fake'):
        assert key in model.get_current_log() and isinstance(model.get_current_log()[key], float)
    # EMA moved towards the new weights by (1 - decay)
    name = 'conv_first.weight'
    expected = 0.9 * ema0[name] + 0.1 * model.net_g.state_dict()[name]
    torch.testing.assert_close(model.net_g_ema.state_dict()[name], expected)
    assert opt == frozen, 'the option dict must not be modified'


def test_discriminator_runs_three_times_per_step(tmp_path):
    model = build_model(model_opt(tmp_path))
    calls = []
    model.net_d.register_forward_hook(lambda *_: calls.append(1))
    model.feed_data(batch())
    model.optimize_parameters(1)
    assert len(calls) == 3  # basicsr's ESRGANModel needs 5


def test_non_finite_loss_skips_the_update_then_stops(tmp_path):
    opt = model_opt(tmp_path, 'ESRGANPSNRModel')
    opt['train']['max_nonfinite_steps'] = 2
    model = build_model(opt)
    g0 = snapshot(model.net_g)
    bad = batch()
    bad['gt'][0, 0, 0, 0] = float('nan')
    model.feed_data(bad)
    model.optimize_parameters(1)
    assert not changed(g0, model.net_g)
    from esrgan_plugin.models.nonfinite_losses import TrainingDiverged
    with pytest.raises(TrainingDiverged, match='2 steps in a row up to iteration 2 had a non-finite loss \(l_pix\)'):
        model.optimize_parameters(2)


def test_resume_restores_generator_ema_and_discriminator(tmp_path):
    from basicsr.utils import check_resume
    model = build_model(model_opt(tmp_path))
    for it in range(1, 3):
        model.feed_data(batch(it))
        model.optimize_parameters(it)
    model.save(0, 2)
    saved_g, saved_ema, saved_d = snapshot(model.net_g), snapshot(model.net_g_ema), snapshot(model.net_d)
    assert changed(saved_ema, model.net_g)  # EMA and live weights differ, so the test can tell them apart

    opt = model_opt(tmp_path)
    opt['path']['resume_state'] = str(tmp_path / 'states' / '2.state')
    state = torch.load(opt['path']['resume_state'], weights_only=True)
    check_resume(opt, state['iter'])  # what basicsr's launcher does: points pretrain_network_* at our files
    resumed = build_model(opt)
    resumed.resume_training(state)
    for ref, net in ((saved_g, resumed.net_g), (saved_ema, resumed.net_g_ema), (saved_d, resumed.net_d)):
        assert not changed(ref, net)
    assert resumed.optimizer_g.state_dict()['state'][0]['step'] == 2
    assert resumed.schedulers[0].last_epoch == model.schedulers[0].last_epoch


def unet_opt(tmp_path, **train):
    """basicsr's U-Net discriminator with spectral norm (Real-ESRGAN's), tiny."""
    opt = model_opt(tmp_path)
    opt['network_d'] = {'type': 'UNetDiscriminatorSN_basicsr', 'num_in_ch': 3, 'num_feat': 4}
    opt['train'].update(train)
    return opt


def test_unet_discriminator_trains_with_the_ragan_loss(tmp_path):
    from basicsr.archs.discriminator_arch import UNetDiscriminatorSN
    torch.manual_seed(0)  # the networks' initialisation (the falling loss holds for other seeds too)
    model = build_model(unet_opt(tmp_path))
    assert isinstance(model.net_d, UNetDiscriminatorSN)
    shapes = []
    model.net_d.register_forward_hook(lambda _m, _i, out: shapes.append(tuple(out.shape)))
    g0, d0 = snapshot(model.net_g), snapshot(model.net_d)
    d_losses = []
    fixed = batch(0)
    for it in range(1, 9):  # the same batch: D learns to tell it from G's output, its loss falls
        model.feed_data(fixed)
        model.optimize_parameters(it)
        log = model.get_current_log()
        assert all(torch.isfinite(torch.tensor(v)) for v in log.values()), log
        d_losses.append(log['l_d_real'] + log['l_d_fake'])
    assert set(shapes) == {(2, 1, 32, 32)}  # one logit per pixel
    assert changed(g0, model.net_g) and changed(d0, model.net_d)
    assert d_losses[-1] < d_losses[0]


def test_ldl_adds_its_term_from_the_ema_generator(tmp_path):
    from basicsr.losses.loss_util import get_refined_artifact_map
    model = build_model(unet_opt(tmp_path, ldl_opt={'type': 'L1Loss', 'loss_weight': 2.0}))
    data = batch(1)
    model.feed_data(data)
    with torch.no_grad():  # what the step will see: the generator and its EMA before the update
        output, output_ema = model.net_g(data['lq']), model.net_g_ema(data['lq'])
    weight = get_refined_artifact_map(data['gt'], output, output_ema, 7)  # basicsr's RealESRGANModel's term
    expected = 2.0 * (weight * output - weight * data['gt']).abs().mean()
    model.optimize_parameters(1)
    assert model.get_current_log()['l_g_ldl'] == pytest.approx(expected.item(), rel=1e-5)
