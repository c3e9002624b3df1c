import pytest
import torch
from basicsr.archs.rrdbnet_arch import RRDBNet as BasicsrRRDBNet
from basicsr.utils.registry import ARCH_REGISTRY

from conftest import TINY_ARCH, tiny_generator
from esrgan_plugin.archs.rrdbnet_arch import ESRGANRRDBNet


@pytest.mark.parametrize('scale', [1, 2, 4, 8])
def test_forward_backward_shape(scale):
    net = tiny_generator(scale).train()
    x = torch.rand(2, 3, 8, 12, requires_grad=True)
    out = net(x)
    assert out.shape == (2, 3, 8 * scale, 12 * scale)
    out.mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
    assert x.grad is not None


def test_default_parameter_count_is_the_papers():
    net = ESRGANRRDBNet()
    assert sum(p.numel() for p in net.parameters()) == 16_697_987


def test_registered_under_plugin_name():
    assert ARCH_REGISTRY.get('ESRGANRRDBNet') is ESRGANRRDBNet


def test_no_batch_norm_and_scaled_init():
    torch.manual_seed(0)
    net = ESRGANRRDBNet(num_feat=64, num_block=1, num_grow_ch=32)
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in net.modules())
    w = net.body[0].rdb1.conv5.weight  # fan_in = (64 + 4*32) * 9
    kaiming_std = (2.0 / w[0].numel())**0.5
    assert w.std().item() == pytest.approx(0.1 * kaiming_std, rel=0.05)
    assert torch.count_nonzero(net.body[0].rdb1.conv5.bias) == 0


@pytest.mark.parametrize('scale', [1, 2, 4])
def test_checkpoints_exchange_with_basicsr(scale):
    ours = tiny_generator(scale, seed=1)
    torch.manual_seed(2)
    theirs = BasicsrRRDBNet(num_in_ch=3, num_out_ch=3, scale=scale, **TINY_ARCH).eval()
    x = torch.rand(1, 3, 8, 8)

    theirs.load_state_dict(ours.state_dict(), strict=True)
    assert torch.equal(theirs(x), ours(x))

    torch.manual_seed(3)
    fresh = BasicsrRRDBNet(num_in_ch=3, num_out_ch=3, scale=scale, **TINY_ARCH).eval()
    ours.load_state_dict(fresh.state_dict(), strict=True)
    assert torch.equal(fresh(x), ours(x))


def test_unsupported_scale_is_refused():
    with pytest.raises(ValueError, match='scale'):
        ESRGANRRDBNet(scale=3)
