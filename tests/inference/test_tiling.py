"""Tiled upscaling equals whole-image upscaling once the padding covers the receptive field."""
import pytest
import torch

from conftest import TINY_ARCH, tiny_generator
from esrgan_plugin.inference import tiling
from esrgan_plugin.inference.tiling import count_tiles, receptive_radius
from tiles import tiled_output


def strong_generator(scale: int, seed: int = 1) -> torch.nn.Module:
    """A tiny generator in float64 whose far pixels matter.

    The paper's init (weights x0.1, residuals x0.2) makes distant pixels' influence
    vanish below float32 rounding, so a broken padding would go unnoticed; unit-
    variance weights and float64 make every pixel of the receptive field count.
    """
    net = tiny_generator(scale=scale, seed=seed).double()
    with torch.no_grad():
        for conv in net.modules():
            if isinstance(conv, torch.nn.Conv2d):
                fan_in = conv.in_channels * 9
                conv.weight.normal_(0, (2 / fan_in)**0.5)
                conv.bias.normal_(0, 0.1)
    return net


def measured_radius(net: torch.nn.Module, size: int = 80) -> int:
    """Farthest input pixel with a non-zero gradient on any output pixel of the centre LR pixel (float64)."""
    net = net.double()
    x = torch.rand(1, 3, size, size, dtype=torch.float64, requires_grad=True)
    out = net(x)
    centre, scale, worst = size // 2, net.scale, 0
    for dy in range(scale):  # every phase of the upsampling, the worst case is not always the first
        for dx in range(scale):
            x.grad = None
            out[0, 0, centre * scale + dy, centre * scale + dx].backward(retain_graph=True)
            rows, cols = (x.grad[0].abs().sum(0) > 0).nonzero(as_tuple=True)
            worst = max(worst, int((rows - centre).abs().max()), int((cols - centre).abs().max()))
    return worst


@pytest.mark.parametrize('num_block', [1, 2])
def test_receptive_radius_is_exact_for_x4(num_block):
    net = tiny_generator(scale=4, num_block=num_block)
    assert measured_radius(net) == receptive_radius(num_block, 4) == 15 * num_block + 4


def test_receptive_radius_bounds_pixel_unshuffling_nets():
    net = tiny_generator(scale=2, num_block=1)
    assert measured_radius(net) <= receptive_radius(1, 2)


# Each image is longer than one window (tile + 2 pad) along at least one axis, so that it really is cut.
@pytest.mark.parametrize('scale,size', [(4, (29, 101)), (2, (37, 170)), (1, (21, 310)), (8, (89, 29))])
def test_tiled_equals_untiled_with_enough_padding(scale, size):
    net = strong_generator(scale)
    pad = receptive_radius(TINY_ARCH['num_block'], scale)
    x = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with torch.no_grad():
        whole = tiled_output(net, x, tile=0, pad=0)
        calls = []
        tiled = tiled_output(net, x, tile=16, pad=pad, progress=lambda: calls.append(1))
    assert whole.shape == (1, 3, size[0] * scale, size[1] * scale) == tiled.shape
    assert len(calls) == count_tiles(*size, 16, pad) > 1
    assert (tiled - whole).abs().max() < 1e-9 * whole.abs().max()


def test_whole_image_equals_the_net_itself():
    net = tiny_generator(scale=4)
    x = torch.rand(1, 3, 13, 11)
    with torch.no_grad():
        assert torch.equal(tiled_output(net, x, tile=0, pad=0), net(x))


def test_too_little_padding_shows_seams():
    # The influence of far pixels decays about tenfold every two pixels of padding (this net: 8.6 at pad 0,
    # 1e-3 at 8, 2e-10 at 20, float64 noise from 28), so a short pad must show up well above 1e-9.
    net = strong_generator(4)
    x = torch.rand(1, 3, 61, 47, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    whole = tiled_output(net, x, tile=0, pad=0)
    short = tiled_output(net, x, tile=16, pad=6)
    assert (short - whole).abs().max() > 1e-4 * whole.abs().max()


def test_tiled_paper_init_net_writes_the_same_8bit_image():
    """With the paper's init and float32, the default padding gives the same 8-bit output (ties aside)."""
    net = tiny_generator(scale=4, seed=1)
    x = torch.rand(1, 3, 90, 83, generator=torch.Generator().manual_seed(0))
    whole = (tiled_output(net, x, tile=0, pad=0).clamp(0, 1) * 255).round()
    tiled = (tiled_output(net, x, tile=16, pad=32).clamp(0, 1) * 255).round()
    assert (tiled - whole).abs().max() <= 1 and (tiled != whole).float().mean() < 1e-3


def test_odd_sizes_for_pixel_unshuffling_nets_match_a_reflect_padded_run():
    net = tiny_generator(scale=2)
    x = torch.rand(1, 3, 9, 7)
    padded = torch.nn.functional.pad(x, (0, 1, 0, 1), mode='reflect')
    with torch.no_grad():
        expected = net(padded)[..., :18, :14]
        assert torch.equal(tiled_output(net, x, tile=0, pad=0), expected)


def test_tiles_run_in_the_nets_dtype_and_come_back_in_the_inputs():
    net = tiny_generator(scale=4).to(torch.bfloat16)
    x = torch.rand(1, 3, 20, 20)
    out = tiled_output(net, x, tile=8, pad=4)
    assert out.dtype == torch.float32 and out.shape == (1, 3, 80, 80)
    with torch.no_grad():
        reference = tiny_generator(scale=4)(x)
    assert (out - reference).abs().max() < 0.1  # bf16 keeps ~3 significant digits


def test_windows_slide_inside_the_image_and_all_have_one_size():
    seen = []

    def recording_net(x):
        seen.append(tuple(x.shape[-2:]))
        return net(x)
    net = tiny_generator(scale=4)
    recording_net.scale, recording_net.parameters = 4, net.parameters
    x = torch.rand(1, 3, 50, 37)
    with torch.no_grad():
        tiled = tiled_output(recording_net, x, tile=16, pad=4)
    assert seen == [(24, 24)] * count_tiles(50, 37, 16, 4) and len(seen) == 4 * 3
    assert tiled.shape == (1, 3, 200, 148)
    assert count_tiles(50, 37, 16, 20) == 1  # one window covers the image: no splitting


# ------------------------------------------------------------------ the upsampling stage in bands
@pytest.mark.parametrize('scale,size', [(4, (23, 19)), (2, (30, 26)), (1, (36, 28)), (8, (13, 11))])
@pytest.mark.parametrize('tile,pad', [(0, 0), (8, 4)])
def test_upsampling_in_bands_gives_the_same_output(monkeypatch, scale, size, tile, pad):
    """Bands a few feature rows high, cropped to the core's columns: the values of one pass per window.

    Float64 rounding aside (a conv on fewer rows may sum in another order): with ``upsample_halo`` 1 the
    differences are ~1e-2, since the convs after upsampling reach 1.25 feature pixels.
    """
    net = strong_generator(scale)
    x = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with torch.no_grad():
        reference = tiled_output(net, x, tile=tile, pad=pad)  # one band per window at the default size
    monkeypatch.setattr(tiling, 'BAND_PIXELS', 3 * 16 * 16 * scale * scale)  # about three feature rows a band
    calls = []
    with torch.no_grad():
        banded = tiled_output(net, x, tile=tile, pad=pad, progress=lambda: calls.append(1))
    assert banded.shape == reference.shape
    assert (banded - reference).abs().max() < 1e-12 * reference.abs().max()
    assert len(calls) == count_tiles(*size, tile, pad)  # progress counts windows, not bands


def test_upsampling_in_bands_is_bit_exact_at_the_papers_width(monkeypatch):
    """float32, 64 channels as in the paper: a conv gives the same bits on a band as on the whole map.

    (Narrower test nets take other conv kernels on the CPU, whose sums may differ in the last bit.)
    """
    net = tiny_generator(scale=4, num_feat=64, num_grow_ch=32)
    x = torch.rand(1, 3, 70, 61, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        whole = net(x)
        monkeypatch.setattr(tiling, 'BAND_PIXELS', 5 * 61 * 16)
        assert torch.equal(tiled_output(net, x, tile=0, pad=0), whole)
