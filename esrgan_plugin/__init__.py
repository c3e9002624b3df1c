"""ESRGAN (Wang et al., 2018) as a plugin for BasicSR 1.4.2.

Importing the package makes basicsr usable on current torch/torchvision
(``compat``) and registers the plugin's components into basicsr's registries.
"""
from . import compat

compat.apply()  # must run before anything imports basicsr

# registration: each import below registers its classes into a basicsr registry
from . import rrdbnet_arch  # noqa: E402,F401  ARCH_REGISTRY: ESRGANRRDBNet
from . import discriminator_arch  # noqa: E402,F401  ARCH_REGISTRY: ESRGANVGGDiscriminator
from . import perceptual_loss  # noqa: E402,F401  LOSS_REGISTRY: ESRGANPerceptualLoss
from . import ragan_loss  # noqa: E402,F401  LOSS_REGISTRY: ESRGANRaGANLoss
from . import psnr_model  # noqa: E402,F401  MODEL_REGISTRY: ESRGANPSNRModel
from . import ragan_model  # noqa: E402,F401  MODEL_REGISTRY: ESRGANRaGANModel
from . import div2k_dataset  # noqa: E402,F401  DATASET_REGISTRY: DIV2KPairedDataset
from . import lpips_metric  # noqa: E402,F401  METRIC_REGISTRY: calculate_lpips

__version__ = '0.1.0'

# The names this plugin registers, by registry; README lists them too.
REGISTERED = {
    'arch': ['ESRGANRRDBNet', 'ESRGANVGGDiscriminator'],
    'model': ['ESRGANPSNRModel', 'ESRGANRaGANModel'],
    'loss': ['ESRGANPerceptualLoss', 'ESRGANRaGANLoss'],
    'dataset': ['DIV2KPairedDataset'],
    'metric': ['calculate_lpips'],
}
