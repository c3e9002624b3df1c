"""LPIPS (Zhang et al., 2018, *The Unreasonable Effectiveness of Deep Features as a Perceptual Metric*) as a
basicsr metric: ``type: calculate_lpips`` in ``val.metrics``.

LPIPS compares unit-normalised features of an ImageNet network (AlexNet or VGG16) at five depths, weights the
squared differences per channel with linear layers fitted to human judgements, averages over the image and sums
over depths: 0 for identical images, larger for more different ones (lower is better).

This is a thin re-implementation of the ``lpips`` package's v0.1 metric (its numbers to 1e-6, see
tests/metrics/test_lpips_metric.py), written so that every weight comes from a local file and nothing is downloaded:

* the backbone is torchvision's ImageNet file, at torchvision's cache location
  (``$TORCH_HOME/hub/checkpoints/``) or ``backbone_weights``; only its ``features.*`` tensors are used;
* the linear layers are the ``lpips`` package's ``weights/v0.1/<net>.pth`` (shipped inside that package,
  5 KB) or ``lpips_weights``.

Both are read with ``weights_only=True``; a missing file is one line saying where to put it.
"""
from __future__ import annotations

import functools
import importlib.util
import os
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
from basicsr.utils.registry import METRIC_REGISTRY
from torch import nn
from torchvision.models import alexnet, vgg16

from esrgan_plugin.errors import UserFacingError
from esrgan_plugin.losses.perceptual_loss import load_torchvision_features


class LPIPSWeightsMissing(UserFacingError):
    pass


@dataclass(frozen=True)
class Backbone:
    title: str
    build: object  # torchvision constructor
    filename: str  # torchvision's IMAGENET1K_V1 file name
    taps: tuple  # indices in .features whose outputs (after ReLU) are compared
    channels: tuple


BACKBONES = {
    'alex': Backbone('AlexNet', alexnet, 'alexnet-owt-7be5be79.pth', (1, 4, 7, 9, 11), (64, 192, 384, 256, 256)),
    'vgg': Backbone('VGG16', vgg16, 'vgg16-397923af.pth', (3, 8, 15, 22, 29), (64, 128, 256, 512, 512)),
}
MODELS_URL = 'https://download.pytorch.org/models/'
# LPIPS v0.1 maps [-1, 1] inputs to roughly ImageNet-normalised ones with these constants.
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)


def default_backbone_path(net: str) -> str:
    """torchvision's own cache location for the ImageNet file: ``$TORCH_HOME/hub/checkpoints/``."""
    return os.path.join(torch.hub.get_dir(), 'checkpoints', BACKBONES[net].filename)


def packaged_linear_path(net: str) -> Optional[str]:
    """The linear-layer weights shipped inside the ``lpips`` package, or None when it is not installed."""
    spec = importlib.util.find_spec('lpips')
    if spec is None or not spec.submodule_search_locations:
        return None
    return os.path.join(list(spec.submodule_search_locations)[0], 'weights', 'v0.1', f'{net}.pth')


def resolve_weights(net: str = 'alex', backbone_weights: Optional[str] = None,
                    lpips_weights: Optional[str] = None) -> tuple[str, str]:
    """(backbone file, linear-layer file) for ``net``; raises LPIPSWeightsMissing naming what to do."""
    if net not in BACKBONES:
        raise UserFacingError(f'lpips metric: net {net!r} is not supported; use alex or vgg.')
    backbone = BACKBONES[net]
    backbone_path = os.path.expanduser(backbone_weights) if backbone_weights else default_backbone_path(net)
    if not os.path.isfile(backbone_path):
        raise LPIPSWeightsMissing(
            f'the {backbone.title} weights for the LPIPS metric are not at {backbone_path}; download '
            f'{MODELS_URL}{backbone.filename} and put it there (or set backbone_weights of the lpips metric '
            'in val.metrics to its path).')
    linear_path = os.path.expanduser(lpips_weights) if lpips_weights else packaged_linear_path(net)
    if linear_path is None or not os.path.isfile(linear_path):
        raise LPIPSWeightsMissing(
            f'the LPIPS linear-layer weights for {net} are not at {linear_path or "(no lpips package)"}; '
            'pip install lpips (it ships them) or set lpips_weights of the lpips metric in val.metrics to '
            f'a copy of its weights/v0.1/{net}.pth.')
    return backbone_path, linear_path


class LPIPS(nn.Module):
    """LPIPS v0.1 distance between batches of RGB images in [-1, 1]; returns one value per image."""

    def __init__(self, net: str, backbone_path: str, linear_path: str) -> None:
        super().__init__()
        backbone = BACKBONES[net]
        self.taps = backbone.taps
        self.features = load_torchvision_features(backbone.build(weights=None).features[:backbone.taps[-1] + 1],
                                                  backbone_path, backbone.title, MODELS_URL + backbone.filename,
                                                  LPIPSWeightsMissing)
        linear = torch.load(linear_path, map_location='cpu', weights_only=True)
        # The lpips package stores each linear layer as lin<k>.model = (Dropout, Conv2d 1x1 without bias).
        keys = [f'lin{k}.model.1.weight' for k in range(len(backbone.channels))]
        if any(key not in linear for key in keys):
            raise LPIPSWeightsMissing(f'{linear_path} is not an LPIPS v0.1 {net} weight file (it lacks one of '
                                      f'{", ".join(keys)}).')
        for key, channels in zip(keys, backbone.channels):
            if tuple(linear[key].shape) != (1, channels, 1, 1):
                raise LPIPSWeightsMissing(f'{linear_path}: {key} has shape {tuple(linear[key].shape)}, not '
                                          f'(1, {channels}, 1, 1); it is not the {net} file.')
        self.register_buffer('linear', torch.cat([linear[k].flatten() for k in keys]))
        self.split = backbone.channels
        self.register_buffer('shift', torch.tensor(SHIFT).view(1, 3, 1, 1))
        self.register_buffer('scale', torch.tensor(SCALE).view(1, 3, 1, 1))
        self.eval().requires_grad_(False)

    def tapped_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        x = (x - self.shift) / self.scale
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self.taps:
                out.append(x)
        return out

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        weights = torch.split(self.linear, self.split)
        total = 0
        for fx, fy, w in zip(self.tapped_features(x), self.tapped_features(y), weights):
            fx = fx / (fx.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)  # unit length along channels
            fy = fy / (fy.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)
            total = total + ((fx - fy).pow(2) * w.view(1, -1, 1, 1)).sum(dim=1).mean(dim=(1, 2))
        return total


def default_device() -> torch.device:
    return torch.device('cuda' if torch.cuda.is_available() else 'cpu')


@functools.lru_cache(maxsize=4)
def cached_model(net: str, backbone_path: str, linear_path: str, device: str) -> LPIPS:
    """One network per weights and device, built on first use: validation calls the metric once per image."""
    return LPIPS(net, backbone_path, linear_path).to(device)


def to_lpips_input(img: np.ndarray) -> torch.Tensor:
    """uint8 HWC BGR (basicsr's metric input) to a 1x3xHxW RGB float32 tensor in [-1, 1]."""
    rgb = np.ascontiguousarray(img[..., ::-1]).astype(np.float64)
    return torch.from_numpy((rgb / 127.5 - 1.0).transpose(2, 0, 1).astype(np.float32)).unsqueeze(0)


@METRIC_REGISTRY.register()
def calculate_lpips(img: np.ndarray, img2: np.ndarray, crop_border: int = 0, net: str = 'alex',
                    backbone_weights: Optional[str] = None, lpips_weights: Optional[str] = None,
                    device: Optional[str] = None, **kwargs) -> float:
    """LPIPS v0.1 between two uint8 HWC BGR images (basicsr's convention), ``crop_border`` pixels cut off.

    Lower is better. ``net``: 'alex' (the LPIPS authors' recommendation as a metric) or 'vgg'. ``device``:
    default CUDA when available.
    """
    if img.shape != img2.shape:
        raise UserFacingError(f'lpips metric: image shapes differ: {img.shape} and {img2.shape}.')
    if crop_border:
        img = img[crop_border:-crop_border, crop_border:-crop_border]
        img2 = img2[crop_border:-crop_border, crop_border:-crop_border]
    backbone_path, linear_path = resolve_weights(net, backbone_weights, lpips_weights)
    model = cached_model(net, backbone_path, linear_path, str(device or default_device()))
    target = model.shift.device
    with torch.no_grad():
        return float(model(to_lpips_input(img).to(target), to_lpips_input(img2).to(target))[0])
