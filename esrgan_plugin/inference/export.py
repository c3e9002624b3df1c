"""Writing a generator in the formats users deploy: basicsr ``.pth``, ``.safetensors``, ``.onnx``.

* ``.pth``: basicsr's ``{'params': state_dict}``, loadable by basicsr, Real-ESRGAN and this plugin;
* ``.safetensors``: the same tensors without pickle, with the architecture in the metadata;
* ``.onnx`` (optional packages: ``pip install onnx onnxruntime``): dynamic batch/height/width, checked against
  PyTorch with ONNX Runtime on a small random input.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch

from esrgan_plugin import fileio
from esrgan_plugin.archs.checkpoint import infer_arch_params
from esrgan_plugin.errors import UserFacingError

def arch_metadata(net: torch.nn.Module) -> dict[str, str]:
    """The constructor arguments as safetensors metadata (which holds strings only)."""
    params = infer_arch_params(net.state_dict())
    return {'arch': 'ESRGANRRDBNet', 'layout': 'basicsr', **{k: str(v) for k, v in params.items()}}


def _state(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}


def export_pth(net: torch.nn.Module, path: str) -> None:
    fileio.save_torch({'params': _state(net)}, path)


def export_safetensors(net: torch.nn.Module, path: str) -> None:
    fileio.save_safetensors(_state(net), path, metadata=arch_metadata(net))


def require_onnx():
    try:
        import onnx  # noqa: F401  the exporter needs it
        import onnxruntime
    except ImportError as err:
        raise UserFacingError(f'ONNX export needs the optional packages onnx and onnxruntime ({err.name} is missing); '
                              'install them with pip install onnx onnxruntime.') from None
    return onnxruntime


def export_onnx(net: torch.nn.Module, path: str, check_size: int = 16, opset: int = 17) -> float:
    """Export with dynamic batch/height/width and return ONNX Runtime's max abs difference from PyTorch.

    The check runs a ``check_size`` x (``check_size`` - 4) random input, a
    shape other than the one traced, so the dynamic axes are exercised too.
    Inputs of pixel-unshuffling nets (x2, x1) need sides divisible by 2 or 4.
    """
    ort = require_onnx()
    net = net.float().cpu().eval()
    factor = int(getattr(net, 'unshuffle', 1))
    example = torch.rand(1, net.conv_first.in_channels // factor**2, 8 * factor, 8 * factor)
    axes = {0: 'batch', 2: 'height', 3: 'width'}

    def write(tmp: str) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')  # the TorchScript exporter announces its deprecation
            # dynamo=False: the TorchScript exporter needs only onnx, not onnxscript.
            torch.onnx.export(net, example, tmp, input_names=['lr'], output_names=['sr'], opset_version=opset,
                              dynamic_axes={'lr': axes, 'sr': axes}, dynamo=False)

    fileio.write_with(path, write)
    check = torch.rand(1, example.shape[1], check_size * factor, (check_size - 4) * factor,
                       generator=torch.Generator().manual_seed(0))
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    (onnx_out,) = session.run(None, {'lr': check.numpy()})
    with torch.no_grad():
        torch_out = net(check).numpy()
    return float(np.abs(onnx_out - torch_out).max())
