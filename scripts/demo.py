"""The whole ESRGAN method, end to end, on photos bundled with scikit-image (no downloads).

1. writes training photos and two held-out photos (coffee, chelsea) to <out>/photos;
2. builds sub-image LMDBs with MATLAB-bicubic LR (``esrgan_plugin.prepare_data``);
3. trains the PSNR-oriented stage, then the GAN stage from it, with a reduced
   RRDBNet, through ``python -m esrgan_plugin.train`` like any user run;
4. evaluates bicubic, the PSNR model, ESRGAN and their interpolation (alpha 0.8)
   on the held-out photos (PSNR/SSIM on Y, 4-pixel border) and writes the SR
   images and a side-by-side picture (bicubic | PSNR | ESRGAN | ground truth).

Run from a clone:  python scripts/demo.py    (about 10 minutes on 2 CPU cores)
"""
from __future__ import annotations

import argparse
import copy
import os
import shutil
import subprocess
import sys
import time

import cv2
import numpy as np
import torch
import yaml

TRAIN_PHOTOS = ['astronaut', 'rocket', 'hubble_deep_field', 'immunohistochemistry', 'stereo_motorcycle', 'retina',
                'camera', 'brick', 'grass', 'gravel']
TEST_PHOTOS = ['coffee', 'chelsea']
SCALE = 4
# A reduced RRDBNet: same blocks as the paper's, fewer and narrower, so it trains on a CPU in minutes.
NETWORK_G = {'type': 'ESRGANRRDBNet', 'num_in_ch': 3, 'num_out_ch': 3, 'scale': SCALE, 'num_feat': 32,
             'num_block': 3, 'num_grow_ch': 16}
GT_SIZE = 64


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--out', default='demo_output', help='folder for data, experiments and results')
    parser.add_argument('--psnr-iters', type=int, default=1200, help='iterations of the PSNR-oriented stage')
    parser.add_argument('--gan-iters', type=int, default=150, help='iterations of the GAN stage')
    parser.add_argument('--batch', type=int, default=16, help='batch size of both stages')
    parser.add_argument('--overwrite', action='store_true', help='start again if --out already holds a demo')
    return parser.parse_args()


def step(message: str) -> None:
    print(f'\n==> {message}', flush=True)


def save_photos(out: str) -> tuple[str, str]:
    import skimage.data
    train_dir, test_dir = os.path.join(out, 'photos', 'train'), os.path.join(out, 'photos', 'test')
    for folder, names in ((train_dir, TRAIN_PHOTOS), (test_dir, TEST_PHOTOS)):
        os.makedirs(folder, exist_ok=True)
        for name in names:
            img = getattr(skimage.data, name)()
            img = img[0] if isinstance(img, tuple) else img  # stereo_motorcycle: (left, right, disparity)
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR) if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
            cv2.imwrite(os.path.join(folder, f'{name}.png'), img)
    return train_dir, test_dir


def common_options(name: str, data, test_data, total_iter: int, batch: int) -> dict:
    return {
        'name': name, 'scale': SCALE, 'num_gpu': 'auto', 'manual_seed': 0,
        'datasets': {
            'train': {'name': 'skimage_photos', 'type': 'DIV2KPairedDataset', 'dataroot_gt': data.dataroot_gt,
                      'dataroot_lq': data.dataroot_lq, 'io_backend': {'type': 'lmdb'}, 'gt_size': GT_SIZE,
                      'use_hflip': True, 'use_rot': True, 'num_worker_per_gpu': 1, 'batch_size_per_gpu': batch,
                      'dataset_enlarge_ratio': 50},
            'val': {'name': 'heldout', 'type': 'DIV2KPairedDataset', 'dataroot_gt': test_data.dataroot_gt,
                    'dataroot_lq': test_data.dataroot_lq, 'io_backend': {'type': 'disk'}},
        },
        'network_g': dict(NETWORK_G),
        'path': {'pretrain_network_g': None, 'resume_state': None},
        'val': {'val_freq': total_iter, 'save_img': False,
                'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': 4, 'test_y_channel': True}}},
        'logger': {'print_freq': max(total_iter // 10, 1), 'save_checkpoint_freq': total_iter,
                   'use_tb_logger': True},
    }


def psnr_options(data, test_data, iters: int, batch: int) -> dict:
    opt = common_options('demo_psnr', data, test_data, iters, batch)
    opt['model_type'] = 'ESRGANPSNRModel'
    opt['train'] = {
        # EMA 0.999 (the paper's setting) averages over ~1000 steps: in a run this short it would still be
        # mostly the random initial weights. 0.99 averages over the last ~100.
        'ema_decay': 0.99,
        # A higher rate than the paper's 2e-4 suits the small network and the short run.
        'optim_g': {'type': 'Adam', 'lr': 1e-3, 'betas': [0.9, 0.99]},
        'scheduler': {'type': 'MultiStepLR', 'milestones': [iters * 3 // 4], 'gamma': 0.5},
        'total_iter': iters,
        'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'},
    }
    return opt


def gan_options(data, test_data, iters: int, batch: int, psnr_model: str, vgg_weights) -> dict:
    opt = common_options('demo_esrgan', data, test_data, iters, batch)
    opt['model_type'] = 'ESRGANRaGANModel'
    opt['network_d'] = {'type': 'ESRGANVGGDiscriminator', 'num_in_ch': 3, 'num_feat': 32, 'input_size': GT_SIZE}
    opt['path']['pretrain_network_g'] = psnr_model
    opt['train'] = {
        'ema_decay': 0.99,
        'optim_g': {'type': 'Adam', 'lr': 1e-4, 'betas': [0.9, 0.99]},
        'optim_d': {'type': 'Adam', 'lr': 1e-4, 'betas': [0.9, 0.99]},
        'total_iter': iters,  # no scheduler: the rate stays constant over this short run
        # The paper's loss: L_percep + 5e-3 L_G^Ra + 1e-2 L_1, VGG19 conv5_4 before activation.
        'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1e-2, 'reduction': 'mean'},
        'perceptual_opt': {'type': 'ESRGANPerceptualLoss', 'layer': 'conv5_4', 'loss_weight': 1.0,
                           'vgg_weights': vgg_weights},
        'gan_opt': {'type': 'ESRGANRaGANLoss', 'loss_weight': 5e-3},
    }
    return opt


def train(opt: dict, out: str) -> str:
    path = os.path.join(out, 'options', f'{opt["name"]}.yml')
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        yaml.safe_dump(opt, f, sort_keys=False)
    subprocess.run([sys.executable, '-m', 'esrgan_plugin.train', '-opt', os.path.abspath(path)], cwd=out, check=True)
    return os.path.join(out, 'experiments', opt['name'], 'models', 'net_g_latest.pth')


def upscale(net: torch.nn.Module, lr_bgr: np.ndarray) -> np.ndarray:
    from basicsr.utils import img2tensor, tensor2img
    device = next(net.parameters()).device
    with torch.no_grad():
        out = net(img2tensor(lr_bgr.astype(np.float32) / 255.0, bgr2rgb=True).unsqueeze(0).to(device))
    return tensor2img(out.cpu(), rgb2bgr=True)


def matlab_bicubic_up(lr_bgr: np.ndarray) -> np.ndarray:
    from basicsr.utils.matlab_functions import imresize
    up = imresize(lr_bgr.astype(np.float64) / 255.0, SCALE)
    return (np.clip(up, 0, 1) * 255.0).round().astype(np.uint8)


def labelled(img: np.ndarray, text: str) -> np.ndarray:
    img = img.copy()
    cv2.putText(img, text, (8, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 0), 4, cv2.LINE_AA)
    cv2.putText(img, text, (8, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2, cv2.LINE_AA)
    return img


def evaluate(models: dict, test_data, out: str) -> dict:
    from basicsr.metrics import calculate_psnr, calculate_ssim
    from esrgan_plugin import fileio
    results = {name: [] for name in ['bicubic', *models]}
    rows = []
    for gt_name in sorted(os.listdir(test_data.gt_folder)):
        gt = cv2.imread(os.path.join(test_data.gt_folder, gt_name))
        lr = cv2.imread(os.path.join(test_data.lq_folder, gt_name))
        outputs = {'bicubic': matlab_bicubic_up(lr)}
        outputs.update({name: upscale(net, lr) for name, net in models.items()})
        for name, sr in outputs.items():
            psnr = calculate_psnr(sr, gt, crop_border=4, test_y_channel=True)
            ssim = calculate_ssim(sr, gt, crop_border=4, test_y_channel=True)
            results[name].append((psnr, ssim))
            fileio.save_image(sr, os.path.join(out, 'results', name, gt_name))
        panels = [labelled(outputs['bicubic'], 'bicubic'), labelled(outputs['PSNR model'], 'PSNR model'),
                  labelled(outputs['ESRGAN'], 'ESRGAN'), labelled(gt, 'ground truth')]
        rows.append(np.concatenate(panels, axis=1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows]
    fileio.save_image(np.concatenate(rows, axis=0), os.path.join(out, 'comparison.png'))
    return {name: tuple(np.mean(v, axis=0)) for name, v in results.items()}


def main() -> int:
    args = parse_args()
    out = os.path.abspath(args.out)
    if os.path.exists(out) and os.listdir(out):
        if not args.overwrite:
            print(f'error: {out} already exists; pass --overwrite to start again or --out for another folder.',
                  file=sys.stderr)
            return 2
        shutil.rmtree(out)
    start = time.time()
    import esrgan_plugin  # noqa: F401  registration and basicsr adaptations
    from esrgan_plugin.checkpoint import load_generator
    from esrgan_plugin.interpolate import interpolate
    from esrgan_plugin.perceptual_loss import default_vgg19_path
    from esrgan_plugin.prepare_data import prepare

    step('Writing photos bundled with scikit-image (training: ' + ', '.join(TRAIN_PHOTOS) + '; held out: '
         + ', '.join(TEST_PHOTOS) + ')')
    train_dir, test_dir = save_photos(out)

    step('Building LMDBs of 96x96 sub-images with MATLAB-bicubic x4 LR (esrgan_plugin.prepare_data)')
    data = prepare(train_dir, os.path.join(out, 'data', 'train'), scale=SCALE, crop=96, step=48, workers=2)
    test_data = prepare(test_dir, os.path.join(out, 'data', 'test'), scale=SCALE, whole_image=True, lmdb=False,
                        folders=True, workers=1)
    print(f'{data.num_pairs} training pairs, {test_data.num_pairs} held-out images')

    step(f'Stage 1: PSNR-oriented training, L1 loss, {args.psnr_iters} iterations')
    psnr_model = train(psnr_options(data, test_data, args.psnr_iters, args.batch), out)

    vgg = default_vgg19_path()
    if os.path.isfile(vgg):
        vgg_weights = vgg
        vgg_note = f'ImageNet VGG19 from {vgg}'
    else:
        vgg_weights = 'random'
        vgg_note = (f'a RANDOM VGG19 stand-in: {vgg} is absent (download '
                    'https://download.pytorch.org/models/vgg19-dcbb9e9d.pth there for the real perceptual loss)')
    step(f'Stage 2: GAN training (RaGAN + perceptual + L1) from the PSNR model, {args.gan_iters} iterations; '
         f'perceptual loss uses {vgg_note}')
    gan_model = train(gan_options(data, test_data, args.gan_iters, args.batch, psnr_model, vgg_weights), out)

    step('Evaluating on the held-out photos (PSNR/SSIM on Y, 4-pixel border)')
    psnr_net, gan_net = load_generator(psnr_model), load_generator(gan_model)
    # Network interpolation (paper section 4.4): 0.8 of the GAN model, 0.2 of the PSNR model.
    interp_net = copy.deepcopy(psnr_net)
    interp_net.load_state_dict(interpolate(psnr_net.state_dict(), gan_net.state_dict(), 0.8))
    scores = evaluate({'PSNR model': psnr_net, 'ESRGAN': gan_net, 'interpolated, alpha 0.8': interp_net},
                      test_data, out)
    print(f'\n{"method":<26}{"PSNR (dB)":>10}{"SSIM":>8}')
    for name, (psnr, ssim) in scores.items():
        print(f'{name:<26}{psnr:>10.2f}{ssim:>8.4f}')
    print(f'\nSR images: {os.path.join(out, "results")}\nside by side: {os.path.join(out, "comparison.png")}'
          f'\nexperiments: {os.path.join(out, "experiments")}\ntook {(time.time() - start) / 60:.1f} min')
    return 0


if __name__ == '__main__':
    sys.exit(main())
