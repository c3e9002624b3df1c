"""ESRGAN (Wang et al., 2018) as a plugin for BasicSR 1.4.2.

``import esrgan_plugin`` makes basicsr usable on current torch/torchvision
(``compat``) and registers the plugin's components into basicsr's registries.

One exception, so that every command answers ``-h`` at once: ``python -m
esrgan_plugin.<command>`` imports this package before the command can parse
its arguments, and importing torch and basicsr takes seconds (tens of seconds
on a busy machine). In that case registration is left to the command, which
calls ``register()`` once its arguments are parsed. Library users, tests and
scripts that ``import esrgan_plugin`` get everything registered as before.
"""
from __future__ import annotations

import sys

__version__ = '0.1.0'

# The names this plugin registers, by registry; docs/networks.md#registered-names lists them too.
REGISTERED = {
    'arch': ['ESRGANRRDBNet', 'ESRGANVGGDiscriminator'],
    'model': ['ESRGANPSNRModel', 'ESRGANRaGANModel'],
    'loss': ['ESRGANPerceptualLoss', 'ESRGANStandInPerceptualLoss', 'ESRGANRaGANLoss'],
    'dataset': ['DIV2KPairedDataset'],
    'metric': ['calculate_lpips', 'calculate_color_shift'],
}


def register() -> None:
    """Adapt basicsr to current torch/torchvision and register the plugin's classes. Idempotent."""
    from esrgan_plugin import compat

    compat.apply()  # must run before anything imports basicsr

    # registration: each import below registers its classes into a basicsr registry
    from esrgan_plugin.archs import rrdbnet_arch  # noqa: F401  ARCH_REGISTRY: ESRGANRRDBNet
    from esrgan_plugin.archs import discriminator_arch  # noqa: F401  ARCH_REGISTRY: ESRGANVGGDiscriminator
    from esrgan_plugin.losses import perceptual_loss  # noqa: F401  LOSS_REGISTRY: ESRGANPerceptualLoss
    from esrgan_plugin.losses import standin_perceptual_loss  # noqa: F401  LOSS_REGISTRY: ESRGANStandInPerceptualLoss
    from esrgan_plugin.losses import ragan_loss  # noqa: F401  LOSS_REGISTRY: ESRGANRaGANLoss
    from esrgan_plugin.models import psnr_model  # noqa: F401  MODEL_REGISTRY: ESRGANPSNRModel
    from esrgan_plugin.models import ragan_model  # noqa: F401  MODEL_REGISTRY: ESRGANRaGANModel
    from esrgan_plugin.data import div2k_dataset  # noqa: F401  DATASET_REGISTRY: DIV2KPairedDataset
    from esrgan_plugin.metrics import lpips_metric  # noqa: F401  METRIC_REGISTRY: calculate_lpips
    from esrgan_plugin.metrics import color_metric  # noqa: F401  METRIC_REGISTRY: calculate_color_shift


def _imported_to_run_one_of_our_commands() -> bool:
    """Whether Python imports this package only as the parent of ``python -m esrgan_plugin.<command>``.

    While ``-m`` locates the module (and so imports its parent packages), CPython
    sets ``sys.argv[0]`` to ``'-m'`` (documented with the ``-m`` option in the
    command-line docs); ``sys.orig_argv`` (Python 3.10+) still holds the command
    line, which names the module. Any other way of importing the package, including
    a ``python -m`` run of some other module that imports it, registers at once.
    """
    if sys.argv[:1] != ['-m']:
        return False
    args = list(getattr(sys, 'orig_argv', []))
    for i, arg in enumerate(args):
        if arg == '-m':
            module = args[i + 1] if i + 1 < len(args) else ''
            break
        if arg.startswith('-m'):  # the joined form, python -mesrgan_plugin.train
            module = arg[2:]
            break
    else:
        return False
    return module.startswith(__name__ + '.')


if not _imported_to_run_one_of_our_commands():
    register()
