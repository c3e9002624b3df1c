import pytest
import torch
from basicsr.archs.discriminator_arch import VGGStyleDiscriminator

from esrgan_plugin.archs.discriminator_arch import ESRGANVGGDiscriminator


@pytest.mark.parametrize('size', [32, 64, 96, 128, 192])
def test_any_multiple_of_32(size):
    net = ESRGANVGGDiscriminator(num_feat=4, input_size=size)
    out = net(torch.rand(3, 3, size, size))
    assert out.shape == (3, 1)
    out.sum().backward()


def test_same_network_as_basicsr_at_128():
    torch.manual_seed(0)
    theirs = VGGStyleDiscriminator(num_in_ch=3, num_feat=8, input_size=128).eval()
    ours = ESRGANVGGDiscriminator(num_feat=8, input_size=128).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.rand(2, 3, 128, 128)
    torch.testing.assert_close(ours(x), theirs(x))


def test_bad_sizes_are_explained():
    with pytest.raises(ValueError, match='multiple of 32'):
        ESRGANVGGDiscriminator(input_size=100)
    with pytest.raises(ValueError, match='gt_size'):
        ESRGANVGGDiscriminator(num_feat=4, input_size=64)(torch.rand(1, 3, 96, 96))
