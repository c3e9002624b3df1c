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
