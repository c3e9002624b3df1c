"""Getting a generator ready to upscale fast: precision, memory format and compilation.

fp32 (the default) leaves the network as it is, so outputs are exact. The
reduced precisions convert the weights themselves (bf16, or fp16 on CUDA)
and put them in channels_last, the NHWC layout oneDNN and cuDNN run fastest.
Of the bf16 variants this measured fastest (docs/benchmarks.md#bf16-on-a-cpu-without-native-bf16):
without channels_last, oneDNN has no fast bf16 convolution for NCHW and
autocast falls to a reference path 20x slower still. Inputs need no
conversion: a convolution with channels_last weights returns channels_last
outputs, so the whole network stays in that layout.

bf16 only pays on CPUs that compute in it (AVX512-BF16 or AMX, e.g. Intel
Xeon since Cooper Lake, AMD Zen 4); elsewhere oneDNN emulates it, several
times slower than fp32. There ``--precision bf16`` (the "fast, not exact"
request) runs fp32 in channels_last instead, the fastest mode measured on
such CPUs, and ``choose_dtype`` says so.
"""
from __future__ import annotations

from typing import Optional, Union

import torch

from esrgan_plugin.training.precision import DTYPES, cpu_has_fast_bf16


def choose_dtype(precision: str, device: torch.device) -> tuple[torch.dtype, Optional[str]]:
    """The compute dtype and, when the request cannot be honoured or will not pay, a note saying so."""
    if precision == 'fp16' and device.type == 'cpu':
        # Half-precision convolutions on the CPU are slow or missing depending on the build; bf16 is the CPU's.
        return torch.float32, 'fp16 is not used on the CPU (slow or unsupported there); running in fp32. ' \
                              'Use --precision bf16 for reduced precision on the CPU.'
    if precision == 'bf16' and device.type == 'cpu' and not cpu_has_fast_bf16():
        # Emulated bf16 is several times slower than fp32; what the user asked for is speed.
        return torch.float32, 'this CPU has no native bf16 (AVX512-BF16 or AMX), where bf16 is emulated and ' \
                              'slower than fp32; running fp32 in channels_last, the fast mode on this CPU.'
    return DTYPES[precision], None


def prepare_generator(net: torch.nn.Module, device: torch.device, dtype: torch.dtype = torch.float32,
                      channels_last: Optional[bool] = None,
                      compile_mode: Union[bool, str, None] = None) -> torch.nn.Module:
    """``net`` in eval mode on ``device`` with weights in ``dtype``, optionally channels_last and compiled.

    ``channels_last`` defaults to on for reduced precision and off for fp32
    (whose outputs stay bit-exact with the plain network). ``compile_mode``:
    ``True`` or a ``torch.compile`` mode name ('default', 'reduce-overhead',
    'max-autotune'); compiling costs time on the first image (and on each new
    tile shape), and on the CPU needs a C++ compiler.
    """
    if channels_last is None:
        channels_last = dtype != torch.float32
    net = net.eval().to(device, dtype)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    if compile_mode:
        net = torch.compile(net, mode=None if compile_mode is True else compile_mode)
    return net


def release_cached_memory(device: torch.device) -> None:
    """Give the caching allocator's unused blocks back to the driver, so that a retry after running out of memory
    starts from what is really free (a no-op on the CPU)."""
    if device.type == 'cuda':
        torch.cuda.empty_cache()
