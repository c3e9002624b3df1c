"""Numeric precision, memory format and compilation of the networks: the options and the plumbing.

Option keys (``train`` for training; ``val`` overrides ``amp`` and ``channels_last`` for validation and
``python -m esrgan_plugin.test``):

* ``amp: fp32 | bf16 | fp16`` — autocast dtype of the network forwards. Parameters, optimizer state, the EMA
  and every loss reduction stay float32 whatever the mode; fp16 also needs a gradient scaler (its
  gradients underflow), bf16 does not (it has float32's exponent range). fp16 is CUDA-only: CPU kernels
  for it are missing or slow, and bf16 is what the CPU runs fast.
* ``channels_last: true | false`` — NHWC memory format for the 4-D weights and the images; the
  convolutions of oneDNN (CPU) and cuDNN (tensor cores) are fastest in it, above all in reduced precision.
* ``compile: false | true | <mode>`` — ``torch.compile`` the forwards (true = mode ``default``; other modes:
  ``reduce-overhead``, ``max-autotune``, ``max-autotune-no-cudagraphs``). The compiled callables are kept
  *beside* the modules, never in their place, so state dicts, EMA and checkpoints keep their plain names.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, ContextManager, Optional

import torch

from esrgan_plugin.choices import COMPILE_MODES, PRECISIONS
from esrgan_plugin.errors import UserFacingError

# The torch dtype of each precision name (the names are defined once, in choices.PRECISIONS).
DTYPES = {name: {'fp32': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16}[name] for name in PRECISIONS}
# Autocast's dtype; None: no autocast (float32).
AMP_DTYPES = {name: None if dtype == torch.float32 else dtype for name, dtype in DTYPES.items()}
# torch.compile's backend. Tests set 'aot_eager' to check the wiring without inductor's code generation,
# which takes minutes per network on a small CPU.
COMPILE_BACKEND = 'inductor'


@dataclass(frozen=True)
class Precision:
    """How the networks run: autocast dtype (None = float32), memory format, compile mode (None = eager)."""

    amp: Optional[torch.dtype] = None
    channels_last: bool = False
    compile_mode: Optional[str] = None

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def describe(self) -> str:
        name = {dtype: name for name, dtype in AMP_DTYPES.items()}[self.amp]
        return (f'amp {name}, channels_last {self.channels_last}, '
                f'compile {self.compile_mode or "off"}')


def parse_amp(value, where: str) -> Optional[torch.dtype]:
    """``'fp32' | 'bf16' | 'fp16'`` (None means fp32) to an autocast dtype, None for float32."""
    if value is None:
        return None
    if value not in AMP_DTYPES:
        raise UserFacingError(f'{where} {value!r} is not a precision; use one of {", ".join(PRECISIONS)} (fp16: CUDA only).')
    return AMP_DTYPES[value]


def parse_compile(value, where: str) -> Optional[str]:
    """``false | true | <mode>`` to a torch.compile mode, None for eager."""
    if value is None or value is False:
        return None
    if value is True:
        return 'default'
    if value not in COMPILE_MODES:
        raise UserFacingError(f'{where} {value!r} is not understood; use false, true or one of '
                              f'{", ".join(COMPILE_MODES)}.')
    return value


def parse_bool(value, where: str) -> bool:
    """``true | false`` (None means false); anything else is refused."""
    if value is None:
        return False
    if not isinstance(value, bool):
        raise UserFacingError(f'{where} {value!r} is not true or false; write true or false.')
    return value


def check_device(precision: Precision, device_type: str, where: str) -> None:
    """fp16 is refused on the CPU, with what to use instead."""
    if precision.amp is torch.float16 and device_type != 'cuda':
        raise UserFacingError(f'{where} fp16 needs a CUDA GPU; on the CPU use bf16 (fast where the CPU has '
                              'native bf16) or fp32.')


def training_precision(opt: dict) -> Precision:
    """The ``train`` section's settings (all off when absent, e.g. for testing)."""
    train_opt = opt.get('train') or {}
    return Precision(amp=parse_amp(train_opt.get('amp'), 'train.amp'),
                     channels_last=parse_bool(train_opt.get('channels_last'), 'train.channels_last'),
                     compile_mode=parse_compile(train_opt.get('compile'), 'train.compile'))


def evaluation_precision(opt: dict) -> Precision:
    """Validation/test: ``val.amp``, ``val.channels_last`` and ``val.compile`` where set (not null), else
    training's."""
    train = training_precision(opt)
    val_opt = opt.get('val') or {}

    def given(key: str) -> bool:  # absent or null (~): inherit training's
        return val_opt.get(key) is not None

    return Precision(
        amp=parse_amp(val_opt['amp'], 'val.amp') if given('amp') else train.amp,
        channels_last=(parse_bool(val_opt['channels_last'], 'val.channels_last') if given('channels_last')
                       else train.channels_last),
        compile_mode=parse_compile(val_opt['compile'], 'val.compile') if given('compile') else train.compile_mode)


def planned_device_type(opt: dict) -> str:
    """The device basicsr's launcher will pick: CUDA unless ``num_gpu`` is 0 (``auto`` counts the GPUs)."""
    num_gpu = opt.get('num_gpu', 'auto')
    if num_gpu == 'auto':
        num_gpu = torch.cuda.device_count()
    return 'cuda' if num_gpu != 0 else 'cpu'


def check_options(opt: dict, device_type: str) -> None:
    """Every precision option valid and usable on ``device_type``; raises UserFacingError otherwise."""
    check_device(training_precision(opt), device_type, 'train.amp')
    check_device(evaluation_precision(opt), device_type, 'val.amp (or train.amp)')


def cpu_has_fast_bf16() -> bool:
    """Whether oneDNN has native bf16 convolutions on this CPU (AVX512-BF16, AMX, ...).

    Without them (e.g. AVX2-only CPUs) PyTorch runs bf16 convolutions in reference kernels that are many
    times *slower* than float32, so bf16 only pays on CPUs that have them.
    """
    check = getattr(torch.ops.mkldnn, '_is_mkldnn_bf16_supported', None)  # private; absent: assume fast
    try:
        return True if check is None else bool(check())
    except RuntimeError:
        return True


def slow_bf16_warning(precision: Precision, device_type: str) -> Optional[str]:
    """A warning to log when bf16 is asked for on a CPU without native bf16, else None."""
    if precision.amp is torch.bfloat16 and device_type == 'cpu' and not cpu_has_fast_bf16():
        return ('bf16 was asked for, but this CPU has no native bf16 convolutions (no AVX512-BF16/AMX): '
                'expect it to run several times SLOWER than fp32 here; use amp: fp32 (with channels_last: true) '
                'on this machine.')
    return None


def autocast(precision: Precision, device_type: str) -> ContextManager:
    """Autocast to the chosen dtype; a no-op for float32."""
    if precision.amp is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=precision.amp)


def to_memory_format(module: torch.nn.Module, precision: Precision) -> torch.nn.Module:
    """The module's 4-D parameters and buffers in the chosen memory format, in place (parameters keep
    their identity, so optimizers built before or after both see them)."""
    if precision.channels_last:
        module.to(memory_format=torch.channels_last)
    return module


def image_to_memory_format(img: torch.Tensor, precision: Precision) -> torch.Tensor:
    if precision.channels_last and img.dim() == 4:
        return img.contiguous(memory_format=torch.channels_last)
    return img


def compiled(module: torch.nn.Module, precision: Precision) -> Callable:
    """``torch.compile(module)`` when compiling, else the module itself.

    The result is only for calling: it shares the module's parameters, while the module stays what the
    model saves, loads, averages (EMA) and unwraps (``get_bare_model``).
    """
    if precision.compile_mode is None:
        return module
    return torch.compile(module, mode=precision.compile_mode, backend=COMPILE_BACKEND)


def new_grad_scaler(precision: Precision, device_type: str) -> torch.amp.GradScaler:
    """A gradient scaler, enabled only for fp16 (a disabled one passes losses and steps through)."""
    return torch.amp.GradScaler(device_type, enabled=precision.amp is torch.float16)
