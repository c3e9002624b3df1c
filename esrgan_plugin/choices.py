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
# `auto`: of the tiles whose predicted peak fits the memory budget, the one whose windows compute the fewest
# pixels (the whole image where it fits: each pixel computed once, no seams;
# docs/benchmarks.md#--tile-auto-against-fixed-tiles), on the CPU up to a measured fastest tile
# (docs/inference.md#memory-sized-tiles). Measured with trained weights (docs/inference.md#tiling): 96 pixels of
# context keep tiled outputs within 1 level of untiled ones on ~0.01 % of values.
DEFAULT_TILE = 'auto'
DEFAULT_TILE_PAD = 96
# `--tile auto` without --max-memory: the command's peak stays within this share of the memory available to it
# when an image is read (its own memory in use plus the kernel's MemAvailable, or the GPU's free memory), leaving
# the rest to the user's other programs.
DEFAULT_MEMORY_SHARE = 0.5
# On the CPU, `--tile auto`'s tiles stay at or below this side (input pixels). The CPU time per computed window
# pixel, measured on windows of 256 to 2240 pixels (docs/benchmarks.md#fastest-tile-on-the-cpu), stops falling
# from about 1024 on, so a larger tile saves only the context its neighbours recompute (with the default 96-pixel
# pad, 1.19x the image's pixels at 2048, 1.08x at 4672), while every tensor of the window grows with its area and
# the kernel's share of the time, faulting in their fresh pages, rises. Not measured on a GPU: there auto keeps
# preferring large tiles within the budget.
CPU_FASTEST_TILE = 2048

# `python -m esrgan_plugin.export`: the output extensions, each a format.
EXPORT_FORMATS = ('.pth', '.safetensors', '.onnx')
