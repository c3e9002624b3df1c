"""Generator state dicts in the key layouts of other projects, for tests that load them.

The key names are written here from the files themselves (docs/networks.md#checkpoint-layouts), independently of
``esrgan_plugin.archs.checkpoint``, which reads them: a test that saves a state dict in one of these layouts and
loads it checks the loader against the published names, not against its own inverse.
"""

LAYOUTS = ('basicsr', 'xinntao', 'original')

# The ESRGAN repository's RRDBNet_arch.py: the same modules as basicsr's RRDBNet under other names.
XINNTAO_NAMES = {'conv_first': 'conv_first', 'conv_body': 'trunk_conv', 'conv_up1': 'upconv1', 'conv_up2': 'upconv2',
                 'conv_up3': 'upconv3', 'conv_hr': 'HRconv', 'conv_last': 'conv_last'}
# The published RRDB_ESRGAN_x4.pth is one nn.Sequential: model.0 the first conv, model.1 the trunk (a shortcut
# block whose .sub holds the RRDBs and then the trunk conv), then per x2 stage an upsampling, a conv and a
# LeakyReLU, then the HR conv, a LeakyReLU and the last conv. By the number of upsampling stages:
ORIGINAL_INDEX = {
    2: {'conv_first': 0, 'conv_up1': 3, 'conv_up2': 6, 'conv_hr': 8, 'conv_last': 10},
    3: {'conv_first': 0, 'conv_up1': 3, 'conv_up2': 6, 'conv_up3': 9, 'conv_hr': 11, 'conv_last': 13},
}


def in_layout(state_dict: dict, layout: str) -> dict:
    """``state_dict`` (basicsr's keys: ``body.N.rdbK.convJ.weight`` ...) with the keys of ``layout``."""
    if layout == 'basicsr':
        return dict(state_dict)
    num_block = len({key.split('.')[1] for key in state_dict if key.startswith('body.')})
    num_up = len({key.split('.')[0] for key in state_dict if key.startswith('conv_up')})
    renamed = {}
    for key, value in state_dict.items():
        parts = key.split('.')
        if parts[0] == 'body':  # body.N.rdbK.convJ.<weight|bias>
            block, rdb, conv, kind = parts[1], parts[2][len('rdb'):], parts[3][len('conv'):], parts[4]
            new = (f'RRDB_trunk.{block}.RDB{rdb}.conv{conv}.{kind}' if layout == 'xinntao' else
                   f'model.1.sub.{block}.RDB{rdb}.conv{conv}.0.{kind}')
        elif layout == 'xinntao':
            new = f'{XINNTAO_NAMES[parts[0]]}.{parts[1]}'
        elif parts[0] == 'conv_body':
            new = f'model.1.sub.{num_block}.{parts[1]}'
        else:
            new = f'model.{ORIGINAL_INDEX[num_up][parts[0]]}.{parts[1]}'
        renamed[new] = value
    assert len(renamed) == len(state_dict)
    return renamed
