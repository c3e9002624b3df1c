"""The train command stops before anything is written when a run could not go through: one line, its exit code.
Training runs themselves are in tests/integration/."""
import os

from builders import gan_options, write_options
from conftest import run_command
from esrgan_plugin import train as train_command


def test_missing_vgg_weights_stop_before_anything_is_written(tmp_path, monkeypatch, capsys):
    opt = gan_options(tmp_path, name='novgg')
    opt['train']['perceptual_opt'].pop('vgg_weights')
    yml = write_options(tmp_path, opt)
    torch_home = tmp_path / 'torch_home'
    monkeypatch.setenv('TORCH_HOME', str(torch_home))  # torchvision's cache location, read at each look-up
    monkeypatch.chdir(tmp_path)
    run = run_command(capsys, train_command.main, '-opt', yml)
    assert run.code == 1
    expected = os.path.join(str(torch_home), 'hub', 'checkpoints', 'vgg19-dcbb9e9d.pth')
    assert f'error: the VGG19 weights for the perceptual loss are not at {expected}' in run.err
    assert 'Traceback' not in run.err
    assert not (tmp_path / 'experiments').exists()


def test_a_batch_not_divisible_by_accumulate_is_refused_before_anything_is_written(tmp_path, monkeypatch, capsys):
    opt = gan_options(tmp_path, name='odd')
    opt['datasets']['train']['batch_size_per_gpu'] = 6
    opt['train']['accumulate'] = 4
    write_options(tmp_path, opt)
    monkeypatch.chdir(tmp_path)
    run = run_command(capsys, train_command.main, '-opt', 'odd.yml')
    assert run.code == 2, run.err
    assert ('error: odd.yml: train.accumulate: 4 does not divide datasets.train.batch_size_per_gpu 6 into equal '
            'micro-batches; use a divisor of it (1, 2, 3, 6) or change the batch size') in run.err.splitlines()
    assert 'Traceback' not in run.err
    assert not any((tmp_path / d).exists() for d in ('experiments', 'tb_logger', 'results'))
