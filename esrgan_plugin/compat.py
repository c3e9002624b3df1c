"""Adaptations that make basicsr 1.4.2 work on current torch/torchvision and on CPU.

basicsr 1.4.2 (the release on the package index) predates torchvision 0.17,
torch 2.x's CPU distributed story, and Python 3.12. Every adaptation the plugin
needs lives here, each with the version it serves and why, so that it can be
deleted the day basicsr ships a fix. Nothing in basicsr's files is changed:
we add a missing module alias and replace two functions at the places where
basicsr's launcher looks them up.

``make_basicsr_importable()`` runs on ``import esrgan_plugin`` and imports nothing heavy; ``apply()`` (which
includes it) runs in ``esrgan_plugin.register()``. Both are idempotent.
"""
from __future__ import annotations

import importlib.metadata
import os
import re
import sys
import types
from typing import Any, Optional


def _torchvision_has_functional_tensor() -> bool:
    """Whether the installed torchvision still ships ``transforms.functional_tensor`` (before 0.17), read from its
    installed version so that torchvision (and torch) are not imported to find out."""
    try:
        version = importlib.metadata.version('torchvision')
    except importlib.metadata.PackageNotFoundError:
        return False
    major, minor = (int(part) for part in re.findall(r'\d+', version)[:2])
    return (major, minor) < (0, 17)


def _alias_functional_tensor() -> None:
    """torchvision >= 0.17 removed ``torchvision.transforms.functional_tensor``.

    ``basicsr/data/degradations.py`` imports ``rgb_to_grayscale`` from it, and
    ``import basicsr`` imports that module eagerly, so without this alias
    ``import basicsr`` raises ModuleNotFoundError. The function still exists in
    ``torchvision.transforms.functional`` with the same behaviour on tensors.

    The alias takes the function from there only when basicsr asks for it, so installing it imports nothing (a
    command answers ``-h`` before torch is imported). It answers for that one name only: tools that walk
    ``sys.modules`` ask every module for ``__file__`` and the like, and must not set off an import of torchvision.
    """
    name = 'torchvision.transforms.functional_tensor'
    if name in sys.modules or _torchvision_has_functional_tensor():
        return
    alias = types.ModuleType(name)
    alias.__doc__ = 'Alias created by esrgan_plugin.compat for basicsr 1.4.2.'

    def provide(attribute: str) -> Any:
        if attribute != 'rgb_to_grayscale':
            raise AttributeError(f'module {name!r} has no attribute {attribute!r}')
        from torchvision.transforms import functional
        alias.rgb_to_grayscale = functional.rgb_to_grayscale
        return alias.rgb_to_grayscale

    alias.__getattr__ = provide  # a module's __getattr__ answers the names it does not hold (PEP 562)
    sys.modules[name] = alias


def _provide_distutils_looseversion() -> None:
    """Python 3.12 removed ``distutils``; ``basicsr/archs/arch_util.py`` imports
    ``distutils.version.LooseVersion`` at import time.

    setuptools installs a ``distutils`` shim, but only where setuptools is
    present and its shim is enabled; a bare 3.12 venv has neither. basicsr only
    compares torchvision versions with it, so a small numeric comparison will do.
    """
    try:
        from distutils.version import LooseVersion  # noqa: F401
        return
    except ImportError:
        pass

    class LooseVersion:  # the minimum basicsr uses: construction and >=, <, ==
        def __init__(self, text: str) -> None:
            self.text = str(text)
            parts = []
            for piece in self.text.replace('+', '.').replace('-', '.').split('.'):
                digits = ''.join(ch for ch in piece if ch.isdigit())
                parts.append(int(digits) if digits else 0)
            self.parts = tuple(parts)

        def __eq__(self, other: object) -> bool:
            return self.parts == LooseVersion(str(getattr(other, 'text', other))).parts

        def __lt__(self, other: Any) -> bool:
            return self.parts < LooseVersion(str(getattr(other, 'text', other))).parts

        def __ge__(self, other: Any) -> bool:
            return not self.__lt__(other)

    distutils = types.ModuleType('distutils')
    version = types.ModuleType('distutils.version')
    version.LooseVersion = LooseVersion
    distutils.version = version
    sys.modules['distutils'] = distutils
    sys.modules['distutils.version'] = version


def load_resume_state(opt: dict) -> Optional[dict]:
    """Replacement for ``basicsr.train.load_resume_state`` (the plugin's own loop uses ``resume`` directly).

    basicsr 1.4.2 maps the resume state onto ``torch.cuda.current_device()``,
    which raises on a machine without CUDA, so ``--auto_resume`` and
    ``path.resume_state`` never work on CPU. The state is loaded on the CPU
    (``Optimizer.load_state_dict`` moves each tensor to its parameter's device)
    with ``weights_only=True``: a state file is data, not code. With
    ``--auto_resume`` it takes the newest state whose networks load too
    (``resume.find_resume_point``).

    Like basicsr's, it writes the found path into ``opt['path']['resume_state']``
    (basicsr's ``check_resume`` reads it there).
    """
    from basicsr.utils import check_resume

    from esrgan_plugin.training.launch import experiment_folders
    from esrgan_plugin.training.resume import find_resume_point

    opt['path'].setdefault('experiments_root',
                           experiment_folders(opt['root_path'], opt['name'], is_train=True)['experiments_root'])
    point = find_resume_point(opt)
    if point is None:
        return None
    opt['path']['resume_state'] = point.path
    check_resume(opt, point.iteration)
    return point.state


def init_dist(launcher: str, backend: Optional[str] = None, **kwargs: Any) -> None:
    """Replacement for ``basicsr.utils.dist_util.init_dist``.

    basicsr 1.4.2 always calls ``torch.cuda.set_device(rank % device_count)``
    (a ZeroDivisionError without CUDA) and always uses NCCL (which has no CPU
    support). We pick NCCL with one device per local rank when CUDA is there,
    and gloo on CPU, so ``torchrun ... --launcher pytorch`` works on both.
    """
    import torch
    import torch.distributed as dist

    if launcher == 'slurm':
        # SLURM exports its own variables; translate them to torchrun's.
        os.environ.setdefault('RANK', os.environ['SLURM_PROCID'])
        os.environ.setdefault('WORLD_SIZE', os.environ['SLURM_NTASKS'])
        os.environ.setdefault('LOCAL_RANK', os.environ.get('SLURM_LOCALID', '0'))
        os.environ.setdefault('MASTER_PORT', str(kwargs.pop('port', None) or 29500))
        if 'MASTER_ADDR' not in os.environ:
            import subprocess
            nodes = os.environ['SLURM_NODELIST']
            os.environ['MASTER_ADDR'] = subprocess.getoutput(f'scontrol show hostname {nodes} | head -n1')
    elif launcher != 'pytorch':
        raise ValueError(f'Unknown launcher {launcher!r}; use "pytorch" (torchrun) or "slurm".')
    kwargs.pop('port', None)

    use_cuda = torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(int(os.environ.get('LOCAL_RANK', 0)) % torch.cuda.device_count())
    dist.init_process_group(backend=backend or ('nccl' if use_cuda else 'gloo'), **kwargs)


def ordered_yaml() -> tuple:
    """Replacement for ``basicsr.utils.options.ordered_yaml``: basicsr's loader, plus YAML 1.2 floats.

    basicsr 1.4.2 re-reads the option file itself with PyYAML (YAML 1.1), where
    ``lr: 2e-4`` is the string ``'2e-4'`` and the optimizer fails with a TypeError.
    The plugin's option check reads ``2e-4`` as the float the user meant; giving
    basicsr the same reading here (rather than handing it a rewritten copy of the
    file) keeps the file basicsr copies into ``experiments/`` the user's own, and
    is one small rule both readers share (``option_file.with_yaml12_floats``).
    """
    from esrgan_plugin.config.option_file import with_yaml12_floats

    loader, dumper = REPLACED['ordered_yaml']()
    return with_yaml12_floats(loader), dumper


def postprocess_yml_value(value: str) -> Any:
    """Replacement for ``basicsr.utils.options._postprocess_yml_value`` (the ``--force_yml`` values).

    basicsr 1.4.2 keeps ``2e-4`` and ``-1`` as strings and reads lists with ``eval``.
    A value on the command line now means what it means in the file (safe YAML,
    YAML 1.2 floats), so the override the option check validated is the one that runs.
    """
    from esrgan_plugin.config.option_file import parse_override_value

    return parse_override_value(value)


# basicsr's own functions that apply() replaced, kept for tests that show why.
REPLACED: dict = {}


def make_basicsr_importable() -> None:
    """The two adaptations without which ``import basicsr`` fails; neither imports torch."""
    _alias_functional_tensor()
    _provide_distutils_looseversion()


def apply() -> None:
    """Install every adaptation. Safe to call more than once."""
    make_basicsr_importable()

    import basicsr.train
    import basicsr.utils.options

    # The launcher looks these names up in its own module at call time, so
    # rebinding them there is enough; basicsr's files stay untouched.
    for module, name, replacement in ((basicsr.train, 'load_resume_state', load_resume_state),
                                      (basicsr.utils.options, 'init_dist', init_dist),
                                      (basicsr.utils.options, 'ordered_yaml', ordered_yaml),
                                      (basicsr.utils.options, '_postprocess_yml_value', postprocess_yml_value)):
        REPLACED.setdefault(name, getattr(module, name))
        setattr(module, name, replacement)
