"""Fine-tuning a released generator (the shared RealESRGAN_x4plus.pth, Real-ESRGAN's 23-block x4 model) for two
iterations with the shipped real-world GAN file on the CPU, as docs/training.md#fine-tuning-from-released-weights
shows: only --force_yml overrides, on a few GT photos and a real-world validation set where the file looks for
them."""
import os

import cv2
import numpy as np
import pytest
import torch

from builders import read_log
from conftest import SHARED_DATA, run_command
from esrgan_plugin import prepare_data
from esrgan_plugin import train as train_command

RELEASED = os.path.join(SHARED_DATA, 'weights', 'RealESRGAN_x4plus.pth')
OPTION_FILE = 'train_ESRGAN_x4_realworld'


@pytest.mark.skipif(not os.path.isfile(RELEASED), reason=f'{RELEASED} is not here')
def test_a_shipped_gan_file_fine_tunes_the_released_realesrgan_x4plus(tmp_path, monkeypatch, capsys):
    rng = np.random.default_rng(0)
    os.makedirs(tmp_path / 'datasets' / 'DF2K_OST')
    for i in range(2):  # smooth photos with edges, as the degradations expect
        coarse = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
        cv2.imwrite(str(tmp_path / 'datasets' / 'DF2K_OST' / f'{i}.png'),
                    cv2.resize(coarse, (96, 96), interpolation=cv2.INTER_CUBIC))
    os.makedirs(tmp_path / 'held_out')  # NIQE, validated at the end, needs 96x96 blocks after the border
    cv2.imwrite(str(tmp_path / 'held_out' / 'a.png'),
                cv2.GaussianBlur((rng.random((128, 128, 3)) * 255).astype(np.uint8), (5, 5), 2))
    assert prepare_data.main([str(tmp_path / 'held_out'), str(tmp_path / 'datasets' / 'DIV2K' / 'valid_realworld_x4'),
                              '--realworld-test', '--crop', '128']) == 0
    monkeypatch.chdir(tmp_path)
    run = run_command(capsys, train_command.main, '-opt', OPTION_FILE, '--force_yml', 'name=finetune',
                      f'path:pretrain_network_g={RELEASED}', 'train:total_iter=2', 'logger:print_freq=1',
                      'datasets:train:gt_size=32', 'datasets:train:crop_pad_size=80',
                      'datasets:train:queue_size=2', 'datasets:train:gt_usm=false',
                      'datasets:train:batch_size_per_gpu=2', 'datasets:train:num_worker_per_gpu=0',
                      'network_d:input_size=32',
                      'train:perceptual_opt:vgg_weights=random')  # no ImageNet VGG19 file in the test
    assert run.code == 0, run.err[-3000:]
    exp = tmp_path / 'experiments' / 'finetune'
    log = read_log(exp)
    assert f'Loaded {RELEASED} into the generator (param key: EMA if present)' in log
    assert 'l_g_gan' in log and 'l_d_real' in log

    released = torch.load(RELEASED, map_location='cpu', weights_only=True)['params_ema']
    tuned = torch.load(exp / 'models' / 'net_g_latest.pth', map_location='cpu', weights_only=True)
    assert set(tuned) == {'params', 'params_ema'} and set(tuned['params']) == set(released)
    # Two Adam steps at lr 1e-4 move each weight by at most ~2e-4, so the run started from the released weights
    # (a fresh initialisation differs by far more) and it trained (the weights moved).
    moved = max((tuned['params'][k] - v).abs().max().item() for k, v in released.items())
    assert 0 < moved < 1e-3
    assert max((tuned['params_ema'][k] - v).abs().max().item() for k, v in released.items()) < 1e-5
