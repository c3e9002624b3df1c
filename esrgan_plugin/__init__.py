"""ESRGAN (Wang et al., 2018) as a plugin for BasicSR 1.4.2.

``esrgan_plugin.register()`` is the one entry point: it adapts basicsr to current torch/torchvision
(``compat.apply``) and imports every module that registers a class or function into basicsr's registries. Each
command that reads a registry calls it once, after parsing its arguments; your own code calls it before basicsr
builds anything from an option file (README.md#use-it-from-your-own-basicsr-code).

``import esrgan_plugin`` registers nothing and imports neither torch nor basicsr, so that the commands answer
``-h`` at once. It does one thing: it makes ``import basicsr`` possible (``compat.make_basicsr_importable``
installs, where missing, two modules basicsr imports, without importing torch), so that any of the plugin's
modules, which import basicsr, can be imported before ``register()``.
"""
from __future__ import annotations

from esrgan_plugin import compat

__version__ = '0.1.0'

# The names this plugin registers, by registry; docs/networks.md#registered-names lists them too.
REGISTERED = {
    'arch': ['ESRGANRRDBNet', 'ESRGANVGGDiscriminator'],
    'model': ['ESRGANPSNRModel', 'ESRGANRaGANModel'],
    'loss': ['ESRGANPerceptualLoss', 'ESRGANStandInPerceptualLoss', 'ESRGANRaGANLoss'],
    'dataset': ['DIV2KPairedDataset', 'GTOnlyDataset'],
    'metric': ['calculate_lpips', 'calculate_color_shift'],
}

compat.make_basicsr_importable()


def register() -> None:
    """Adapt basicsr to current torch/torchvision and register the plugin's classes. Idempotent."""
    compat.apply()  # basicsr's functions that need replacing on current torch, CPU and YAML 1.2

    # Each import below registers into a basicsr registry. They follow the layers' order
    # (docs/development.md#import-order): a module imports only from the layers before its own, which are imported
    # already, so every name registers at its own line, and each registry (and so the schema) lists them in
    # this order.
    from esrgan_plugin.archs import rrdbnet_arch  # noqa: F401  ARCH_REGISTRY: ESRGANRRDBNet
    from esrgan_plugin.archs import discriminator_arch  # noqa: F401  ARCH_REGISTRY: ESRGANVGGDiscriminator
    from esrgan_plugin.data import div2k_dataset  # noqa: F401  DATASET_REGISTRY: DIV2KPairedDataset
    from esrgan_plugin.data import realworld_dataset  # noqa: F401  DATASET_REGISTRY: GTOnlyDataset
    from esrgan_plugin.losses import perceptual_loss  # noqa: F401  LOSS_REGISTRY: ESRGANPerceptualLoss
    from esrgan_plugin.losses import standin_perceptual_loss  # noqa: F401  LOSS_REGISTRY: ESRGANStandInPerceptualLoss
    from esrgan_plugin.losses import ragan_loss  # noqa: F401  LOSS_REGISTRY: ESRGANRaGANLoss
    from esrgan_plugin.metrics import lpips_metric  # noqa: F401  METRIC_REGISTRY: calculate_lpips
    from esrgan_plugin.metrics import color_metric  # noqa: F401  METRIC_REGISTRY: calculate_color_shift
    from esrgan_plugin.models import psnr_model  # noqa: F401  MODEL_REGISTRY: ESRGANPSNRModel
    from esrgan_plugin.models import ragan_model  # noqa: F401  MODEL_REGISTRY: ESRGANRaGANModel
