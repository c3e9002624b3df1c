"""The weights a model's networks start from: ``path.pretrain_network_g`` / ``path.pretrain_network_d``, and on
resume the run's own ``net_g_<iter>.pth`` / ``net_d_<iter>.pth`` (basicsr's ``check_resume`` points the same keys
at them).

* A generator, i.e. any network with basicsr's RRDBNet parameter names (the plugin's ``ESRGANRRDBNet``, basicsr's
  ``RRDBNet``), loads every checkpoint ``archs.checkpoint.load_generator`` reads: the basicsr, xinntao and original
  key layouts, ``params``/``params_ema`` dicts, ``module.`` prefixes, ``.safetensors``. So a released model such
  as Real-ESRGAN's ``RealESRGAN_x4plus.pth`` is a starting point as it is (fine-tuning, docs/training.md).
* Which entry of a ``{'params', 'params_ema'}`` file: ``path.param_key_g`` (``~``: ``params_ema`` when present)
  for the generator *and* its EMA copy, so both start from the same weights; on resume, the run's own ``params``
  for the generator and ``params_ema`` for the EMA, whatever the option says.
* Other networks (the discriminator) load as basicsr saves them, ``module.`` prefixes removed, and a checkpoint
  that does not fit is named with its first key that differs.
"""
from __future__ import annotations

from typing import Optional

import torch
from basicsr.utils import get_root_logger

from esrgan_plugin.archs import checkpoint
from esrgan_plugin.archs.checkpoint import CheckpointError


def has_rrdbnet_names(net: torch.nn.Module) -> bool:
    """Whether ``net``'s parameters are named as basicsr's RRDBNet's, the layout the converters produce."""
    names = net.state_dict()
    return 'conv_first.weight' in names and 'body.0.rdb1.conv1.weight' in names


def generator_param_key(opt: dict, entry: str) -> Optional[str]:
    """The entry of a basicsr checkpoint a generator loads; ``entry``: what a resumed run needs ('params' for the
    generator, 'params_ema' for its EMA copy)."""
    if opt['path'].get('resume_state'):
        return entry
    return opt['path'].get('param_key_g')


def load_generator_weights(net: torch.nn.Module, path: str, param_key: Optional[str]) -> None:
    """Load a generator checkpoint of any layout into ``net`` (strictly).

    Raises:
        CheckpointError: one line naming the file: unreadable, not an RRDBNet generator in a layout that loads, or
            another architecture than ``net``'s (then the file's architecture is given, to copy into network_g).
    """
    state = checkpoint.load_generator_state(path, param_key)
    difference = checkpoint.first_difference(net.state_dict(), state)
    if difference is not None:
        try:
            found = checkpoint.infer_arch_params(state)
        except CheckpointError:
            found = None
        if found is not None:
            key, in_net, in_file = difference
            described = ', '.join(f'{k}: {v}' for k, v in found.items())
            raise CheckpointError(f'Checkpoint {path} holds a generator with {described}, which does not fit '
                                  f'network_g ({key}: shape {in_file} in the file, {in_net} in the network); set '
                                  'network_g (and scale) to these values or use a checkpoint of this architecture.')
        checkpoint.check_fits(net.state_dict(), state, f'Checkpoint {path}')
    net.load_state_dict(state, strict=True)


def load_weights(net: torch.nn.Module, path: str, strict: bool, param_key: Optional[str], opt: dict) -> None:
    """Load ``path`` into the bare network ``net``: a generator in any layout, another network as basicsr saved it.

    ``param_key`` is the entry basicsr's callers ask for ('params', 'params_ema', or ``path.param_key_d``);
    for a generator, ``generator_param_key`` decides.
    """
    if has_rrdbnet_names(net):
        key = generator_param_key(opt, param_key or 'params')
        load_generator_weights(net, path, key)
        get_root_logger().info(f'Loaded {path} into the generator (param key: {key or "EMA if present"}).')
        return
    state = checkpoint.unwrap_state_dict(checkpoint.read_checkpoint(path), param_key, f'Checkpoint {path}')
    if strict:
        checkpoint.check_fits(net.state_dict(), state, f'Checkpoint {path}')
    net.load_state_dict(state, strict=strict)
    get_root_logger().info(f'Loaded {path} into {type(net).__name__} (param key: {param_key or "EMA if present"}).')
