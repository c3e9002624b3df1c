import os
import pickle

import pytest
import torch
from safetensors.torch import save_file

from conftest import TINY_ARCH, tiny_generator
from esrgan_plugin.archs import checkpoint as ckpt
from layouts import LAYOUTS, in_layout


def _save(obj, path):
    torch.save(obj, path)
    return str(path)


WRAPPERS = {
    'plain': lambda sd: sd,
    'params': lambda sd: {'params': sd},
    'params_ema': lambda sd: {'params_ema': sd},
    'module': lambda sd: {f'module.{k}': v for k, v in sd.items()},
    'params_module': lambda sd: {'params': {f'module.{k}': v for k, v in sd.items()}},
}


@pytest.mark.parametrize('scale', [1, 2, 4, 8])
@pytest.mark.parametrize('layout', LAYOUTS)
@pytest.mark.parametrize('wrapper', list(WRAPPERS) + ['safetensors'])
def test_every_layout_round_trips_bit_identically(tmp_path, scale, layout, wrapper):
    net = tiny_generator(scale, seed=scale)
    converted = in_layout(net.state_dict(), layout)
    assert ckpt.detect_layout(converted) == layout
    if wrapper == 'safetensors':
        path = str(tmp_path / 'g.safetensors')
        save_file({k: v.contiguous() for k, v in converted.items()}, path)
    else:
        path = _save(WRAPPERS[wrapper](converted), tmp_path / 'g.pth')

    loaded = ckpt.load_generator(path)
    assert ckpt.infer_arch_params(loaded.state_dict()) == dict(num_in_ch=3, num_out_ch=3, scale=scale, **TINY_ARCH)
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(loaded(x), net(x))


def test_default_architecture_is_inferred_from_the_published_layout():
    from esrgan_plugin.archs.rrdbnet_arch import ESRGANRRDBNet
    sd = in_layout(ESRGANRRDBNet().state_dict(), 'original')
    assert {'model.1.sub.23.weight', 'model.3.weight', 'model.6.weight', 'model.8.weight', 'model.10.weight'} <= set(sd)
    assert ckpt.infer_arch_params(ckpt.to_basicsr_layout(sd)) == dict(
        num_in_ch=3, num_out_ch=3, scale=4, num_feat=64, num_block=23, num_grow_ch=32)


def test_ema_preferred_unless_asked(tmp_path):
    a, b = tiny_generator(4, seed=1), tiny_generator(4, seed=2)
    path = _save({'params': a.state_dict(), 'params_ema': b.state_dict()}, tmp_path / 'g.pth')
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(ckpt.load_generator(path)(x), b(x))
        assert torch.equal(ckpt.load_generator(path, param_key='params')(x), a(x))


def test_load_into_names_first_mismatching_key_and_shapes(tmp_path):
    path = _save({'params': tiny_generator(4, num_feat=16).state_dict()}, tmp_path / 'g.pth')
    with pytest.raises(ckpt.CheckpointError, match=r'conv_first\.weight.*\(16, 3, 3, 3\).*\(8, 3, 3, 3\)'):
        ckpt.load_into(tiny_generator(4), path)


def test_load_into_refuses_missing_and_extra_keys(tmp_path):
    path = _save(tiny_generator(8).state_dict(), tmp_path / 'x8.pth')
    with pytest.raises(ckpt.CheckpointError, match='conv_up3'):
        ckpt.load_into(tiny_generator(4), path)
    path = _save(tiny_generator(4).state_dict(), tmp_path / 'x4.pth')
    with pytest.raises(ckpt.CheckpointError, match='conv_up3'):
        ckpt.load_into(tiny_generator(8), path)


def test_truncated_file(tmp_path):
    path = _save(tiny_generator(4).state_dict(), tmp_path / 'g.pth')
    data = open(path, 'rb').read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])
    with pytest.raises(ckpt.CheckpointError, match='truncated or corrupt'):
        ckpt.load_generator(path)


def test_truncated_safetensors(tmp_path):
    path = str(tmp_path / 'g.safetensors')
    save_file(tiny_generator(4).state_dict(), path)
    data = open(path, 'rb').read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])
    with pytest.raises(ckpt.CheckpointError, match='safetensors'):
        ckpt.load_generator(path)


@pytest.mark.parametrize('content', [b'not a checkpoint at all\n' * 10, b'\x89PNG\r\n\x1a\n' + b'\0' * 64,
                                     b'junk', b'junk file that is longer'])
def test_non_checkpoint_file(tmp_path, content):
    path = tmp_path / 'g.pth'
    path.write_bytes(content)
    with pytest.raises(ckpt.CheckpointError, match='not a'):
        ckpt.load_generator(str(path))


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(ckpt.CheckpointError, match='does not exist'):
        ckpt.load_generator(str(tmp_path / 'nope.pth'))
    (tmp_path / 'empty.pth').write_bytes(b'')
    with pytest.raises(ckpt.CheckpointError, match='empty'):
        ckpt.load_generator(str(tmp_path / 'empty.pth'))


def test_checkpoint_of_another_architecture(tmp_path):
    from basicsr.archs.edsr_arch import EDSR
    edsr = EDSR(num_in_ch=3, num_out_ch=3, num_feat=8, num_block=1, upscale=4)
    path = _save({'params': edsr.state_dict()}, tmp_path / 'edsr.pth')
    with pytest.raises(ckpt.CheckpointError, match='not an ESRGAN/RRDBNet generator'):
        ckpt.load_generator(path)


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, 'w'))


def test_pickle_that_would_run_code_is_refused(tmp_path):
    marker = str(tmp_path / 'pwned')
    path = tmp_path / 'evil.pth'
    with open(path, 'wb') as f:
        pickle.dump({'params': _Exploit(marker)}, f)
    with pytest.raises(ckpt.CheckpointError, match='refused'):
        ckpt.load_generator(str(path))
    assert not os.path.exists(marker)

    # the same inside a torch.save zip container
    path2 = _save({'params': _Exploit(marker)}, tmp_path / 'evil2.pth')
    if os.path.exists(marker):
        os.remove(marker)  # torch.save itself does not run __reduce__'s callable, but be sure
    with pytest.raises(ckpt.CheckpointError, match='refused'):
        ckpt.load_generator(path2)
    assert not os.path.exists(marker)


def esrgan_plus_state_dict(layout: str) -> dict:
    """An ESRGAN+ (nESRGAN+) generator's tensors: ESRGAN's, plus in every dense block a bias-free 1x1 conv from the
    block's input (num_feat channels) to num_grow_ch channels, as the ESRGAN+ repository's
    ResidualDenseBlock_5C.conv1x1."""
    sd = tiny_generator(4).state_dict()
    for block in range(TINY_ARCH['num_block']):
        for rdb in (1, 2, 3):
            sd[f'body.{block}.rdb{rdb}.conv1x1.weight'] = torch.zeros(TINY_ARCH['num_grow_ch'], TINY_ARCH['num_feat'],
                                                                      1, 1)
    if layout == 'basicsr':
        return sd
    plain = {k: v for k, v in sd.items() if '.conv1x1.' not in k}
    extra = {k: v for k, v in sd.items() if '.conv1x1.' in k}
    renamed = in_layout(plain, layout)
    for key, value in extra.items():  # body.N.rdbK.conv1x1.weight
        _, block, rdb, _, _ = key.split('.')
        prefix = f'RRDB_trunk.{block}' if layout == 'xinntao' else f'model.1.sub.{block}'
        renamed[f'{prefix}.RDB{rdb[3:]}.conv1x1.weight'] = value
    return renamed


@pytest.mark.parametrize('layout', LAYOUTS)
def test_an_esrgan_plus_checkpoint_is_refused_with_one_line_naming_it(tmp_path, layout):
    path = _save({'params_ema': esrgan_plus_state_dict(layout)}, tmp_path / 'nESRGANplus.pth')
    with pytest.raises(ckpt.CheckpointError) as refused:
        ckpt.load_generator(path)
    message = str(refused.value)
    assert len(message.splitlines()) == 1
    assert message.startswith(f'Checkpoint {path}: this is an ESRGAN+ (nESRGAN+) generator')
    assert '.RDB1.conv1x1.weight' in message or '.rdb1.conv1x1.weight' in message
    assert 'not supported' in message
