"""train.amp / train.channels_last / train.compile and their val.* overrides, on the CPU.

bf16 convolutions are slow on CPUs without native bf16 (this test machine among them), so the networks here
are tiny and the perceptual loss stops at conv1_1. torch.compile is checked with the 'aot_eager' backend
(Dynamo + AOTAutograd, everything but inductor's code generation, which takes ~2 minutes per tiny network on
this CPU); tests/test_cuda.py compiles with inductor.
"""
import copy
import glob
import math
import os

import cv2
import numpy as np
import pytest
import torch
from basicsr.models import build_model

from conftest import REPO_ROOT, TINY_ARCH
from builders import MODES, precision_opt
from builders import batch, model_opt

from esrgan_plugin.training import precision
from esrgan_plugin.errors import UserFacingError



@pytest.fixture
def aot_eager(monkeypatch):
    monkeypatch.setattr(precision, 'COMPILE_BACKEND', 'aot_eager')


def state(net):
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def tiny_val_loader(tmp_path):
    """basicsr's PairedImageDataset on two 32x32 / 8x8 PNG pairs, as validation reads them."""
    from basicsr.data.paired_image_dataset import PairedImageDataset
    rng = np.random.default_rng(0)
    for kind, size in (('gt', 32), ('lq', 8)):
        os.makedirs(tmp_path / 'val' / kind, exist_ok=True)
    for i in range(2):
        hr = cv2.GaussianBlur((rng.random((32, 32, 3)) * 255).astype(np.uint8), (5, 5), 1.5)
        cv2.imwrite(str(tmp_path / 'val' / 'gt' / f'{i}.png'), hr)
        cv2.imwrite(str(tmp_path / 'val' / 'lq' / f'{i}.png'), cv2.resize(hr, (8, 8), interpolation=cv2.INTER_AREA))
    dataset = PairedImageDataset({'name': 'tinyval', 'phase': 'val', 'scale': 4, 'io_backend': {'type': 'disk'},
                                  'dataroot_gt': str(tmp_path / 'val' / 'gt'),
                                  'dataroot_lq': str(tmp_path / 'val' / 'lq'), 'filename_tmpl': '{}'})
    return torch.utils.data.DataLoader(dataset, batch_size=1)


# ------------------------------------------------------------------------------------------ options
def test_options_parse_and_bad_values_are_refused_in_one_line():
    opt = {'train': {'amp': 'bf16', 'channels_last': True, 'compile': 'max-autotune'}, 'val': {'amp': 'fp32'}}
    frozen = copy.deepcopy(opt)
    train = precision.training_precision(opt)
    assert (train.amp, train.channels_last, train.compile_mode) == (torch.bfloat16, True, 'max-autotune')
    evaluation = precision.evaluation_precision(opt)  # val.amp overrides, the rest is inherited
    assert (evaluation.amp, evaluation.channels_last, evaluation.compile_mode) == (None, True, 'max-autotune')
    assert precision.training_precision({}) == precision.Precision()
    assert precision.parse_compile(True, 'x') == 'default' and precision.parse_compile(False, 'x') is None
    assert opt == frozen
    for bad, match in (({'amp': 'float16'}, 'train.amp .* use one of fp32, bf16, fp16'),
                       ({'channels_last': 'yes'}, 'train.channels_last .* write true or false'),
                       ({'compile': 'fast'}, 'train.compile .* use false, true or one of default')):
        with pytest.raises(UserFacingError, match=match):
            precision.training_precision({'train': bad})


def test_fp16_is_refused_on_the_cpu_at_model_init(tmp_path):
    opt = model_opt(tmp_path, 'ESRGANPSNRModel')
    opt['train']['amp'] = 'fp16'
    with pytest.raises(UserFacingError, match='fp16 needs a CUDA GPU; on the CPU use bf16'):
        build_model(opt)
    opt = model_opt(tmp_path, 'ESRGANPSNRModel')
    opt['val'] = {'amp': 'fp16'}  # validation's override is checked as well
    with pytest.raises(UserFacingError, match='val.amp .* fp16 needs a CUDA GPU'):
        build_model(opt)


def test_fp16_is_refused_by_the_train_command_before_anything_is_written(tmp_path, monkeypatch, capsys):
    """In-process (a subprocess costs a minute on a loaded machine): one line, exit code 1."""
    from builders import gan_options, write_options

    from esrgan_plugin.train import main
    opt = gan_options(tmp_path, name='fp16cpu')
    opt['train']['amp'] = 'fp16'
    yml = write_options(tmp_path, opt)
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()  # the LMDB tool's progress
    with pytest.raises(SystemExit) as stopped:
        main(['-opt', yml])
    assert stopped.value.code == 1
    assert capsys.readouterr().err == ('error: train.amp fp16 needs a CUDA GPU; on the CPU use bf16 (fast where '
                                       'the CPU has native bf16) or fp32.\n')
    assert not (tmp_path / 'experiments').exists() and not (tmp_path / 'tb_logger').exists()


# -------------------------------------------------------------- every mode: train, save, resume, validate
@pytest.mark.parametrize('mode', list(MODES))
def test_mode_trains_saves_resumes_and_validates(tmp_path, mode, aot_eager):
    opt = precision_opt(tmp_path, mode)
    frozen = copy.deepcopy(opt)
    torch.manual_seed(0)  # the random stand-in VGG19 must be the same in the resumed model
    model = build_model(opt)
    assert opt == frozen, 'the option dict must not be modified'
    if MODES[mode].get('channels_last'):
        for net in (model.net_g, model.net_g_ema, model.net_d, model.cri_perceptual.vgg):
            weight = next(p for p in net.parameters() if p.dim() == 4)
            assert weight.is_contiguous(memory_format=torch.channels_last), type(net).__name__
    if MODES[mode].get('compile'):
        assert model.net_g_forward is not model.net_g and model.net_d_forward is not model.net_d
    g0, d0 = state(model.net_g), state(model.net_d)
    for it in (1, 2):
        model.feed_data(batch(it))
        model.optimize_parameters(it)
        assert all(math.isfinite(v) for v in model.get_current_log().values())
    assert any(not torch.equal(g0[k], v) for k, v in model.net_g.state_dict().items())
    assert any(not torch.equal(d0[k], v) for k, v in model.net_d.state_dict().items() if v.is_floating_point())

    model.save(0, 2)
    saved = torch.load(tmp_path / 'models' / 'net_g_2.pth', weights_only=True)
    assert set(saved) == {'params', 'params_ema'}
    assert list(saved['params']) == list(model.net_g.state_dict())  # no '_orig_mod.' or 'module.' prefixes
    assert all(v.is_contiguous() for v in saved['params'].values())
    assert_same_weights(saved['params_ema'], model.net_g_ema.state_dict())

    # resume, then one more step in both: a resumed run continues exactly
    opt2 = precision_opt(tmp_path, mode, pretrain_network_g=str(tmp_path / 'models' / 'net_g_2.pth'),
                         pretrain_network_d=str(tmp_path / 'models' / 'net_d_2.pth'),
                         resume_state=str(tmp_path / 'states' / '2.state'))
    torch.manual_seed(0)
    resumed = build_model(opt2)
    resumed.resume_training(torch.load(opt2['path']['resume_state'], weights_only=True))
    for a, b in ((model.net_g, resumed.net_g), (model.net_g_ema, resumed.net_g_ema), (model.net_d, resumed.net_d)):
        assert_same_weights(state(a), state(b))
    for m in (model, resumed):
        m.feed_data(batch(3))
        m.optimize_parameters(3)
    for a, b in ((model.net_g, resumed.net_g), (model.net_g_ema, resumed.net_g_ema), (model.net_d, resumed.net_d)):
        torch.testing.assert_close(state(b), state(a), rtol=0, atol=1e-6)

    # validation: test() in validation's precision, output float32 for the metrics
    lq = batch(4)['lq'][:1]
    resumed.feed_data({'lq': lq})
    resumed.test()
    assert resumed.output.dtype == torch.float32 and resumed.output.is_contiguous()
    reference = copy.deepcopy(resumed.net_g_ema).float().to(memory_format=torch.contiguous_format)
    with torch.no_grad():
        expected = reference(lq)
    tolerance = 1e-5 if 'amp' not in MODES[mode] else 3e-2  # bf16: 8 bits of mantissa
    torch.testing.assert_close(resumed.output, expected, rtol=0, atol=tolerance)
    resumed.validation(tiny_val_loader(tmp_path), 3, None, save_img=False)
    assert math.isfinite(resumed.metric_results['psnr']) and resumed.metric_results['psnr'] > 5


def test_bare_model_unwraps_a_compiled_network(tmp_path, aot_eager):
    model = build_model(model_opt(tmp_path, 'ESRGANPSNRModel'))
    compiled = torch.compile(model.net_g, backend='aot_eager')
    assert model.get_bare_model(compiled) is model.net_g


# ------------------------------------------------------------------ gradient scaler (fp16's), on the CPU
def enable_cpu_grad_scalers(model, **kwargs):
    """fp16 itself needs CUDA; a CPU scaler (float32 gradients) exercises the same code path."""
    model.grad_scalers = [torch.amp.GradScaler('cpu', **kwargs) for _ in model.optimizers]


def test_scaler_skipped_steps_are_not_divergence_and_the_scaler_state_resumes(tmp_path):
    opt = precision_opt(tmp_path, 'fp32', 'ESRGANPSNRModel')
    opt['train']['max_nonfinite_steps'] = 2
    model = build_model(opt)
    enable_cpu_grad_scalers(model, init_scale=1024.0, growth_interval=1)
    g0 = state(model.net_g)
    # Overflowing gradients with a finite loss: what fp16 produces when the scale is too high.
    hook = model.net_g.conv_last.weight.register_hook(lambda g: torch.full_like(g, float('inf')))
    for it in (1, 2, 3):  # more than max_nonfinite_steps in a row: must not stop training
        model.feed_data(batch(it))
        model.optimize_parameters(it)
    assert_same_weights(g0, state(model.net_g))  # every step skipped, EMA untouched too
    assert model.grad_scalers[0].get_scale() == 1024.0 / 8
    hook.remove()
    model.feed_data(batch(4))
    model.optimize_parameters(4)  # finite gradients: a real step, and the scale grows back
    assert any(not torch.equal(g0[k], v) for k, v in model.net_g.state_dict().items())
    assert model.grad_scalers[0].get_scale() == 1024.0 / 4

    model.save(0, 4)
    saved = torch.load(tmp_path / 'states' / '4.state', weights_only=True)
    assert saved['grad_scalers'][0]['scale'] == 1024.0 / 4
    resumed = build_model(precision_opt(tmp_path, 'fp32', 'ESRGANPSNRModel',
                                        pretrain_network_g=str(tmp_path / 'models' / 'net_g_4.pth')))
    enable_cpu_grad_scalers(resumed)
    resumed.resume_training(saved)
    assert resumed.grad_scalers[0].state_dict() == model.grad_scalers[0].state_dict()


def test_fp32_training_state_has_no_scaler(tmp_path):
    model = build_model(precision_opt(tmp_path, 'bf16', 'ESRGANPSNRModel'))
    assert not any(s.is_enabled() for s in model.grad_scalers)  # bf16 needs none
    model.save(0, 1)
    assert 'grad_scalers' not in torch.load(tmp_path / 'states' / '1.state', weights_only=True)


# -------------------------------------------------------------------------- bf16 against fp32: accuracy
def test_bf16_training_tracks_fp32_from_the_same_seed(tmp_path):
    """Tiny L1 run: the losses of every step and the final weights stay close to fp32's."""
    runs = {}
    for mode in ('fp32', 'bf16-channels_last'):
        torch.manual_seed(0)
        model = build_model(precision_opt(tmp_path, mode, 'ESRGANPSNRModel'))
        losses = []
        for it in range(1, 11):
            model.feed_data(batch(it % 3))
            model.optimize_parameters(it)
            losses.append(model.get_current_log()['l_pix'])
        runs[mode] = losses, state(model.net_g)
    (fp32_losses, fp32_weights), (bf16_losses, bf16_weights) = runs['fp32'], runs['bf16-channels_last']
    assert fp32_losses[-1] < fp32_losses[0]  # it does learn
    np.testing.assert_allclose(bf16_losses, fp32_losses, rtol=1e-2)
    assert any(b != f for b, f in zip(bf16_losses, fp32_losses))  # and it really ran in bf16
    for k in fp32_weights:  # 10 Adam steps of lr 1e-3 move weights by up to ~1e-2; bf16 changes that little
        torch.testing.assert_close(bf16_weights[k].contiguous(), fp32_weights[k], rtol=0, atol=2e-3)


def test_gan_pixel_loss_check_script(capsys):
    """scripts/check_amp_training.py: 200 iterations by default (0.57 % apart on this CPU, docs/benchmarks.md#accuracy-of-reduced-precision); here a short
    run of it, in-process because a subprocess costs a minute of start-up on a loaded machine."""
    import importlib.util
    spec = importlib.util.spec_from_file_location('check_amp_training',
                                                  os.path.join(REPO_ROOT, 'scripts', 'check_amp_training.py'))
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(['--iters', '8', '--last', '4', '--tolerance', '0.05']) == 0
    out = capsys.readouterr().out
    assert 'within 5.0 %: yes' in out
    fp32, bf16 = (float(line.split()[-4]) for line in out.splitlines() if line.startswith('  '))
    assert abs(bf16 - fp32) / fp32 < 0.05  # the script's verdict, recomputed from what it printed


def test_bf16_matches_fp32_on_trained_weights(tmp_path, shared_data):
    """RealESRGAN_x4plus (23 blocks) on a 32x32 crop of Set14 baboon through the model's test(): 8-bit
    outputs of validation in bf16 + channels_last against fp32, RGB PSNR >= 40 dB.

    Baboon's fur is the hardest case measured: 41.9 dB RGB (43.3 dB Y); Set5 baby 46.6, comic 50.1,
    lenna 53.9 dB RGB on crops of the same size (docs/benchmarks.md#accuracy-of-reduced-precision)."""
    weights = os.path.join(shared_data, 'weights', 'RealESRGAN_x4plus.pth')
    if not os.path.isfile(weights):
        pytest.skip(f'{weights} is not present')
    lr = cv2.imread(os.path.join(shared_data, 'Set14', 'LRbicx4', 'baboon.png'))[8:40, 8:40, ::-1]
    lq = torch.from_numpy(np.ascontiguousarray(lr).transpose(2, 0, 1)).float().unsqueeze(0) / 255
    outputs = {}
    for amp, channels_last in (('fp32', False), ('bf16', True)):
        opt = {'name': 'trained', 'model_type': 'ESRGANPSNRModel', 'scale': 4, 'num_gpu': 0, 'dist': False,
               'rank': 0, 'world_size': 1, 'is_train': False,
               'network_g': {'type': 'ESRGANRRDBNet', 'num_in_ch': 3, 'num_out_ch': 3, 'scale': 4},
               'path': {'pretrain_network_g': weights, 'param_key_g': None, 'resume_state': None},
               'val': {'amp': amp, 'channels_last': channels_last}}
        model = build_model(opt)
        model.feed_data({'lq': lq})
        model.test()
        outputs[amp] = model.output.clamp(0, 1).mul(255).round()
    mse = torch.mean((outputs['bf16'] - outputs['fp32']) ** 2).item()
    assert mse > 0  # it did run in bf16
    assert 10 * math.log10(255 ** 2 / mse) >= 40


def test_the_test_command_runs_in_val_precision(tmp_path, shared_data, monkeypatch, capsys):
    """python -m esrgan_plugin.test with val.amp bf16 + channels_last on Set5: logged, and the SR images within
    a few 8-bit levels of basicsr's RRDBNet in fp32."""
    import yaml
    from basicsr.archs.rrdbnet_arch import RRDBNet

    from conftest import run_command, tiny_generator
    from esrgan_plugin import test as evaluation_command
    net = tiny_generator(scale=4, seed=3)
    torch.save({'params': net.state_dict()}, tmp_path / 'tiny.pth')
    with open(os.path.join(REPO_ROOT, 'options', 'test_set5.yml'), encoding='utf-8') as f:
        opt = yaml.safe_load(f)
    opt.update(name='tiny_bf16', num_gpu=0)
    for key in ('dataroot_gt', 'dataroot_lq'):
        opt['datasets']['test_1'][key] = os.path.join(shared_data, 'Set5', os.path.basename(
            opt['datasets']['test_1'][key]))
    opt['network_g'] = {'type': 'ESRGANRRDBNet', **TINY_ARCH}
    opt['path']['pretrain_network_g'] = str(tmp_path / 'tiny.pth')
    opt['val'].update(amp='bf16', channels_last=True)
    (tmp_path / 'test.yml').write_text(yaml.safe_dump(opt))
    monkeypatch.chdir(tmp_path)
    run = run_command(capsys, evaluation_command.main, '-opt', tmp_path / 'test.yml')
    assert run.code == 0, run.err[-3000:]
    log = open(glob.glob(str(tmp_path / 'results' / 'tiny_bf16' / 'test_*.log'))[0]).read()
    assert 'validation/test amp bf16, channels_last True' in log
    reference = RRDBNet(num_in_ch=3, num_out_ch=3, scale=4, **TINY_ARCH).eval()
    reference.load_state_dict(net.state_dict())
    for name in ('baby', 'bird'):
        lr = cv2.imread(os.path.join(shared_data, 'Set5', 'LRbicx4', f'{name}.png'))[..., ::-1]
        x = torch.from_numpy(np.ascontiguousarray(lr).transpose(2, 0, 1)).float().unsqueeze(0) / 255
        with torch.no_grad():
            expected = reference(x)[0].clamp(0, 1).mul(255).round().numpy().transpose(1, 2, 0)[..., ::-1]
        sr = cv2.imread(str(tmp_path / 'results' / 'tiny_bf16' / 'visualization' / 'Set5' / f'{name}_tiny_bf16.png'))
        diff = np.abs(sr.astype(np.float64) - expected)
        assert diff.max() <= 4 and (diff > 1).mean() < 0.01, (name, diff.max(), (diff > 1).mean())
