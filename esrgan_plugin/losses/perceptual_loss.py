"""Perceptual loss on VGG19 conv5_4 features *before* the activation (ESRGAN paper, section 3.3).

The paper's point: features before ReLU are denser and keep brightness
consistent; after ReLU most activations of deep layers are zero. The VGG19
weights are torchvision's ImageNet file, read from disk only (no download at
run time): ``perceptual_opt.vgg_weights`` or torchvision's cache location.
"""
from __future__ import annotations

import os
from typing import Optional

import torch
from basicsr.utils import get_root_logger
from basicsr.utils.registry import LOSS_REGISTRY
from torch import nn
from torch.nn import functional as F
from torchvision.models import vgg19

from esrgan_plugin.errors import UserFacingError

VGG19_FILENAME = 'vgg19-dcbb9e9d.pth'  # torchvision's IMAGENET1K_V1 weights
VGG19_URL = 'https://download.pytorch.org/models/vgg19-dcbb9e9d.pth'
# Index of each conv in torchvision's vgg19().features (ReLUs and pools between them).
VGG19_CONV_INDEX = {
    'conv1_1': 0, 'conv1_2': 2, 'conv2_1': 5, 'conv2_2': 7, 'conv3_1': 10, 'conv3_2': 12, 'conv3_3': 14,
    'conv3_4': 16, 'conv4_1': 19, 'conv4_2': 21, 'conv4_3': 23, 'conv4_4': 25, 'conv5_1': 28, 'conv5_2': 30,
    'conv5_3': 32, 'conv5_4': 34,
}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class VGGWeightsMissing(UserFacingError):
    pass


def default_vgg19_path() -> str:
    """Where torchvision itself caches the file: ``$TORCH_HOME/hub/checkpoints/``."""
    return os.path.join(torch.hub.get_dir(), 'checkpoints', VGG19_FILENAME)


def resolve_vgg19_path(weights: Optional[str]) -> str:
    """The weights file to read: ``weights`` if given, else torchvision's cache location; it must exist."""
    path = os.path.expanduser(weights) if weights else default_vgg19_path()
    if not os.path.isfile(path):
        raise VGGWeightsMissing(
            f'the VGG19 weights for the perceptual loss are not at {path}; download {VGG19_URL} and put it '
            'there (or set train.perceptual_opt.vgg_weights to its path).')
    return path


def load_vgg19_features(weights: Optional[str], last_layer: str) -> nn.Sequential:
    """torchvision's VGG19 feature stack up to and including ``last_layer`` (a conv, so no ReLU after it).

    ``weights``: a path, None for torchvision's cache location, or 'random' (tests only).
    """
    if last_layer not in VGG19_CONV_INDEX:
        raise UserFacingError(f'perceptual_opt.layer {last_layer!r} is not a VGG19 conv; use one of '
                              f'{", ".join(VGG19_CONV_INDEX)} (the paper uses conv5_4).')
    features = vgg19(weights=None).features[:VGG19_CONV_INDEX[last_layer] + 1]
    if weights == 'random':
        get_root_logger().warning('Perceptual loss uses a RANDOMLY initialised VGG19 (vgg_weights: random); '
                                  'it stands in for the ImageNet weights and is no substitute for them.')
        return features
    return load_torchvision_features(features, resolve_vgg19_path(weights), 'VGG19', VGG19_URL, VGGWeightsMissing)


def load_torchvision_features(features: nn.Sequential, path: str, title: str, url: str,
                              error: type[UserFacingError]) -> nn.Sequential:
    """``features``, the first layers of a torchvision network's ``.features``, with the ``features.*`` tensors
    of torchvision's ImageNet file at ``path`` (read from disk, ``weights_only``); the perceptual loss and LPIPS
    read their backbones this way.

    Raises:
        error: the file lacks a tensor, so it is not torchvision's ``title`` file; the message says to download
            ``url`` again.
    """
    state = torch.load(path, map_location='cpu', weights_only=True)
    # Only the layers in features are used; the classifier (most of the file) is not.
    wanted = {k[len('features.'):]: v for k, v in state.items() if k.startswith('features.')}
    wanted = {k: v for k, v in wanted.items() if int(k.split('.')[0]) < len(features)}
    missing = [k for k in features.state_dict() if k not in wanted]
    if missing:
        raise error(f'{path} is not torchvision\'s {title} file: it lacks features.{missing[0]}; download {url} '
                    'again.')
    features.load_state_dict(wanted)
    return features


def check_vgg19_available(perceptual_opt: Optional[dict]) -> None:
    """Fail before training starts (and before any folder is made) when the weights are missing."""
    if not perceptual_opt or perceptual_opt.get('type') != 'ESRGANPerceptualLoss':
        return
    if perceptual_opt.get('vgg_weights') != 'random':
        resolve_vgg19_path(perceptual_opt.get('vgg_weights'))


@LOSS_REGISTRY.register()
class ESRGANPerceptualLoss(nn.Module):
    """L1 (or L2) distance between VGG19 features of output and target, before activation.

    Args:
        layer: the VGG19 conv whose output is compared ('conv5_4' in the paper).
        loss_weight: weight of this term in the generator loss (1.0 in the paper).
        criterion: 'l1' (the paper's released code) or 'l2'.
        vgg_weights: path of torchvision's ``vgg19-dcbb9e9d.pth``; default torchvision's cache location;
            'random' only for tests.
    """

    def __init__(self, layer: str = 'conv5_4', loss_weight: float = 1.0, criterion: str = 'l1',
                 vgg_weights: Optional[str] = None) -> None:
        super().__init__()
        if criterion not in ('l1', 'l2'):
            raise UserFacingError(f'perceptual_opt.criterion {criterion!r} is not supported; use l1 or l2.')
        self.loss_weight = loss_weight
        self.distance = F.l1_loss if criterion == 'l1' else F.mse_loss
        self.vgg = load_vgg19_features(vgg_weights, layer).eval()
        for p in self.vgg.parameters():
            p.requires_grad_(False)
        self.register_buffer('mean', torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer('std', torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def train(self, mode: bool = True) -> 'ESRGANPerceptualLoss':
        super().train(mode)
        self.vgg.eval()  # VGG is a fixed feature extractor
        return self

    def features(self, img: torch.Tensor) -> torch.Tensor:
        return self.vgg((img - self.mean) / self.std)

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target_feat = self.features(target)
        # Under autocast the features are bf16/fp16; the distance and its mean are taken in float32.
        return self.loss_weight * self.distance(self.features(output).float(), target_feat.float())
