"""ESRGAN (Wang et al., 2018) as a plugin for BasicSR 1.4.2.

Importing the package makes basicsr usable on current torch/torchvision
(``compat``) and registers the plugin's components into basicsr's registries.
"""
from . import compat

compat.apply()  # must run before anything imports basicsr

# registration: each import below registers its classes into a basicsr registry
from . import rrdbnet_arch  # noqa: E402,F401  ARCH_REGISTRY: ESRGANRRDBNet
from . import div2k_dataset  # noqa: E402,F401  DATASET_REGISTRY: DIV2KPairedDataset

__version__ = '0.1.0'

# The names this plugin registers, by registry; README lists them too.
REGISTERED = {
    'arch': ['ESRGANRRDBNet'],
    'dataset': ['DIV2KPairedDataset'],
}
