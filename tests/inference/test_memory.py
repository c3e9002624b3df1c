"""The memory model's pieces: window sizes, live channel counts, budgets and the choice of tile.

The measured accuracy of the prediction is checked in tests/integration/test_memory_model.py.
"""
import argparse

import pytest
import torch

from conftest import tiny_generator
from esrgan_plugin.cli import memory_size, tile_size
from esrgan_plugin.errors import UserFacingError
from esrgan_plugin.inference import memory, tiling
from esrgan_plugin.inference.memory import Budget
from tiles import tiled_output


@pytest.mark.parametrize('text, expected', [('4GB', 4 * 10**9), ('512MB', 512 * 10**6), ('1.5GiB', 3 * 2**29),
                                            ('100', 100), ('2g', 2 * 10**9), ('64MiB', 64 * 2**20)])
def test_memory_sizes_are_read_in_decimal_and_binary_units(text, expected):
    assert memory_size(text) == expected


@pytest.mark.parametrize('text', ['', 'GB', 'four GB', '4XB', '-1GB', '0', 'nan', 'inf'])
def test_bad_memory_sizes_are_refused(text):
    with pytest.raises(argparse.ArgumentTypeError):
        memory_size(text)


def test_tile_is_auto_or_a_count_of_pixels():
    assert tile_size('auto') == 'auto' and tile_size('0') == 0 and tile_size('128') == 128
    for bad in ('-1', 'big', '1.5'):
        with pytest.raises(argparse.ArgumentTypeError):
            tile_size(bad)


class RecordingNet(torch.nn.Module):
    """Wraps a generator (without its banded upsampling) and records the shape of every window it runs on."""

    def __init__(self, net):
        super().__init__()
        self.net, self.scale, self.unshuffle, self.conv_first = net, net.scale, net.unshuffle, net.conv_first
        self.shapes = []

    def forward(self, x):
        self.shapes.append(tuple(x.shape[-2:]))
        return self.net(x)


@pytest.mark.parametrize('scale, height, width, tile, pad', [(4, 40, 70, 16, 4), (4, 30, 30, 0, 8),
                                                             (4, 33, 20, 24, 8), (2, 21, 37, 10, 3),
                                                             (1, 18, 26, 9, 2)])
def test_window_shape_is_the_window_that_runs(scale, height, width, tile, pad):
    net = RecordingNet(tiny_generator(scale=scale, num_block=1))
    tiled_output(net, torch.rand(1, 3, height, width), tile, pad)
    assert set(net.shapes) == {tiling.window_shape(height, width, tile, pad, net.unshuffle)}


def test_band_rows_match_the_bands_that_run(monkeypatch):
    """One window of 40x72 features (x4 output 160x288): the bands split its core as band_rows says."""
    net = tiny_generator(scale=4, num_block=1)
    calls = []
    upsample = net.forward_upsample
    net.forward_upsample = lambda feat: calls.append(feat.shape[-2]) or upsample(feat)
    monkeypatch.setattr(tiling, 'BAND_PIXELS', 72 * 16 * 10)  # ten feature rows of the full width
    tiled_output(net, torch.rand(1, 3, 40, 72), 0, 0)
    assert tiling.band_rows(72, 4) == 10
    assert calls == [10 + 2, 10 + 4, 10 + 4, 10 + 2]  # each band with up to 2 rows of context on each side


def test_live_channel_counts_of_the_paper_net():
    """In a dense block at its last conv: the RRDB's input, the block's input (64 each), the trunk's long skip (64),
    four growth outputs (4 x 32), their concatenation with the input (64 + 128) and the conv's output (64)."""
    arch = memory.arch_size(tiny_generator(num_feat=64, num_block=1, num_grow_ch=32))
    assert memory.trunk_channels(arch) == 64 * 3 + 4 * 32 + (64 + 4 * 32) + 64
    # Upsampling: the conv_hr input and output at the output's resolution, and the image.
    assert memory.upsample_channels(arch) == 64 + 64 + 3


def budget(allowed):
    return Budget(in_use=0, peak_so_far=0, allowed=allowed, limit=allowed, source='--max-memory')


def test_the_prediction_grows_with_the_tile_and_the_chosen_tile_fits():
    net = tiny_generator(num_feat=16, num_block=1, num_grow_ch=8)
    growth = [memory.estimate(net, 700, 500, 3, 1, tile, 16, budget(0)).growth for tile in (32, 64, 128, 256, 0)]
    assert growth == sorted(growth) and growth[0] < growth[-1]
    allowed = int(memory.estimate(net, 700, 500, 3, 1, 200, 16, budget(0)).growth * (1 + memory.MARGIN))
    chosen = memory.choose_tile(net, 700, 500, 3, 1, 16, budget(allowed))
    assert chosen.tile % memory.TILE_STEP == 0 and 0 < chosen.tile <= 200 and memory.fits(chosen, budget(allowed))
    assert memory.choose_tile(net, 700, 500, 3, 1, 16, budget(10**12)).tile == 0  # the whole image when it fits


@pytest.mark.parametrize('height, width, cap, tile, tiles', [
    # 3000 pixels cannot be one window of a 2048 tile (2048 + 2 x 96 < 3000); two windows a side need a tile of at
    # least 1500, 1504 on the 16-pixel grid: 4 windows of 1696^2 = 11.5 M pixels, fewer than the 9 of 1200^2
    # (12.96 M) of tile 1008, the smallest with three a side, or the 4 larger windows of any tile up to 2048.
    (3000, 3000, 2048, 1504, 4),
    # 48 megapixels: at most 2048 a side takes 4 x 3 tiles; 2000 is the smallest tile that makes them (8000 / 4).
    (6000, 8000, 2048, 2000, 12),
    # Without a cap (CUDA) the whole image fits a huge budget: one window, each pixel computed once.
    (6000, 8000, None, 0, 1),
    # An image that one 2048-tile window covers (up to 2048 + 2 x 96 a side) runs whole.
    (2200, 1500, 2048, 0, 1),
])
def test_auto_takes_the_tile_computing_the_fewest_pixels_up_to_the_cap(height, width, cap, tile, tiles):
    net = tiny_generator(num_feat=8, num_block=1, num_grow_ch=4)
    chosen = memory.choose_tile(net, height, width, 3, 1, 96, budget(10**15), cap)
    assert (chosen.tile, chosen.tiles) == (tile, tiles)


@pytest.mark.parametrize('height, width, cap', [(6000, 8000, 2048), (3000, 4000, 1024), (900, 5000, 512),
                                                (6000, 8000, None)])
@pytest.mark.parametrize('share', [0.02, 0.1, 0.5])
def test_the_chosen_tile_never_exceeds_the_cap_nor_the_budget(height, width, cap, share):
    net = tiny_generator(num_feat=16, num_block=1, num_grow_ch=8)
    # From what the smallest tile needs (the canvas and the encoded file are most of it) to the whole image's.
    least = memory.estimate(net, height, width, 3, 1, memory.SMALLEST_TILE, 96, budget(0)).growth * (1 + memory.MARGIN)
    whole = memory.estimate(net, height, width, 3, 1, 0, 96, budget(0)).growth * (1 + memory.MARGIN)
    allowed = budget(int(least + share * (whole - least)))
    chosen = memory.choose_tile(net, height, width, 3, 1, 96, allowed, cap)
    assert memory.fits(chosen, allowed) and chosen.growth * (1 + memory.MARGIN) <= allowed.allowed
    if cap is not None:
        assert 0 < chosen.tile <= cap or (chosen.tile == 0 and max(height, width) <= cap + 2 * 96)


def test_the_cap_is_the_cpus_measured_fastest_tile_and_none_on_cuda():
    from esrgan_plugin.choices import CPU_FASTEST_TILE
    assert memory.fastest_tile_cap(torch.device('cpu')) == CPU_FASTEST_TILE == 2048
    assert memory.fastest_tile_cap(torch.device('cuda')) is None


def test_a_budget_too_small_for_any_tile_is_one_clear_error():
    net = tiny_generator()
    with pytest.raises(UserFacingError, match='even 32-pixel tiles .* --max-memory'):
        memory.choose_tile(net, 400, 400, 3, 1, 16, budget(1000))


def proc(path, key):
    with open(path) as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key + ':'))


def test_the_cpu_budget_is_the_limit_less_what_is_resident():
    rss = proc('/proc/self/status', 'VmRSS')
    got = memory.memory_budget(torch.device('cpu'), 4 * 10**9)
    assert got.limit == 4 * 10**9 and abs(got.allowed - (4 * 10**9 - rss)) < 64 * 2**20  # no share of a limit


@pytest.mark.parametrize('share', [0.5, 0.25])
def test_the_default_budget_is_a_share_of_the_memory_available(share):
    """The peak may reach ``share`` of what the process holds plus what the kernel says is available."""
    rss, free = proc('/proc/self/status', 'VmRSS'), proc('/proc/meminfo', 'MemAvailable')
    got = memory.memory_budget(torch.device('cpu'), share=share)
    expected_peak = share * (rss + free)
    assert got.limit is None and abs(got.in_use + got.allowed - expected_peak) < 256 * 2**20  # others come and go
    assert f'{share:.0%} of ' in got.source and 'available RAM' in got.source
    assert got.peak_so_far >= got.in_use


def test_the_default_share_is_half():
    from esrgan_plugin.choices import DEFAULT_MEMORY_SHARE
    assert DEFAULT_MEMORY_SHARE == 0.5
    default = memory.memory_budget(torch.device('cpu'))
    assert abs(default.in_use + default.allowed - 0.5 * default.available) < 2**20


@pytest.mark.parametrize('capability, key', [('AVX2', 'AVX2'), ('AVX512', 'AVX512'), ('DEFAULT', 'AVX512')])
def test_the_coefficients_follow_the_cpus_vector_width(monkeypatch, capability, key):
    """oneDNN's layouts differ between AVX2 and AVX512 CPUs: each takes its own fit, others the AVX512 one."""
    monkeypatch.setattr(torch.backends.cpu, 'get_cpu_capability', lambda: capability)
    cpu = torch.device('cpu')
    assert memory.coefficients(cpu, torch.float32, False) is memory.FITTED[key, torch.float32, False]
    assert memory.coefficients(cpu, torch.float32, True) is memory.FITTED[key, torch.bfloat16, True]
    assert memory.coefficients(cpu, torch.bfloat16, True) is memory.FITTED[key, torch.bfloat16, True]
