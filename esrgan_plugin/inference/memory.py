"""Predicting the peak memory of upscaling an image, and choosing the fastest tile that fits a budget.

The network's working memory on one window (docs/inference.md#memory-sized-tiles) follows from the
architecture: while the trunk runs, a dense block holds its input, its four growth outputs, their concatenation
and its output, beside the RRDB's input and the trunk's long skip, ``5 num_feat + 8 num_grow_ch`` channels at
the window's feature resolution; while the upsampling stage runs (on one band of the tile's core,
``tiling.band_rows``), it holds the trunk's features of the window and about ``2 num_feat + 3`` channels at the
band's output resolution. Each count is multiplied by the dtype's size and by a coefficient fitted to
measurements (oneDNN's reordered copies, allocator slack), plus a fitted constant. Beyond the network, the
upscaled image is held once in its file's sample type (the canvas), the encoded file beside it while it is
written, and one float copy of the input.

The prediction is of the process's peak: resident memory on the CPU, ``torch.cuda.max_memory_allocated`` on
CUDA, taken as what is in use when the prediction is made plus the predicted growth.

The budget is ``--max-memory``, or else ``choices.DEFAULT_MEMORY_SHARE`` of the memory available to the process.
Of the tiles that fit it, the one whose windows compute the fewest pixels is taken (``computed_pixels``): the
work of a window grows with its area, the context around each tile is computed again by its neighbours, and on
the CPU the time per computed pixel was measured not to fall for windows beyond ``CPU_FASTEST_TILE``.
"""
from __future__ import annotations

import os
from typing import NamedTuple, Optional

import torch

from esrgan_plugin.choices import CPU_FASTEST_TILE, DEFAULT_MEMORY_SHARE
from esrgan_plugin.errors import UserFacingError
from esrgan_plugin.inference.tiling import band_rows, count_tiles, window_shape


class ArchSize(NamedTuple):
    """What of a generator's architecture its memory depends on."""
    num_in_ch: int
    num_out_ch: int
    num_feat: int
    num_grow_ch: int
    scale: int
    unshuffle: int
    halo: int


def arch_size(net: torch.nn.Module) -> ArchSize:
    """The sizes of an ``ESRGANRRDBNet`` (or a compiled wrapper of one) read off its layers."""
    net = getattr(net, '_orig_mod', net)  # torch.compile's wrapper keeps the module here
    unshuffle = int(getattr(net, 'unshuffle', 1))
    body = list(net.body)
    return ArchSize(num_in_ch=net.conv_first.in_channels // unshuffle**2, num_out_ch=net.conv_last.out_channels,
                    num_feat=net.conv_first.out_channels,
                    num_grow_ch=body[0].rdb1.conv1.out_channels if body else 0, scale=int(net.scale),
                    unshuffle=unshuffle, halo=int(getattr(type(net), 'upsample_halo', 2)))


class Coefficients(NamedTuple):
    """Of each stage: a multiplier of its live channel count, channels per pixel besides them (reorders into
    oneDNN's blocked layouts, the image's few channels padded to a block), and a constant (bytes)."""
    trunk: float
    trunk_extra: float
    trunk_constant: float
    upsample: float
    upsample_extra: float
    upsample_constant: float


# Fitted by `python scripts/fit_memory_model.py` (least squares over fresh subprocesses, each measuring the growth
# of its peak resident memory, /proc/self/status VmHWM after resetting it, while the trunk or the upsampling stage
# runs on one input; 1-block nets with 64/32 and 8/4 channels, upsampling bands of 16x10^3 to 10^6 output pixels;
# 2 threads). oneDNN lays tensors out by the vector width, so the fit depends on the CPU: keys (torch's CPU
# capability, dtype, channels_last).
FITTED = {
    # Intel Xeon (Sapphire Rapids class: AVX512, AVX512-BF16, AMX), 2 cores; trunk windows 64-384 pixels;
    # 2026-12-05.
    ('AVX512', torch.float32, False): Coefficients(trunk=1.541, trunk_extra=34.08, trunk_constant=15.0e6,
                                                   upsample=1.54, upsample_extra=4.33, upsample_constant=21.0e6),
    ('AVX512', torch.bfloat16, True): Coefficients(trunk=1.099, trunk_extra=-9.88, trunk_constant=18.2e6,
                                                   upsample=1.105, upsample_extra=-0.18, upsample_constant=12.9e6),
    # AMD EPYC (Zen 2), 2 cores; trunk windows 64-768 pixels (64/32) and 64-1536 (8/4), the large windows of
    # the large tiles auto takes on photos, where the AVX512 fit predicted 31-65 % above these measurements;
    # 2026-12-08.
    ('AVX2', torch.float32, False): Coefficients(trunk=1.216, trunk_extra=-1.38, trunk_constant=26.4e6,
                                                 upsample=1.553, upsample_extra=3.13, upsample_constant=18.2e6),
    # Without native bf16, --precision bf16 runs fp32 in channels_last: that is what this entry measured.
    ('AVX2', torch.bfloat16, True): Coefficients(trunk=0.878, trunk_extra=-1.68, trunk_constant=31.3e6,
                                                 upsample=1.116, upsample_extra=-2.29, upsample_constant=11.9e6),
}
# Not measured (no GPU where the CPU coefficients were fitted): the bare live-tensor counts with cuDNN's workspace
# allowed for by half as much again; `python scripts/fit_memory_model.py --device cuda` measures them.
UNFITTED_CUDA = Coefficients(1.5, 0, 64 * 2**20, 1.5, 0, 64 * 2**20)
# The largest relative error of the predicted peak growth seen in the fit's validation; the tile is chosen so that
# the predicted growth times (1 + MARGIN) fits the budget.
MARGIN = 0.15


def coefficients(device: torch.device, dtype: torch.dtype, channels_last: bool) -> Coefficients:
    """The fitted coefficients for this device, dtype and layout (the nearest fitted case where not measured)."""
    if device.type != 'cpu':
        return UNFITTED_CUDA
    # CPUs other than AVX2 ones take the AVX512 fit, the larger of the two.
    capability = 'AVX2' if torch.backends.cpu.get_cpu_capability() == 'AVX2' else 'AVX512'
    # fp32 in channels_last (bf16 on CPUs without native bf16) and fp16 are taken as bf16's channels_last layout:
    # in the first fit fp32 channels_last's multipliers were within 1 % of bf16's.
    layout = (torch.float32, False) if dtype == torch.float32 and not channels_last else (torch.bfloat16, True)
    return FITTED.get((capability, *layout), FITTED[('AVX512', *layout)])


def trunk_channels(arch: ArchSize) -> int:
    """Channels alive at once while the trunk runs, per feature pixel (see the module's docstring)."""
    if arch.num_grow_ch:
        return 5 * arch.num_feat + 8 * arch.num_grow_ch
    return 3 * arch.num_feat


def upsample_channels(arch: ArchSize) -> int:
    """Channels alive at once at the output's resolution while the upsampling stage runs."""
    return 2 * arch.num_feat + arch.num_out_ch


def step(arch: ArchSize) -> int:
    """Output pixels per feature pixel along a side."""
    return arch.scale * arch.unshuffle


def trunk_bytes(arch: ArchSize, feature_pixels: int, dtype_size: int, coef: Coefficients) -> float:
    """Predicted growth while the trunk runs on a window of ``feature_pixels`` (its output included)."""
    channels = coef.trunk * trunk_channels(arch) + coef.trunk_extra
    return channels * feature_pixels * dtype_size + coef.trunk_constant


def upsample_bytes(arch: ArchSize, output_pixels: int, dtype_size: int, coef: Coefficients) -> float:
    """Predicted growth while the upsampling stage makes ``output_pixels`` from a band of features."""
    channels = coef.upsample * upsample_channels(arch) + coef.upsample_extra
    return channels * output_pixels * dtype_size + coef.upsample_constant


def window_bytes(arch: ArchSize, win_h: int, win_w: int, core_h: int, core_w: int, dtype_size: int,
                 coef: Coefficients) -> float:
    """Predicted growth of memory while the net runs on one window of ``win_h`` x ``win_w`` input pixels.

    ``core_h`` x ``core_w`` is the tile's core (input pixels) whose output the upsampling stage makes, in bands.
    """
    u = arch.unshuffle
    feat_h, feat_w = win_h // u, win_w // u
    feature_pixels = feat_h * feat_w
    cols = min(-(-core_w // u) + 2 * arch.halo, feat_w)
    rows = min(min(band_rows(cols, step(arch)), -(-core_h // u)) + 2 * arch.halo, feat_h)
    band_pixels = rows * cols * step(arch)**2
    window_input = arch.num_in_ch * win_h * win_w * dtype_size
    trunk = trunk_bytes(arch, feature_pixels, dtype_size, coef)
    # The trunk's features stay while the bands run; the band's output and its float copy while it is painted.
    upsample = (arch.num_feat * feature_pixels * dtype_size + upsample_bytes(arch, band_pixels, dtype_size, coef)
                + band_pixels * 4)
    return window_input + max(trunk, upsample)


def image_bytes(arch: ArchSize, height: int, width: int, depth: int, out_itemsize: int, written: bool = True) -> int:
    """Memory the image needs beside the network: the output canvas, a float copy of the input and, when
    ``written``, the encoded file (as large as the canvas at worst: noise does not compress)."""
    canvas = height * width * arch.scale**2 * depth * out_itemsize
    return (2 if written else 1) * canvas + height * width * max(depth, 3) * 4


class Estimate(NamedTuple):
    """The predicted peak for one tile size (0: the whole image at once)."""
    tile: int
    window: tuple[int, int]
    tiles: int
    growth: int  # predicted growth over the memory in use, bytes
    peak: int  # predicted peak of the process (resident on the CPU, allocated on CUDA), bytes


class Budget(NamedTuple):
    """How much memory a run may use: ``in_use`` now, ``peak_so_far``, and ``allowed`` growth over ``in_use``."""
    in_use: int
    peak_so_far: int
    allowed: int
    limit: Optional[int]  # the --max-memory value, if given
    source: str  # in words, for the command's message
    available: int = 0  # what the share was taken of (in use and free), bytes; 0 with --max-memory


def _proc_status() -> dict[str, int]:
    """VmRSS and VmHWM (bytes) of this process."""
    values = {}
    with open('/proc/self/status') as f:
        for line in f:
            key, _, rest = line.partition(':')
            if key in ('VmRSS', 'VmHWM'):
                values[key] = int(rest.split()[0]) * 1024
    return values


def _cgroup_room() -> Optional[int]:
    """Bytes left under this process's cgroup v2 memory limit, or None where there is none."""
    try:
        with open('/proc/self/cgroup') as f:
            path = next(line.split(':', 2)[2].strip() for line in f if line.startswith('0::'))
        folder = os.path.join('/sys/fs/cgroup', path.lstrip('/'))
        with open(os.path.join(folder, 'memory.max')) as f:
            limit = f.read().strip()
        with open(os.path.join(folder, 'memory.current')) as f:
            current = int(f.read())
    except (OSError, StopIteration, ValueError):
        return None
    return None if limit == 'max' else max(int(limit) - current, 0)


def available_ram() -> int:
    """RAM the kernel can give without swapping (MemAvailable), within this cgroup's limit if any."""
    with open('/proc/meminfo') as f:
        available = next(int(line.split()[1]) * 1024 for line in f if line.startswith('MemAvailable:'))
    room = _cgroup_room()
    return available if room is None else min(available, room)


def memory_budget(device: torch.device, max_memory: Optional[int] = None,
                  share: float = DEFAULT_MEMORY_SHARE) -> Budget:
    """What the run on ``device`` may grow by: up to ``max_memory`` in all, or else up to ``share`` of the memory
    available to it (what it holds now and what is free), the rest left to the user's other programs.

    On the CPU the measure is this process's resident memory (Linux ``/proc``); on CUDA torch's allocated memory
    on the device, the free memory being what the driver reports free plus what torch holds unused.
    """
    if device.type == 'cuda':
        in_use = torch.cuda.memory_allocated(device)
        peak = torch.cuda.max_memory_allocated(device)
        free = torch.cuda.mem_get_info(device)[0] + torch.cuda.memory_reserved(device) - in_use
        source = f'free on {torch.cuda.get_device_name(device)}'
    else:
        status = _proc_status()
        in_use, peak = status['VmRSS'], status['VmHWM']
        free = available_ram()
        source = 'available RAM'
    if max_memory is not None:
        return Budget(in_use, peak, max_memory - in_use, max_memory, '--max-memory')
    available = in_use + free
    return Budget(in_use, peak, int(share * available) - in_use, None,
                  f'{share:.0%} of {format_bytes(available)} {source}', available)


def estimate(net: torch.nn.Module, height: int, width: int, depth: int, out_itemsize: int, tile: int, pad: int,
             budget: Budget) -> Estimate:
    """The predicted peak of upscaling a ``height`` x ``width`` image with ``tile`` and ``pad`` (``iter_tiles``).

    ``depth`` is the output's channels (1 gray, 3 colour, 4 with alpha), ``out_itemsize`` its sample size.
    """
    param = next(net.parameters())
    layout_cl = param.dim() == 4 and not param.is_contiguous() and \
        param.is_contiguous(memory_format=torch.channels_last)
    arch = arch_size(net)
    coef = coefficients(param.device, param.dtype, layout_cl)
    win_h, win_w = window_shape(height, width, tile, pad, arch.unshuffle)
    # Along a side that one window covers, the tile's core is the whole side (tiling._axis_windows).
    core_h, core_w = (min(tile, height) if win_h < height else height, min(tile, width) if win_w < width else width)
    growth = window_bytes(arch, win_h, win_w, core_h, core_w, param.element_size(), coef)
    if param.device.type == 'cpu':  # the image stays in RAM, also when the net runs on a GPU
        growth += image_bytes(arch, height, width, depth, out_itemsize)
    growth = int(growth)
    return Estimate(tile, (win_h, win_w), count_tiles(height, width, tile, pad), growth,
                    max(budget.peak_so_far, budget.in_use + growth))


def fits(est: Estimate, budget: Budget) -> bool:
    """Whether the predicted growth, with the stated margin, fits the budget."""
    return est.growth * (1 + MARGIN) <= budget.allowed


# Tiles below this many input pixels spend most of their work on context; a budget that fits none is an error.
SMALLEST_TILE = 32
# Auto tiles are multiples of this: finer steps change memory and speed little.
TILE_STEP = 16


def computed_pixels(height: int, width: int, tile: int, pad: int, factor: int = 1) -> int:
    """Input pixels that the windows of ``tile`` (0: the whole image) compute, context included: what the time of
    the network's trunk grows with (its upsampling runs on the tiles' cores, the same for every tile)."""
    win_h, win_w = window_shape(height, width, tile, pad, factor)
    return count_tiles(height, width, tile, pad) * win_h * win_w


def fastest_tile_cap(device: torch.device) -> Optional[int]:
    """The largest tile auto takes on ``device`` (None: no cap measured, the budget alone bounds it)."""
    return CPU_FASTEST_TILE if device.type == 'cpu' else None


def choose_tile(net: torch.nn.Module, height: int, width: int, depth: int, out_itemsize: int, pad: int,
                budget: Budget, cap: Optional[int] = None) -> Estimate:
    """Of the whole image and the tiles up to ``cap`` (on the ``TILE_STEP`` grid) that fit the budget (``fits``),
    the one whose windows compute the fewest pixels; of equals, the smaller predicted peak. The whole image is a
    candidate where one window of ``cap`` would cover it.

    Raises:
        UserFacingError: not even a ``SMALLEST_TILE`` tile fits.
    """
    side = max(height, width)
    largest = side if cap is None else min(cap, side)
    unshuffle = arch_size(net).unshuffle
    # The whole image first: a tile whose one window covers the image computes the same, and is no better.
    candidates = [0] if cap is None or count_tiles(height, width, cap, pad) == 1 else []
    candidates += range(SMALLEST_TILE, largest + 1, TILE_STEP)
    best, best_key = None, None
    for tile in candidates:
        est = estimate(net, height, width, depth, out_itemsize, tile, pad, budget)
        key = (computed_pixels(height, width, tile, pad, unshuffle), est.growth)
        if fits(est, budget) and (best_key is None or key < best_key):
            best, best_key = est, key
    if best is None:
        smallest = estimate(net, height, width, depth, out_itemsize, SMALLEST_TILE, pad, budget)
        raise UserFacingError(
            f'even {SMALLEST_TILE}-pixel tiles are predicted to need {format_bytes(smallest.growth)} more '
            f'(plus a {MARGIN:.0%} margin), but {budget.source} leaves {format_bytes(max(budget.allowed, 0))}; '
            'free memory, raise --max-memory, or pass a smaller --tile-pad.')
    return best


def smaller_tile(height: int, width: int, tile: int) -> Optional[int]:
    """The tile to try after ``tile`` (0: the whole image) ran out of memory: half its side on the ``TILE_STEP``
    grid, or None once that would be below ``SMALLEST_TILE``.

    The prediction's CUDA coefficients are not fitted to measurements, and other processes can take memory between
    the prediction and the run; halving recovers from either in a few tries.
    """
    side = max(height, width) if tile == 0 else min(tile, max(height, width))
    half = side // 2 // TILE_STEP * TILE_STEP
    return half if half >= SMALLEST_TILE else None


PLAN_TILES = (4096, 2048, 1024, 768, 512, 384, 256, 128, 64)


def plan(net: torch.nn.Module, height: int, width: int, depth: int, out_itemsize: int, pad: int,
         budget: Budget, tiles: tuple[int, ...] = PLAN_TILES) -> list[Estimate]:
    """Estimates for the whole image and for each of ``tiles`` smaller than the image (largest first)."""
    side = max(height, width)
    rows = [estimate(net, height, width, depth, out_itemsize, 0, pad, budget)]
    rows += [estimate(net, height, width, depth, out_itemsize, t, pad, budget) for t in tiles if t < side]
    return rows


def format_bytes(n: float) -> str:
    """Bytes in GiB or MiB, as the messages and docs give them."""
    return f'{n / 2**30:.2f} GiB' if abs(n) >= 2**30 else f'{n / 2**20:.0f} MiB'
