"""Training for real photos with the shipped realworld files: a folder of GT photos, LR made while training.

Both stages run on the CPU as shipped, shortened by --force_yml (a tiny generator, 32x32 GT crops, batches of
2, a pool of 4 pairs, a few iterations), and validate on a fixed real-world set made by prepare_data. Stop and
--auto_resume must give the weights of an uninterrupted run, and two DDP ranks must draw different LR.
"""
import shutil
import subprocess

import cv2
import numpy as np
import pytest
import torch

from conftest import PYTHON, free_port, run_command, run_command_in, subprocess_env
from esrgan_plugin import prepare_data, train
from builders import read_log

PSNR, GAN = 'train_RRDBNet_PSNR_x4_realworld', 'train_ESRGAN_x4_realworld'
# The shipped files shortened: a tiny generator and data, CPU-sized; the degradations as shipped, but for gt_usm.
TINY = ['network_g:num_feat=8', 'network_g:num_block=1', 'network_g:num_grow_ch=4',
        'datasets:train:gt_size=32', 'datasets:train:crop_pad_size=80', 'datasets:train:queue_size=4',
        'datasets:train:gt_usm=false',  # its 51-pixel blur costs 0.4 s a batch on a busy 2-core CPU
        'datasets:train:batch_size_per_gpu=2', 'datasets:train:num_worker_per_gpu=0',
        'logger:print_freq=1', 'logger:save_checkpoint_freq=2', 'logger:use_tb_logger=false', 'val:val_freq=4',
        'val:save_img=false']
GAN_TINY = ['network_d:num_feat=4', 'network_d:input_size=32', 'train:perceptual_opt:vgg_weights=random',
            'train:perceptual_opt:layer=conv2_2']


def photo(size, seed):
    """Smooth content with edges, as a photo has (blur, noise and JPEG show on it)."""
    coarse = np.random.default_rng(seed).integers(0, 256, (size // 8, size // 8, 3), dtype=np.uint8)
    return cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)


@pytest.fixture(scope='module')
def photos(tmp_path_factory):
    """GT photos where the shipped files look for them, and held-out photos for the validation set."""
    root = tmp_path_factory.mktemp('photos')
    (root / 'datasets' / 'DF2K_OST').mkdir(parents=True)
    for i in range(4):
        cv2.imwrite(str(root / 'datasets' / 'DF2K_OST' / f'{i}.png'), photo(64, i))
    (root / 'held_out').mkdir()
    cv2.imwrite(str(root / 'held_out' / 'v.png'), photo(128, 9))  # NIQE needs 96 px after the border crop
    return root


def fresh(photos, folder):
    """A working folder with the photos and the validation set (made by prepare_data, as users make it)."""
    shutil.copytree(photos / 'datasets', folder / 'datasets')
    assert prepare_data.main([str(photos / 'held_out'), str(folder / 'datasets' / 'DIV2K' / 'valid_realworld_x4'),
                              '--realworld-test', '--crop', '128']) == 0
    return folder


def overrides(*entries):
    return ['--force_yml', *entries]


STAGE1 = overrides(*TINY, 'train:total_iter=4', 'train:degradation_preview=1')


@pytest.fixture(scope='module')
def stage1(photos, tmp_path_factory):
    """The folder where stage 1 ran 4 iterations (checkpoints at 2 and 4; the pool full from iteration 2)."""
    root = fresh(photos, tmp_path_factory.mktemp('stage1'))
    run = run_command_in(root, train.main, '-opt', PSNR, *STAGE1)
    assert run.code == 0, run.err[-3000:]
    return root


def weights(exp, iteration):
    return (torch.load(exp / 'models' / f'net_g_{iteration}.pth', weights_only=True),
            torch.load(exp / 'training_states' / f'{iteration}.state', weights_only=True))


def test_stage_1_trains_on_gt_photos_writes_the_preview_and_validates(stage1):
    exp = stage1 / 'experiments' / 'RRDBNet_PSNR_x4_realworld'
    assert (exp / 'models' / 'net_g_latest.pth').is_file()
    preview = exp / 'degradation_preview' / 'iter_1'
    assert sorted(p.name for p in preview.iterdir()) == ['0_gt.png', '0_lq.png', '1_gt.png', '1_lq.png', 'sheet.png']
    assert cv2.imread(str(preview / '0_lq.png')).shape == (8, 8, 3)
    assert not (exp / 'degradation_preview' / 'iter_2').exists()  # one batch asked for
    assert 'Validation DIV2K_valid_realworld' in read_log(exp)
    pool = torch.load(exp / 'training_states' / '4.state', weights_only=True)['realworld_pools']
    assert len(pool) == 1 and pool[0]['filled'] == 4 and pool[0]['lq'].shape == (4, 3, 8, 8)


def test_stage_2_trains_from_stage_1s_result(stage1, monkeypatch, capsys):
    monkeypatch.chdir(stage1)
    run = run_command(capsys, train.main, '-opt', GAN, *overrides(*TINY, *GAN_TINY, 'train:total_iter=1'))
    assert run.code == 0, run.err[-3000:]
    exp = stage1 / 'experiments' / 'ESRGAN_x4_realworld'
    log = read_log(exp)
    assert 'RRDBNet_PSNR_x4_realworld/models/net_g_latest.pth into the generator' in log
    for key in ('l_g_pix', 'l_g_percep', 'l_g_gan', 'l_d_real', 'l_d_fake'):
        assert key in log
    assert (exp / 'models' / 'net_d_latest.pth').is_file()


def test_stop_and_auto_resume_give_the_weights_of_an_uninterrupted_run(stage1, tmp_path, monkeypatch, capsys):
    """Stage 1 stopped after iteration 2 and resumed: iterations 3 and 4 train on pairs drawn from the pool the
    state saved, and end where the uninterrupted run ended."""
    shutil.copytree(stage1 / 'datasets', tmp_path / 'datasets')
    whole = stage1 / 'experiments' / 'RRDBNet_PSNR_x4_realworld'
    stopped = tmp_path / 'experiments' / 'RRDBNet_PSNR_x4_realworld'
    for folder, names in (('models', ['net_g_2.pth']), ('training_states', ['2.state'])):
        (stopped / folder).mkdir(parents=True)
        for name in names:  # the experiment as a run stopped right after saving iteration 2 leaves it
            shutil.copy(whole / folder / name, stopped / folder / name)
    monkeypatch.chdir(tmp_path)
    assert run_command(capsys, train.main, '-opt', PSNR, *STAGE1, '--auto_resume').code == 0
    assert 'iter: 2.' in read_log(stopped).split('Resuming training from epoch: ')[1]
    expected, got = weights(whole, 4), weights(stopped, 4)
    assert expected[0].keys() == got[0].keys() == {'params', 'params_ema'}
    for key in expected[0]:
        for name, tensor in expected[0][key].items():
            assert torch.equal(got[0][key][name], tensor), (key, name)
    for key in ('lq', 'gt'):
        assert torch.equal(got[1]['realworld_pools'][0][key], expected[1]['realworld_pools'][0][key])


def test_two_ddp_ranks_draw_different_lr_from_the_same_gt(photos, tmp_path):
    """torchrun, 2 processes, gloo: one photo of the crop's size and no flips, so both ranks hold the same GT;
    their pools (the LR of their batches, gathered into rank 0's training state) differ."""
    folder = fresh(photos, tmp_path) / 'datasets' / 'DF2K_OST'
    shutil.rmtree(folder)
    folder.mkdir()
    cv2.imwrite(str(folder / 'one.png'), photo(80, 0))  # the whole degraded region: the crop takes all of it
    same_gt = ['datasets:train:gt_size=80', 'datasets:train:use_hflip=false', 'datasets:train:dataset_enlarge_ratio=4']
    cmd = [PYTHON, '-m', 'torch.distributed.run', '--nproc_per_node=2', f'--master_port={free_port()}', '-m',
           'esrgan_plugin.train', '-opt', PSNR, '--launcher', 'pytorch',
           *overrides(*TINY, *same_gt, 'train:total_iter=2', 'val=~')]
    env = dict(subprocess_env(), CUDA_VISIBLE_DEVICES='')
    run = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    state = torch.load(tmp_path / 'experiments' / 'RRDBNet_PSNR_x4_realworld' / 'training_states' / '2.state',
                       weights_only=True)
    rank0, rank1 = state['realworld_pools']
    assert rank0['gt'].shape == (4, 3, 80, 80)
    assert torch.equal(rank0['gt'], rank1['gt'])
    assert (rank0['lq'] - rank1['lq']).abs().mean() > 1 / 255
