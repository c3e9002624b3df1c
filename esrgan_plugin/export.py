"""``python -m esrgan_plugin.export -m <checkpoint> -o <file.pth|file.safetensors|file.onnx>``.

Re-saves any generator the plugin can load as

* ``.pth``: basicsr's ``{'params': state_dict}``, loadable by basicsr, Real-ESRGAN and this plugin;
* ``.safetensors``: the same tensors without pickle, with the architecture in the metadata;
* ``.onnx`` (optional packages: ``pip install onnx onnxruntime``): dynamic batch/height/width, checked against PyTorch
  with ONNX Runtime on a small random input.
"""
from __future__ import annotations

import argparse
import os
import warnings
from typing import Optional, Sequence

from esrgan_plugin.cli import run_main, say
from esrgan_plugin.errors import UserFacingError

# numpy, torch and the modules that use them are imported below build_parser(), so that the command answers
# -h and usage errors before paying for them; the functions here use them only when called.

FORMATS = ('.pth', '.safetensors', '.onnx')


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


def _require_onnx():
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
    ort = _require_onnx()
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='python -m esrgan_plugin.export',
        description='Save a generator checkpoint of any layout as basicsr .pth, .safetensors (architecture in the '
        'metadata) or .onnx (needs the "onnx" extra). The format follows the output extension.')
    parser.add_argument('-m', '--model', required=True, help='generator checkpoint (any layout)')
    parser.add_argument('-o', '--output', required=True, help='output file: .pth, .safetensors or .onnx')
    parser.add_argument('--param_key', choices=['params', 'params_ema'], default=None,
                        help='which weights of basicsr files to export (default: EMA when present)')
    return parser


if __name__ == '__main__':
    build_parser().parse_args()  # -h and usage errors are answered here, before the imports below

import numpy as np  # noqa: E402
import torch  # noqa: E402

from esrgan_plugin import fileio, register  # noqa: E402

register()  # basicsr adaptations before the modules below import basicsr
from esrgan_plugin.archs.checkpoint import infer_arch_params, load_generator  # noqa: E402


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    ext = os.path.splitext(args.output)[1].lower()
    if ext not in FORMATS:
        parser.error(f'output {args.output} must end in {", ".join(FORMATS)}; the extension picks the format')
    if os.path.isdir(args.output):
        parser.error(f'output {args.output} is a folder; pass a file name')
    if os.path.realpath(args.output) == os.path.realpath(args.model):
        parser.error('output and model are the same file; pass another output name')
    if ext == '.onnx':
        _require_onnx()  # fail before loading anything
    net = load_generator(args.model, args.param_key)
    if ext == '.pth':
        export_pth(net, args.output)
    elif ext == '.safetensors':
        export_safetensors(net, args.output)
    else:
        diff = export_onnx(net, args.output)
        say(f'ONNX Runtime vs PyTorch on a random input: max abs difference {diff:.3g}')
    say(f'wrote {args.output} ({", ".join(f"{k}={v}" for k, v in arch_metadata(net).items())})')
    return 0


if __name__ == '__main__':
    run_main(main)
