"""The ESRGAN generator's checkpoint layouts in circulation, read safely.

Three key layouts exist in the wild for the same network:

``basicsr``  (BasicSR, Real-ESRGAN, this plugin)
    ``conv_first``, ``body.N.rdbK.convJ``, ``conv_body``, ``conv_up1..3``,
    ``conv_hr``, ``conv_last``
``xinntao``  (the ESRGAN repository's ``RRDBNet_arch.py``)
    ``conv_first``, ``RRDB_trunk.N.RDBk.convj``, ``trunk_conv``,
    ``upconv1..3``, ``HRconv``, ``conv_last``
``original``  (the published ``RRDB_ESRGAN_x4.pth`` / ``RRDB_PSNR_x4.pth``)
    ``model.0``, ``model.1.sub.N.RDBk.convj.0``, ``model.1.sub.<num_block>``,
    then ``model.3``, ``model.6`` (``model.9`` for x8) for the upsampling
    convs and the last two indices for the HR and output convs.

Files come as basicsr dicts (``{'params': ..., 'params_ema': ...}``), plain
state dicts, DataParallel/DDP ``module.``-prefixed state dicts, or
``.safetensors``. ESRGAN+ checkpoints (dense blocks with an extra 1x1 conv)
hold a different network and are refused with one line. Everything here is a
pure function on dicts of tensors, except ``read_checkpoint`` and the
``load_*`` functions, which read files. Pickles are read with
``weights_only=True`` so a checkpoint can never run code.
"""
from __future__ import annotations

import os
import pickle
import pickletools
import re
import struct
import zipfile
from typing import Mapping, Optional

import torch

from esrgan_plugin.errors import UserFacingError
from esrgan_plugin.archs.rrdbnet_arch import SUPPORTED_SCALES, ESRGANRRDBNet, num_upsample_stages, unshuffle_factor

StateDict = dict[str, torch.Tensor]

# Containers that wrap a state dict, in the order they are preferred. The EMA
# weights are what BasicSR and Real-ESRGAN evaluate and publish.
WRAPPER_KEYS = ('params_ema', 'params', 'state_dict', 'model_state_dict', 'net_g', 'generator')


class CheckpointError(UserFacingError, ValueError):
    """A checkpoint that cannot be read or does not fit; the message says why."""


# ----------------------------------------------------------------------------- files
def _looks_like_safetensors(path: str) -> bool:
    if path.endswith('.safetensors'):
        return True
    with open(path, 'rb') as f:
        head = f.read(9)
    # 8-byte little-endian header length, then a JSON object.
    return len(head) == 9 and head[8:9] == b'{'


def read_checkpoint(path: str) -> object:
    """Read a .pth/.pt/.safetensors file without running any pickled code.

    Raises:
        CheckpointError: missing, truncated, corrupt or unsafe file.
    """
    if not os.path.isfile(path):
        raise CheckpointError(f'Checkpoint {path} does not exist; check the path.')
    if os.path.getsize(path) == 0:
        raise CheckpointError(f'Checkpoint {path} is empty; download or copy it again.')
    if _looks_like_safetensors(path):
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        try:
            return load_file(path, device='cpu')
        except (SafetensorError, OSError, ValueError) as err:
            raise CheckpointError(f'Checkpoint {path} is not a readable safetensors file (truncated or corrupt?): '
                                  f'{err}.') from None
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError:
        # torch gives one message for corrupt files and for disallowed objects;
        # a pickle stream that is well formed means the content was refused.
        if _is_wellformed_pickle(path):
            raise CheckpointError(
                f'Checkpoint {path} contains pickled Python objects other than tensors, which are refused because '
                'unpickling them can run arbitrary code; re-save it as a plain state dict or .safetensors.') from None
        raise CheckpointError(f'Checkpoint {path} is not a PyTorch or safetensors checkpoint '
                              '(truncated or corrupt?); check the file.') from None
    # Short junk makes torch's weights-only unpickler fail in struct.unpack or a memo lookup.
    except (RuntimeError, EOFError, OSError, ValueError, AttributeError, TypeError, KeyError, IndexError,
            struct.error) as err:
        first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise CheckpointError(f'Checkpoint {path} is not a readable PyTorch checkpoint (truncated or corrupt?): '
                              f'{first_line}') from None


def _is_wellformed_pickle(path: str) -> bool:
    """Whether the file's (first) pickle stream parses, without executing it."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                data = archive.read(next(n for n in archive.namelist() if n.endswith('data.pkl')))
        else:
            with open(path, 'rb') as f:
                data = f.read()
        for _ in pickletools.genops(data):
            pass
        return True
    except Exception:  # any parse failure means "not a pickle"
        return False


def unwrap_state_dict(obj: object, param_key: Optional[str] = None, source: str = 'checkpoint') -> StateDict:
    """Return the generator's state dict from whatever container holds it.

    ``param_key`` picks one entry of a basicsr dict ('params' or 'params_ema');
    if that entry is absent the other is used. Without it, EMA is preferred.
    ``module.`` prefixes (DataParallel/DDP) are removed.
    """
    if not isinstance(obj, Mapping):
        raise CheckpointError(f'{source} holds a {type(obj).__name__}, not a state dict.')
    candidates = ([param_key] if param_key else []) + [k for k in WRAPPER_KEYS if k != param_key]
    for key in candidates:
        inner = obj.get(key)
        if isinstance(inner, Mapping) and any(isinstance(v, torch.Tensor) for v in inner.values()):
            obj = inner
            break
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointError(f'{source} contains no tensors; it is not a network checkpoint.')
    return {(k[len('module.'):] if k.startswith('module.') else k): v for k, v in tensors.items()}


# ------------------------------------------------------------------ layout conversion
_XINNTAO_TO_BASICSR = [
    (re.compile(r'^RRDB_trunk\.(\d+)\.RDB(\d)\.conv(\d)\.'), r'body.\1.rdb\2.conv\3.'),
    (re.compile(r'^trunk_conv\.'), 'conv_body.'),
    (re.compile(r'^upconv(\d)\.'), r'conv_up\1.'),
    (re.compile(r'^HRconv\.'), 'conv_hr.'),
]
_ORIGINAL_RDB = re.compile(r'^model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(weight|bias)$')
_ORIGINAL_TOP = re.compile(r'^model\.(\d+)\.(weight|bias)$')
_ORIGINAL_TRUNK = re.compile(r'^model\.1\.sub\.(\d+)\.(weight|bias)$')


# The key layouts detect_layout recognises (the module docstring describes them).
LAYOUTS = ('basicsr', 'xinntao', 'original')


def detect_layout(state_dict: Mapping[str, torch.Tensor]) -> str:
    """Name the key layout ('basicsr', 'xinntao' or 'original') by sentinel keys.

    Raises:
        CheckpointError: not an RRDBNet generator, or an ESRGAN+ one (``_refuse_esrgan_plus``).
    """
    _refuse_esrgan_plus(state_dict)
    if 'conv_first.weight' in state_dict and 'body.0.rdb1.conv1.weight' in state_dict:
        return 'basicsr'
    if 'conv_first.weight' in state_dict and 'RRDB_trunk.0.RDB1.conv1.weight' in state_dict:
        return 'xinntao'
    if 'model.0.weight' in state_dict and 'model.1.sub.0.RDB1.conv1.0.weight' in state_dict:
        return 'original'
    sample = ', '.join(list(state_dict)[:3])
    raise CheckpointError(f'The state dict is not an ESRGAN/RRDBNet generator in a layout that loads '
                          f'({", ".join(LAYOUTS)}: docs/networks.md#checkpoint-layouts); its keys start with {sample}; '
                          'pass a checkpoint of an RRDBNet generator.')


def _refuse_esrgan_plus(state_dict: Mapping[str, torch.Tensor]) -> None:
    """ESRGAN+ (nESRGAN+, Rakotonirina and Rasoanaivo, 2020) adds to every dense block a 1x1 conv from the block's
    input (``RDBk.conv1x1``, in any of the layouts) and noise inputs: a different network, which ESRGANRRDBNet is
    not. Said in one line, rather than as an unexpected key further on."""
    extra = next((key for key in state_dict if '.conv1x1.' in key), None)
    if extra is not None:
        raise CheckpointError(f'this is an ESRGAN+ (nESRGAN+) generator: its dense blocks have an extra 1x1 conv '
                              f'({extra}) and noise inputs, which ESRGANRRDBNet does not have; ESRGAN+ checkpoints '
                              'are not supported (docs/networks.md#checkpoint-layouts lists those that load).')


def _rename(state_dict: Mapping[str, torch.Tensor], rules: list) -> StateDict:
    out = {}
    for key, value in state_dict.items():
        for pattern, repl in rules:
            key, hits = pattern.subn(repl, key)
            if hits:
                break
        out[key] = value
    return out


def _original_to_basicsr(state_dict: Mapping[str, torch.Tensor]) -> StateDict:
    top = sorted({int(m.group(1)) for k in state_dict if (m := _ORIGINAL_TOP.match(k)) and m.group(1) != '0'})
    # Top-level indices after the trunk: the upsampling convs, then HR conv, then output conv.
    if len(top) < 3:
        raise CheckpointError('The original-layout checkpoint lacks upsampling/output convs (model.3 ... model.10).')
    names = {idx: f'conv_up{i + 1}' for i, idx in enumerate(top[:-2])}
    names[top[-2]], names[top[-1]] = 'conv_hr', 'conv_last'
    names[0] = 'conv_first'
    out = {}
    for key, value in state_dict.items():
        if m := _ORIGINAL_RDB.match(key):
            out[f'body.{m.group(1)}.rdb{m.group(2)}.conv{m.group(3)}.{m.group(4)}'] = value
        elif m := _ORIGINAL_TRUNK.match(key):
            out[f'conv_body.{m.group(2)}'] = value  # model.1.sub.<num_block> closes the trunk
        elif m := _ORIGINAL_TOP.match(key):
            out[f'{names[int(m.group(1))]}.{m.group(2)}'] = value
        else:
            out[key] = value  # left as is so the loader names it as unexpected
    return out


def to_basicsr_layout(state_dict: Mapping[str, torch.Tensor]) -> StateDict:
    """Convert a generator state dict of any known layout to basicsr's keys."""
    layout = detect_layout(state_dict)
    if layout == 'basicsr':
        return dict(state_dict)
    if layout == 'xinntao':
        return _rename(state_dict, _XINNTAO_TO_BASICSR)
    return _original_to_basicsr(state_dict)


# ------------------------------------------------------------- architecture inference
def infer_arch_params(state_dict: Mapping[str, torch.Tensor]) -> dict:
    """Constructor arguments of ``ESRGANRRDBNet`` read off a basicsr-layout state dict.

    Scale comes from the number of upsampling convs (two for x4, three for x8)
    and, for the x4 body, from the input channels: Real-ESRGAN's x2 and x1
    models pixel-unshuffle the input, so their ``conv_first`` sees 4x or 16x
    the output channels.
    """
    try:
        first_in = state_dict['conv_first.weight'].shape[1]
        num_feat = state_dict['conv_first.weight'].shape[0]
        num_out_ch = state_dict['conv_last.weight'].shape[0]
        num_grow_ch = state_dict['body.0.rdb1.conv1.weight'].shape[0]
    except KeyError as err:
        raise CheckpointError(f'The generator state dict lacks {err.args[0]}; it is incomplete.') from None
    num_block = len({k.split('.')[1] for k in state_dict if k.startswith('body.')})
    num_up = len({k.split('.')[0] for k in state_dict if re.match(r'^conv_up\d\.', k)})
    if num_up == 3:
        scale, num_in_ch = 8, first_in
    elif num_up == 2:
        scale = {4 * num_out_ch: 2, 16 * num_out_ch: 1}.get(first_in, 4)
        num_in_ch = first_in // unshuffle_factor(scale)**2
    else:
        raise CheckpointError(f'The generator has {num_up} upsampling convs; ESRGANRRDBNet supports scales '
                              f'{SUPPORTED_SCALES} (2 or 3 upsampling convs).')
    assert num_upsample_stages(scale) == num_up
    return dict(num_in_ch=num_in_ch, num_out_ch=num_out_ch, scale=scale, num_feat=num_feat, num_block=num_block,
                num_grow_ch=num_grow_ch)


def first_difference(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]):
    """The first key whose presence or shape differs: (key, shape in a or None, shape in b or None), or None."""
    for key, tensor in a.items():
        if key not in b or b[key].shape != tensor.shape:
            return key, tuple(tensor.shape), (tuple(b[key].shape) if key in b else None)
    for key, tensor in b.items():
        if key not in a:
            return key, None, tuple(tensor.shape)
    return None


def check_same_keys(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor], missing_in_b: str,
                    missing_in_a: str, other_shape: str) -> None:
    """Raise one CheckpointError for the first key whose presence or shape differs between ``a`` and ``b``.

    The messages are templates with ``{key}``, ``{a}`` and ``{b}`` (the key's shape in ``a`` and in ``b``): the
    first is used when ``b`` lacks the key, the second when ``a`` does, the third when the shapes differ.
    """
    difference = first_difference(a, b)
    if difference is None:
        return
    key, a_shape, b_shape = difference
    template = missing_in_b if b_shape is None else missing_in_a if a_shape is None else other_shape
    raise CheckpointError(template.format(key=key, a=a_shape, b=b_shape))


def check_fits(expected: Mapping[str, torch.Tensor], loaded: Mapping[str, torch.Tensor], source: str) -> None:
    """Raise one CheckpointError naming the first key of a checkpoint that does not fit the network."""
    check_same_keys(expected, loaded,
                    f'{source} lacks {{key}} (expected shape {{a}}); it was saved from a different architecture.',
                    f'{source} has {{key}} (shape {{b}}) which the network does not have; it was saved from a '
                    'different architecture.',
                    f'{source} does not fit the network: {{key}} has shape {{b}} in the file but {{a}} in the '
                    'network; check the network options (scale, num_feat, num_block, num_grow_ch).')


def load_generator_state(path: str, param_key: Optional[str] = None) -> StateDict:
    """Read a generator checkpoint of any layout and return basicsr-layout tensors."""
    state = unwrap_state_dict(read_checkpoint(path), param_key, source=f'Checkpoint {path}')
    try:
        return to_basicsr_layout(state)
    except CheckpointError as err:
        raise CheckpointError(f'Checkpoint {path}: {err}') from None


def load_into(net: torch.nn.Module, path: str, param_key: Optional[str] = None) -> None:
    """Load a checkpoint of any layout into an existing ``ESRGANRRDBNet``, strictly."""
    state = load_generator_state(path, param_key)
    check_fits(net.state_dict(), state, f'Checkpoint {path}')
    net.load_state_dict(state, strict=True)


def load_generator(path: str, param_key: Optional[str] = None) -> ESRGANRRDBNet:
    """Build an ``ESRGANRRDBNet`` whose architecture is read from the file, on the CPU, in eval mode."""
    state = load_generator_state(path, param_key)
    net = ESRGANRRDBNet(**infer_arch_params(state))
    check_fits(net.state_dict(), state, f'Checkpoint {path}')
    net.load_state_dict(state, strict=True)
    return net.eval()
