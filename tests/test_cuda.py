"""The CUDA paths; skipped on machines without CUDA (CI has none)."""
import pytest
import torch

from conftest import tiny_generator

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')


def test_gan_step_on_cuda(tmp_path):
    from basicsr.models import build_model

    from test_ragan_model import batch, model_opt
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


# ------------------------------------------------------------------ inference (issue 8)
@pytest.mark.parametrize('precision,tolerance', [('fp16', 5e-3), ('bf16', 3e-2)])
def test_reduced_precision_inference_on_cuda(precision, tolerance):
    from esrgan_plugin.fast_inference import choose_dtype, prepare_generator
    from esrgan_plugin.tiling import upscale_tiled
    dtype, note = choose_dtype(precision, torch.device('cuda'))
    assert note is None and dtype == {'fp16': torch.float16, 'bf16': torch.bfloat16}[precision]
    net = prepare_generator(tiny_generator(4, seed=6), torch.device('cuda'), dtype)
    assert next(net.parameters()).is_cuda and next(net.parameters()).dtype == dtype
    assert net.conv_first.weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.rand(1, 3, 24, 20)
    with torch.no_grad():
        reference = tiny_generator(4, seed=6)(x)
    out = upscale_tiled(net, x, tile=8, pad=8)  # tiles run on the GPU, the output comes back to the CPU in fp32
    assert out.device.type == 'cpu' and out.dtype == torch.float32
    assert (out - reference).abs().max() < tolerance


def test_channels_last_fp32_on_cuda_matches_cpu():
    from esrgan_plugin.fast_inference import prepare_generator
    net = prepare_generator(tiny_generator(4, seed=7), torch.device('cuda'), channels_last=True)
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(net(x.cuda()).cpu(), tiny_generator(4, seed=7)(x), rtol=1e-3, atol=1e-3)


def test_compiled_fp16_inference_on_cuda():
    from esrgan_plugin.fast_inference import prepare_generator
    from esrgan_plugin.tiling import upscale_tiled
    net = prepare_generator(tiny_generator(4, seed=8), torch.device('cuda'), torch.float16, compile_mode=True)
    x = torch.rand(1, 3, 24, 20)
    with torch.no_grad():
        reference = tiny_generator(4, seed=8)(x)
    assert (upscale_tiled(net, x, tile=8, pad=8) - reference).abs().max() < 5e-3


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
