"""The vocabularies of the options, each defined once.

The schema, the builders, the commands' ``choices`` and the docs all read these names, so adding a precision,
a compile mode, an optimizer or a scheduler is one edit here (plus the code that implements it). Only plain
Python here: commands offer these as choices before torch is imported, so ``-h`` stays instant.
"""
from __future__ import annotations

# Compute precisions, by the names the option files (train.amp, val.amp) and `infer --precision` use.
PRECISIONS = ('fp32', 'bf16', 'fp16')
# torch.compile modes (train.compile, val.compile, `infer --compile MODE`); true means torch's default.
COMPILE_MODES = ('default', 'reduce-overhead', 'max-autotune', 'max-autotune-no-cudagraphs')
# Optimizers of train.optim_g / train.optim_d: classes of torch.optim.
OPTIMIZERS = ('Adam', 'AdamW')
# Schedulers of train.scheduler: basicsr's (MultiStepLR is basicsr's name for MultiStepRestartLR without restarts).
SCHEDULERS = ('MultiStepLR', 'MultiStepRestartLR', 'CosineAnnealingRestartLR')

# dist_params.timeout: seconds a rank of a distributed run waits for the others in one collective
# (docs/training.md#several-machines). The other ranks wait while rank 0 validates or writes a checkpoint, so it
# must exceed those; a rank that hangs or went away still ends the whole job within minutes, not days.
DIST_TIMEOUT_S = 600

# `python -m esrgan_plugin.infer`
DEVICES = ('auto', 'cpu', 'cuda')
OUTPUT_FORMATS = ('auto', 'png', 'jpg', 'webp', 'tiff')
ALPHA_MODES = ('net', 'bicubic')
# `infer --color-fix`: the output's low frequencies matched to the input's (docs/inference.md#colour-fix).
COLOR_FIXES = ('none', 'mean', 'wavelet')
# `auto`: the whole image where the memory model says it fits, which computes each pixel once and has no seams
# (docs/benchmarks.md#--tile-auto-against-fixed-tiles); else the largest tile that fits. Measured with trained
# weights (docs/inference.md#tiling): 96 pixels of context keep tiled outputs within 1 level of untiled ones on
# ~0.01 % of values.
DEFAULT_TILE = 'auto'
DEFAULT_TILE_PAD = 96

# `python -m esrgan_plugin.export`: the output extensions, each a format.
EXPORT_FORMATS = ('.pth', '.safetensors', '.onnx')

# GTOnlyDataset's `degradation`: how its LR is made (docs/data.md#gt-only-datasets). realworld: Real-ESRGAN's
# second-order degradation, run on the batch by esrgan_plugin/data/realworld_degradation.py; bicubic: the
# paper's MATLAB-bicubic downscale of each GT crop, made when the sample is loaded.
DEGRADATIONS = ('realworld', 'bicubic')
# The blur kernels of basicsr.data.degradations.random_mixed_kernels, by the names its kernel_list takes.
BLUR_KERNELS = ('iso', 'aniso', 'generalized_iso', 'generalized_aniso', 'plateau_iso', 'plateau_aniso')
# The interpolation modes basicsr's RealESRNetModel draws from for every random resize, in its order.
RESIZE_MODES = ('area', 'bilinear', 'bicubic')
# The real-world degradation's settings, by the names Real-ESRGAN's train_realesrnet_x4plus.yml gives
# them, with its values (Wang et al., 2021, https://arxiv.org/abs/2107.10833). The schema's defaults and the
# pipeline's RealWorldSettings read this one table; docs/training.md#degradation-settings lists it (a test keeps them equal).
# crop_pad_size is the region basicsr's RealESRGANDataset cuts (and pads) before degrading, hard-coded there.
REALWORLD_DEFAULTS = {
    'blur_kernel_size': 21, 'kernel_list': list(BLUR_KERNELS), 'kernel_prob': [0.45, 0.25, 0.12, 0.03, 0.12, 0.03],
    'sinc_prob': 0.1, 'blur_sigma': [0.2, 3.0], 'betag_range': [0.5, 4.0], 'betap_range': [1.0, 2.0],
    'blur_kernel_size2': 21, 'kernel_list2': list(BLUR_KERNELS),
    'kernel_prob2': [0.45, 0.25, 0.12, 0.03, 0.12, 0.03],
    'sinc_prob2': 0.1, 'blur_sigma2': [0.2, 1.5], 'betag_range2': [0.5, 4.0], 'betap_range2': [1.0, 2.0],
    'final_sinc_prob': 0.8,
    'resize_prob': [0.2, 0.7, 0.1], 'resize_range': [0.15, 1.5], 'gaussian_noise_prob': 0.5,
    'noise_range': [1.0, 30.0], 'poisson_scale_range': [0.05, 3.0], 'gray_noise_prob': 0.4,
    'jpeg_range': [30.0, 95.0],
    'second_blur_prob': 0.8, 'resize_prob2': [0.3, 0.4, 0.3], 'resize_range2': [0.3, 1.2],
    'gaussian_noise_prob2': 0.5, 'noise_range2': [1.0, 25.0], 'poisson_scale_range2': [0.05, 2.5],
    'gray_noise_prob2': 0.4, 'jpeg_range2': [30.0, 95.0],
    'gt_usm': True, 'gt_size': 256, 'crop_pad_size': 400,
}
# Real-ESRGAN's training-pair pool (its queue_size): pairs kept by esrgan_plugin/models/realworld_batches.py.
REALWORLD_QUEUE_SIZE = 180
