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
from typing import Optional, Sequence

from esrgan_plugin.choices import EXPORT_FORMATS
from esrgan_plugin.cli import run_main, say


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


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    ext = os.path.splitext(args.output)[1].lower()
    if ext not in EXPORT_FORMATS:
        parser.error(f'output {args.output} must end in {", ".join(EXPORT_FORMATS)}; the extension picks the format')
    if os.path.isdir(args.output):
        parser.error(f'output {args.output} is a folder; pass a file name')
    if os.path.realpath(args.output) == os.path.realpath(args.model):
        parser.error('output and model are the same file; pass another output name')
    import esrgan_plugin
    esrgan_plugin.register()  # basicsr adaptations and registration, once the arguments are parsed
    from esrgan_plugin.archs.checkpoint import load_generator
    from esrgan_plugin.inference.export import arch_metadata, export_onnx, export_pth, export_safetensors, \
        require_onnx

    if ext == '.onnx':
        require_onnx()  # fail before loading anything
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
