"""Where a model's networks start: path.pretrain_network_g in every layout the loader reads, the entry it picks
(path.param_key_g), the discriminator's file, and one-line errors naming the file."""
import pytest
import torch
from basicsr.archs.rrdbnet_arch import RRDBNet
from basicsr.models import build_model

from builders import model_opt
from conftest import TINY_ARCH, tiny_generator
from layouts import LAYOUTS, in_layout
from esrgan_plugin.archs.checkpoint import CheckpointError


def same(net, state):
    return all(torch.equal(net.state_dict()[k], v) for k, v in state.items())


def two_generators():
    """A released file's two entries: different weights, so a test can tell which one loaded."""
    return tiny_generator(seed=1).state_dict(), tiny_generator(seed=2).state_dict()


@pytest.mark.parametrize('layout', LAYOUTS)
@pytest.mark.parametrize('generator_type', ['ESRGANRRDBNet', 'RRDBNet'])
def test_every_layout_loads_into_the_generator_and_its_ema(tmp_path, layout, generator_type):
    params, _ = two_generators()
    torch.save(in_layout(params, layout), tmp_path / 'g.pth')  # a bare state dict, as the published files are
    opt = model_opt(tmp_path, 'ESRGANPSNRModel', pretrain_network_g=str(tmp_path / 'g.pth'))
    opt['network_g']['type'] = generator_type  # basicsr's RRDBNet has the same parameter names
    model = build_model(opt)
    if generator_type == 'RRDBNet':
        assert type(model.net_g) is RRDBNet
    assert same(model.net_g, params) and same(model.net_g_ema, params)


@pytest.mark.parametrize('param_key, expected', [(None, 'params_ema'), ('params_ema', 'params_ema'),
                                                 ('params', 'params')])
def test_param_key_g_picks_the_entry_for_the_generator_and_its_ema(tmp_path, param_key, expected):
    params, params_ema = two_generators()
    entries = {'params': params, 'params_ema': params_ema}
    torch.save(entries, tmp_path / 'released.pth')
    opt = model_opt(tmp_path, 'ESRGANPSNRModel', pretrain_network_g=str(tmp_path / 'released.pth'),
                    param_key_g=param_key)
    model = build_model(opt)
    assert same(model.net_g, entries[expected]) and same(model.net_g_ema, entries[expected])


def test_on_resume_the_generator_takes_params_and_the_ema_params_ema_whatever_param_key_g_says(tmp_path):
    params, params_ema = two_generators()
    torch.save({'params': params, 'params_ema': params_ema}, tmp_path / 'net_g_2.pth')
    opt = model_opt(tmp_path, 'ESRGANPSNRModel', pretrain_network_g=str(tmp_path / 'net_g_2.pth'),
                    param_key_g='params_ema',
                    resume_state=str(tmp_path / '2.state'))
    model = build_model(opt)
    assert same(model.net_g, params) and same(model.net_g_ema, params_ema)


def test_a_discriminator_file_loads_with_the_generator(tmp_path):
    from basicsr.archs.discriminator_arch import UNetDiscriminatorSN
    torch.manual_seed(5)
    released_d = UNetDiscriminatorSN(3, num_feat=4).state_dict()
    torch.save({'params': released_d}, tmp_path / 'd.pth')
    params, _ = two_generators()
    torch.save({'params_ema': params}, tmp_path / 'g.pth')
    opt = model_opt(tmp_path, pretrain_network_g=str(tmp_path / 'g.pth'), pretrain_network_d=str(tmp_path / 'd.pth'))
    opt['network_d'] = {'type': 'UNetDiscriminatorSN_basicsr', 'num_in_ch': 3, 'num_feat': 4}
    model = build_model(opt)
    assert same(model.net_g, params) and same(model.net_d, released_d)


def test_another_architecture_is_one_line_naming_the_file_and_the_layouts(tmp_path):
    torch.save({'params': {'conv1.weight': torch.zeros(4, 3, 3, 3), 'conv1.bias': torch.zeros(4)}},
               tmp_path / 'swinir.pth')
    with pytest.raises(CheckpointError) as err:
        build_model(model_opt(tmp_path, 'ESRGANPSNRModel', pretrain_network_g=str(tmp_path / 'swinir.pth')))
    message = str(err.value)
    assert '\n' not in message
    assert message.startswith(f'Checkpoint {tmp_path / "swinir.pth"}: ')
    assert 'not an ESRGAN/RRDBNet generator' in message and 'basicsr, xinntao, original' in message


def test_a_generator_of_another_size_is_one_line_giving_the_files_architecture(tmp_path):
    torch.save({'params_ema': tiny_generator(num_block=3).state_dict()}, tmp_path / 'g.pth')
    with pytest.raises(CheckpointError) as err:
        build_model(model_opt(tmp_path, 'ESRGANPSNRModel', pretrain_network_g=str(tmp_path / 'g.pth')))
    message = str(err.value)
    assert '\n' not in message
    assert message.startswith(f'Checkpoint {tmp_path / "g.pth"} holds a generator with num_in_ch: 3, num_out_ch: 3, '
                              f'scale: 4, num_feat: {TINY_ARCH["num_feat"]}, num_block: 3, ')
    assert 'which does not fit network_g (body.2.rdb1.conv1.weight: shape ' in message
