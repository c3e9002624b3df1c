"""Training that starts from a generator file (fine-tuning released weights): a file that does not fit network_g
stops the train command with one line before anything is written. The fine-tuning run itself is in
tests/integration/test_finetune_released.py."""
import pytest
import torch

from builders import gan_options, write_options
from conftest import run_command, tiny_generator
from esrgan_plugin import train as train_command


@pytest.mark.parametrize('saved, expected', [
    (lambda: {'params_ema': tiny_generator(num_block=3).state_dict()},
     'network_g.num_block is 2 but path.pretrain_network_g {path} has num_block 3 (ESRGANRRDBNet('),
    (lambda: {'params': {'conv1.weight': torch.zeros(4, 3, 3, 3)}},
     'Checkpoint {path}: The state dict is not an ESRGAN/RRDBNet generator in a layout that loads (basicsr, xinntao, '
     'original: docs/networks.md#checkpoint-layouts); its keys start with conv1.weight'),
])
def test_a_generator_file_that_does_not_fit_stops_before_anything_is_written(tmp_path, monkeypatch, capsys, saved,
                                                                             expected):
    path = tmp_path / 'released.pth'
    torch.save(saved(), path)
    opt = gan_options(tmp_path, name='finetune')
    opt['path']['pretrain_network_g'] = str(path)
    yml = write_options(tmp_path, opt)
    monkeypatch.chdir(tmp_path)
    run = run_command(capsys, train_command.main, '-opt', yml)
    assert run.code == 1
    errors = [line for line in run.err.splitlines() if line.startswith('error: ')]
    assert len(errors) == 1 and expected.format(path=path) in errors[0], run.err
    assert 'Traceback' not in run.err
    assert not (tmp_path / 'experiments').exists()
