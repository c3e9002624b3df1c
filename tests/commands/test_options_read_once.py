"""Options are read once: the dict a model receives is the checked one, and basicsr never re-reads the file."""
import pytest
import yaml

from builders import gan_options, write_options
from esrgan_plugin import test as test_command
from esrgan_plugin import train as train_command
from esrgan_plugin.config import option_file


@pytest.fixture
def spies(monkeypatch):
    """Records the options each model is built with and how often an option file is parsed; fails on basicsr's
    own reading of options."""
    import basicsr.utils.options
    from esrgan_plugin.models.psnr_model import ESRGANPSNRModel

    seen = {'models': [], 'parsed': 0}
    real_init, real_load = ESRGANPSNRModel.__init__, option_file.load_yaml

    def init(self, opt):
        seen['models'].append(opt)
        real_init(self, opt)

    def load(text):
        seen['parsed'] += 'model_type' in text  # a whole option file (override values are parsed here too)
        return real_load(text)

    def refuse(*args, **kwargs):
        raise AssertionError("basicsr's parse_options ran: it re-reads the file and re-applies --force_yml")

    monkeypatch.setattr(ESRGANPSNRModel, '__init__', init)
    monkeypatch.setattr(option_file, 'load_yaml', load)
    monkeypatch.setattr('esrgan_plugin.config.checks.load_yaml', load)
    monkeypatch.setattr(basicsr.utils.options, 'parse_options', refuse)
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '')
    return seen


def test_training_gets_the_checked_dict_with_overrides_normalised(tmp_path, monkeypatch, spies):
    monkeypatch.chdir(tmp_path)
    opt = gan_options(tmp_path, name='once', total_iter=1)
    opt['model_type'] = 'ESRGANPSNRModel'
    for key in ('perceptual_opt', 'gan_opt', 'optim_d'):
        del opt['train'][key]
    del opt['network_d']
    opt['val']['val_freq'] = opt['logger']['save_checkpoint_freq'] = 1
    yml = write_options(tmp_path, opt)
    # '2e-4' is text to YAML 1.1 (PyYAML, and basicsr's own override parser); the check reads it as YAML 1.2
    code = train_command.main(['-opt', yml, '--force_yml', 'train:optim_g:lr=2e-4', 'train:ema_decay=0'])
    assert code == 0
    assert spies['parsed'] == 1
    [model_opt] = spies['models']
    assert model_opt['train']['optim_g']['lr'] == 2e-4 and isinstance(model_opt['train']['optim_g']['lr'], float)
    assert model_opt['train']['ema_decay'] == 0
    assert model_opt['is_train'] is True and model_opt['dist'] is False
    assert model_opt['datasets']['train']['phase'] == 'train' and model_opt['datasets']['val']['scale'] == 4
    with open(tmp_path / 'experiments' / 'once' / 'once.yml', encoding='utf-8') as f:
        copied = f.read()
    assert '--force_yml train:optim_g:lr=2e-4 train:ema_decay=0' in copied.splitlines()[2]
    assert yaml.safe_load(copied)['train']['optim_g']['lr'] == 1e-4  # the file as written, under the command line


def test_testing_gets_the_checked_dict(tmp_path, monkeypatch, spies):
    import torch
    from conftest import tiny_generator

    monkeypatch.chdir(tmp_path)
    opt = gan_options(tmp_path, name='once')
    torch.save({'params': tiny_generator().state_dict()}, tmp_path / 'g.pth')
    test_opt = {'name': 'once_test', 'model_type': 'ESRGANPSNRModel', 'scale': 4, 'num_gpu': 0,
                'datasets': {'test_1': opt['datasets']['val']}, 'network_g': {'type': 'auto'},
                'path': {'pretrain_network_g': 'g.pth'},
                'val': {'save_img': False, 'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': 4}}}}
    yml = write_options(tmp_path, test_opt)
    assert test_command.main(['-opt', yml, '--force_yml', 'val:metrics:psnr:crop_border=2']) == 0
    assert spies['parsed'] == 1
    [model_opt] = spies['models']
    assert model_opt['val']['metrics']['psnr']['crop_border'] == 2
    assert model_opt['network_g']['type'] == 'ESRGANRRDBNet'  # resolved from the checkpoint, not re-read
    assert model_opt['is_train'] is False and model_opt['datasets']['test_1']['phase'] == 'test'
