"""The CUDA paths; skipped on machines without CUDA (CI has none)."""
import pytest
import torch

from conftest import tiny_generator

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')


def test_gan_step_on_cuda(tmp_path):
    from basicsr.models import build_model

    from builders import batch, model_opt
    opt = model_opt(tmp_path)
    opt['num_gpu'] = 1
    model = build_model(opt)
    assert next(model.net_g.parameters()).is_cuda and next(model.net_d.parameters()).is_cuda
    model.feed_data(batch())
    model.optimize_parameters(1)
    assert all(isinstance(v, float) for v in model.get_current_log().values())


def test_generator_matches_cpu_on_cuda():
    net = tiny_generator(4)
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        cpu = net(x)
        gpu = net.cuda()(x.cuda()).cpu()
    torch.testing.assert_close(gpu, cpu, rtol=1e-3, atol=1e-3)


# ------------------------------------------------------------------- issue 8: precision on CUDA
def cuda_opt(tmp_path, **train):
    from builders import precision_opt
    opt = precision_opt(tmp_path, 'fp32', **{k: v for k, v in train.items() if k in ('pretrain_network_g',
                                                                                     'pretrain_network_d',
                                                                                     'resume_state')})
    opt['num_gpu'] = 1
    opt['train'].update({k: v for k, v in train.items() if k in ('amp', 'channels_last', 'compile')})
    return opt


def cuda_batch(seed=0):
    from builders import batch
    return batch(seed)


def test_fp16_training_uses_scalers_saves_and_resumes_them(tmp_path):
    from basicsr.models import build_model
    model = build_model(cuda_opt(tmp_path, amp='fp16', channels_last=True))
    assert [s.is_enabled() for s in model.grad_scalers] == [True, True]  # one for G, one for D
    assert model.optimizer_g.defaults['fused'] and model.optimizer_d.defaults['fused']
    assert torch.backends.cudnn.benchmark
    for it in (1, 2, 3):
        model.feed_data(cuda_batch(it))
        model.optimize_parameters(it)
    assert model.lq.is_cuda and model.lq.is_contiguous(memory_format=torch.channels_last)
    model.save(0, 3)
    saved = torch.load(tmp_path / 'states' / '3.state', weights_only=True)
    assert [s['scale'] for s in saved['grad_scalers']] == [s.get_scale() for s in model.grad_scalers]
    torch.manual_seed(0)
    resumed = build_model(cuda_opt(tmp_path, amp='fp16', channels_last=True,
                                   pretrain_network_g=str(tmp_path / 'models' / 'net_g_3.pth'),
                                   pretrain_network_d=str(tmp_path / 'models' / 'net_d_3.pth'),
                                   resume_state=str(tmp_path / 'states' / '3.state')))
    fresh = [s.state_dict() for s in resumed.grad_scalers]
    assert saved['grad_scalers'] != fresh  # 3 steps moved the growth tracker (or the scale)
    resumed.resume_training(saved)
    assert [s.state_dict() for s in resumed.grad_scalers] == [s.state_dict() for s in model.grad_scalers]
    resumed.feed_data({'lq': cuda_batch(5)['lq'][:1]})
    resumed.test()
    assert resumed.output.dtype == torch.float32


def test_fp16_overflowing_gradients_are_skipped_not_divergence(tmp_path):
    from basicsr.models import build_model
    opt = cuda_opt(tmp_path, amp='fp16')
    opt['train']['max_nonfinite_steps'] = 2
    model = build_model(opt)
    before = {k: v.clone() for k, v in model.net_g.state_dict().items()}
    model.net_g.conv_last.weight.register_hook(lambda g: torch.full_like(g, float('inf')))
    for it in (1, 2, 3):
        model.feed_data(cuda_batch(it))
        model.optimize_parameters(it)  # would raise TrainingDiverged if a skipped step counted
    assert all(torch.equal(before[k], v) for k, v in model.net_g.state_dict().items())
    assert model.grad_scalers[0].get_scale() == 65536.0 / 8


@pytest.mark.parametrize('amp', ['bf16', 'fp16'])
def test_reduced_precision_gan_step_tracks_fp32(tmp_path, amp):
    from basicsr.models import build_model
    losses = {}
    for mode in ('fp32', amp):
        torch.manual_seed(0)
        model = build_model(cuda_opt(tmp_path, amp=mode, channels_last=mode != 'fp32'))
        model.feed_data(cuda_batch(1))
        model.optimize_parameters(1)
        losses[mode] = model.get_current_log()
    for key in ('l_g_pix', 'l_g_percep', 'l_g_gan', 'l_d_real', 'l_d_fake'):
        assert losses[amp][key] == pytest.approx(losses['fp32'][key], rel=2e-2), key


def test_compiled_training_on_cuda_saves_clean_names(tmp_path):
    """inductor for real (the CPU tests use aot_eager); the L1 model keeps compilation to one network."""
    from basicsr.models import build_model
    from builders import model_opt
    opt = model_opt(tmp_path, 'ESRGANPSNRModel')
    opt['num_gpu'] = 1
    opt['train'].update(amp='bf16', channels_last=True, compile=True)
    model = build_model(opt)
    for it in (1, 2):
        model.feed_data(cuda_batch(it))
        model.optimize_parameters(it)
    model.save(0, 2)
    saved = torch.load(tmp_path / 'models' / 'net_g_2.pth', weights_only=True)
    assert list(saved['params']) == list(model.net_g.state_dict())
    assert not any('_orig_mod' in k for k in saved['params'])


def test_nccl_ddp_one_process(tmp_path):
    import subprocess

    from conftest import PYTHON, free_port, subprocess_env
    from builders import gan_options, read_log, write_options
    opt = gan_options(tmp_path, name='nccl')
    opt['num_gpu'] = 1
    opt['train'].update(amp='fp16', channels_last=True)
    yml = write_options(tmp_path, opt)
    run = subprocess.run([PYTHON, '-m', 'torch.distributed.run', '--nproc_per_node=1', f'--master_port={free_port()}',
                          '-m', 'esrgan_plugin.train', '-opt', yml, '--launcher', 'pytorch'],
                         cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    log = read_log(tmp_path / 'experiments' / 'nccl')
    assert 'generator weights identical on all 1 ranks' in log
    assert 'training amp fp16, channels_last True' in log
    state = torch.load(tmp_path / 'experiments' / 'nccl' / 'training_states' / '4.state', weights_only=True)
    assert len(state['grad_scalers']) == 2


# ------------------------------------------------------------------ inference (issue 8)
@pytest.mark.parametrize('precision,tolerance', [('fp16', 5e-3), ('bf16', 3e-2)])
def test_reduced_precision_inference_on_cuda(precision, tolerance):
    from esrgan_plugin.inference.runtime import choose_dtype, prepare_generator
    from tiles import tiled_output
    dtype, note = choose_dtype(precision, torch.device('cuda'))
    assert note is None and dtype == {'fp16': torch.float16, 'bf16': torch.bfloat16}[precision]
    net = prepare_generator(tiny_generator(4, seed=6), torch.device('cuda'), dtype)
    assert next(net.parameters()).is_cuda and next(net.parameters()).dtype == dtype
    assert net.conv_first.weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.rand(1, 3, 24, 20)
    with torch.no_grad():
        reference = tiny_generator(4, seed=6)(x)
    out = tiled_output(net, x, tile=8, pad=8)  # tiles run on the GPU, the output comes back to the CPU in fp32
    assert out.device.type == 'cpu' and out.dtype == torch.float32
    assert (out - reference).abs().max() < tolerance


def test_channels_last_fp32_on_cuda_matches_cpu():
    from esrgan_plugin.inference.runtime import prepare_generator
    net = prepare_generator(tiny_generator(4, seed=7), torch.device('cuda'), channels_last=True)
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(net(x.cuda()).cpu(), tiny_generator(4, seed=7)(x), rtol=1e-3, atol=1e-3)


def test_compiled_fp16_inference_on_cuda():
    from esrgan_plugin.inference.runtime import prepare_generator
    from tiles import tiled_output
    net = prepare_generator(tiny_generator(4, seed=8), torch.device('cuda'), torch.float16, compile_mode=True)
    x = torch.rand(1, 3, 24, 20)
    with torch.no_grad():
        reference = tiny_generator(4, seed=8)(x)
    assert (tiled_output(net, x, tile=8, pad=8) - reference).abs().max() < 5e-3


def test_infer_command_fp16_on_cuda(tmp_path):
    import subprocess

    import cv2
    import numpy as np

    from conftest import PYTHON, subprocess_env
    net = tiny_generator(4, seed=9)
    torch.save({'params': net.state_dict()}, tmp_path / 'model.pth')
    bgr = np.random.default_rng(0).integers(0, 256, (20, 18, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / 'a.png'), bgr)
    result = subprocess.run([PYTHON, '-m', 'esrgan_plugin.infer', '-i', 'a.png', '-o', 'out', '-m', 'model.pth',
                             '--precision', 'fp16', '--device', 'cuda', '--tile', '8'], capture_output=True,
                            text=True, env=subprocess_env(), timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    x = torch.from_numpy(np.ascontiguousarray(bgr[..., ::-1].transpose(2, 0, 1)) / np.float32(255))[None]
    with torch.no_grad():
        expected = np.round(net(x)[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255)[..., ::-1]
    assert np.abs(cv2.imread(str(tmp_path / 'out' / 'a_out.png')) - expected).max() <= 2
