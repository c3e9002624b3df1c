import pytest
import torch
from torchvision.models import vgg19

from esrgan_plugin.losses.perceptual_loss import ESRGANPerceptualLoss, VGGWeightsMissing, check_vgg19_available, default_vgg19_path


def test_missing_weights_say_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    expected = str(tmp_path / 'hub' / 'checkpoints' / 'vgg19-dcbb9e9d.pth')
    assert default_vgg19_path() == expected
    with pytest.raises(VGGWeightsMissing, match=expected.replace('.', r'\.')):
        ESRGANPerceptualLoss()
    with pytest.raises(VGGWeightsMissing, match='not at'):
        check_vgg19_available({'type': 'ESRGANPerceptualLoss'})
    check_vgg19_available({'type': 'ESRGANPerceptualLoss', 'vgg_weights': 'random'})  # explicit opt-out


def test_loads_torchvision_file_and_compares_features_before_activation(tmp_path, monkeypatch):
    torch.manual_seed(0)
    reference = vgg19(weights=None)
    # torchvision's file layout; the test keeps only the first two convs to stay small
    state = {k: v for k, v in reference.state_dict().items() if k.startswith(('features.0.', 'features.2.'))}
    (tmp_path / 'hub' / 'checkpoints').mkdir(parents=True)
    torch.save(state, tmp_path / 'hub' / 'checkpoints' / 'vgg19-dcbb9e9d.pth')
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))

    loss = ESRGANPerceptualLoss(layer='conv1_2', loss_weight=2.0)
    a, b = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    feats = reference.features[:3].eval()  # conv1_1, relu, conv1_2: no ReLU after conv1_2
    expected = 2.0 * (feats((a - mean) / std) - feats((b - mean) / std)).abs().mean()
    torch.testing.assert_close(loss(a, b), expected)
    assert (loss.features(a) < 0).any(), 'features must be taken before the ReLU'


def test_paper_layer_is_conv5_4_before_relu():
    loss = ESRGANPerceptualLoss(vgg_weights='random')
    assert isinstance(loss.vgg[-1], torch.nn.Conv2d) and len(loss.vgg) == 35
    assert not any(p.requires_grad for p in loss.vgg.parameters())


def test_truncated_vgg_file_is_refused(tmp_path):
    torch.save({'features.0.weight': torch.zeros(64, 3, 3, 3)}, tmp_path / 'v.pth')
    with pytest.raises(VGGWeightsMissing) as refused:
        ESRGANPerceptualLoss(layer='conv1_2', vgg_weights=str(tmp_path / 'v.pth'))
    assert str(refused.value) == (f"{tmp_path / 'v.pth'} is not torchvision's VGG19 file: it lacks features.0.bias; "
                                  'download https://download.pytorch.org/models/vgg19-dcbb9e9d.pth again.')
