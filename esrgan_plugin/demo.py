"""``python -m esrgan_plugin.demo``: the whole ESRGAN method, end to end, on photos bundled with scikit-image.

1. writes ten training photos and two held-out ones (coffee, chelsea) to <out>/photos (nothing is downloaded);
2. builds sub-image LMDBs with MATLAB-bicubic x4 LR (``esrgan_plugin.prepare_data``);
3. trains the PSNR-oriented stage, then the GAN stage from it, with a reduced RRDBNet, through
   ``python -m esrgan_plugin.train`` like any user run (its output goes to its log file; the terminal shows a
   progress bar per stage). The GAN stage's perceptual loss is the paper's ImageNet VGG19 when torchvision's
   file is on disk, else ``ESRGANStandInPerceptualLoss`` (docs/demo.md#the-gan-stages-perceptual-loss says why);
4. evaluates bicubic, the PSNR model, ESRGAN and their network interpolation (alpha 0.8) on the held-out photos:
   PSNR/SSIM (Y, 4-pixel border), NIQE (no reference; lower looks more natural) and the shift of each colour
   channel's mean against the ground truth; writes the SR images and a comparison figure with zoomed crops.
"""
from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import time
from typing import Optional, Sequence

# OpenCV and numpy, not torch: -h stays quick (torch and basicsr are imported in main, after the arguments).
import cv2
import numpy as np
import yaml

from esrgan_plugin import demo_realworld, fileio
from esrgan_plugin.choices import DEGRADATIONS
from esrgan_plugin.cli import run_main, say
from esrgan_plugin.errors import UserFacingError
from esrgan_plugin.metrics.comparison import comparison_figure, direction_ratio

TRAIN_PHOTOS = ('astronaut', 'rocket', 'hubble_deep_field', 'immunohistochemistry', 'stereo_motorcycle', 'retina',
                'camera', 'brick', 'grass', 'gravel')
TEST_PHOTOS = ('coffee', 'chelsea')
SCALE = 4
SUB_IMAGE = 96  # the side of the training LMDB's GT sub-images
GT_SIZE = 64
INTERPOLATION_ALPHA = 0.8
# Result folder of each method: plain names, no spaces or commas, so they are easy to use in a shell.
METHODS = {'bicubic': 'bicubic', 'PSNR model': 'psnr_model', 'ESRGAN': 'esrgan',
           f'interpolated (alpha {INTERPOLATION_ALPHA})': f'interpolated_alpha{INTERPOLATION_ALPHA}'}
MAX_COLOR_SHIFT = 2.0  # levels of 255: the acceptance bound on a channel mean's shift against the ground truth
# The acceptance bound on direction-dependent artifacts: a GAN-stage output's direction_ratio at most this many
# times the ground truth's (outputs with visible horizontal streaks measured 1.41-1.49 times chelsea's, the
# streak-free ones 1.03-1.12 times: docs/demo.md#measured-result).
MAX_DIRECTION_EXCESS = 1.25
GAN_STAGE_METHODS = ('ESRGAN', f'interpolated (alpha {INTERPOLATION_ALPHA})')
# The two test sets every variant is scored on, and the folder of their SR images.
TEST_SETS = (demo_realworld.BICUBIC_SET, demo_realworld.REALWORLD_SET)
TEST_SETS_DIR = 'results_test_sets'


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='python -m esrgan_plugin.demo', description=__doc__.split('\n\n')[0].strip('`: '),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--out', default='demo_output', help='folder for photos, data, experiments and results')
    parser.add_argument('--psnr-iters', type=int, default=1200, help='iterations of the PSNR-oriented stage')
    parser.add_argument('--gan-iters', type=int, default=150, help='iterations of the GAN stage')
    parser.add_argument('--batch', type=int, default=16, help='batch size of both stages')
    # A reduced RRDBNet: the paper's blocks, fewer and narrower, so that it trains on a CPU in minutes.
    parser.add_argument('--num-feat', type=int, default=32, help='generator trunk channels (paper: 64)')
    parser.add_argument('--num-block', type=int, default=3, help='generator RRDB blocks (paper: 23)')
    parser.add_argument('--degradation', choices=DEGRADATIONS, default='bicubic',
                        help='the training LR: MATLAB-bicubic (the paper\'s), or made on the fly by Real-ESRGAN\'s '
                        'degradations with the settings of the shipped train_RRDBNet_PSNR_x4_realworld.yml')
    parser.add_argument('--reference', metavar='CHECKPOINT',
                        help='a released generator scored beside the demo\'s on both test sets, e.g. '
                        'RealESRGAN_x4plus.pth')
    parser.add_argument('--overwrite', action='store_true', help='start again if --out already holds a demo')
    return parser


def step(message: str) -> None:
    say(f'\n==> {message}')


def save_photos(out: str) -> tuple[str, str]:
    import skimage.data

    train_dir, test_dir = os.path.join(out, 'photos', 'train'), os.path.join(out, 'photos', 'test')
    for folder, names in ((train_dir, TRAIN_PHOTOS), (test_dir, TEST_PHOTOS)):
        for name in names:
            img = getattr(skimage.data, name)()
            img = img[0] if isinstance(img, tuple) else img  # stereo_motorcycle: (left, right, disparity)
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR) if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
            fileio.save_image(img, os.path.join(folder, f'{name}.png'))
    return train_dir, test_dir


def ema_decay(iters: int) -> float:
    """EMA over about the last tenth of the run.

    The paper's 0.999 averages over ~1000 steps: in a run of a few hundred it would still hold mostly the
    random initial weights (and their colours).
    """
    return max(0.0, 1.0 - 10.0 / max(iters, 1))


def network_g(num_feat: int, num_block: int) -> dict:
    """The generator: the paper's RRDBNet with ``num_feat`` channels, ``num_block`` RRDBs, growth num_feat / 2."""
    return {'type': 'ESRGANRRDBNet', 'num_in_ch': 3, 'num_out_ch': 3, 'scale': SCALE, 'num_feat': num_feat,
            'num_block': num_block, 'num_grow_ch': max(num_feat // 2, 1)}


def common_options(name: str, args: argparse.Namespace, data, test_data, total_iter: int) -> dict:
    opt = {
        'name': name, 'scale': SCALE, 'num_gpu': 'auto', 'manual_seed': 0,
        'datasets': {
            'train': {'name': 'skimage_photos', 'type': 'DIV2KPairedDataset', 'dataroot_gt': data.dataroot_gt,
                      'dataroot_lq': data.dataroot_lq, 'io_backend': {'type': 'lmdb'}, 'gt_size': GT_SIZE,
                      'use_hflip': True, 'use_rot': True, 'num_worker_per_gpu': 1, 'batch_size_per_gpu': args.batch,
                      'dataset_enlarge_ratio': 50},
            'val': {'name': 'heldout', 'type': 'DIV2KPairedDataset', 'dataroot_gt': test_data.dataroot_gt,
                    'dataroot_lq': test_data.dataroot_lq, 'io_backend': {'type': 'disk'}},
        },
        'network_g': network_g(args.num_feat, args.num_block),
        'path': {'pretrain_network_g': None, 'resume_state': None},
        'val': {'val_freq': total_iter, 'save_img': False,
                'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': 4, 'test_y_channel': True}}},
        # a log line about every hundredth of the run: it drives the demo's progress bar
        'logger': {'print_freq': max(total_iter // 100, 1), 'save_checkpoint_freq': total_iter,
                   'use_tb_logger': True},
    }
    if args.degradation == 'realworld':
        opt['datasets']['train'] = demo_realworld.realworld_train_dataset(opt['datasets']['train'], SUB_IMAGE)
    return opt


def psnr_options(args: argparse.Namespace, data, test_data) -> dict:
    iters = args.psnr_iters
    opt = common_options('demo_psnr', args, data, test_data, iters)
    opt['model_type'] = 'ESRGANPSNRModel'
    opt['train'] = {
        'ema_decay': ema_decay(iters),
        'channels_last': True,  # measured 1.3x faster per iteration for this small network on a 2-core CPU
        # A higher rate than the paper's 2e-4 suits the small network and the short run.
        'optim_g': {'type': 'Adam', 'lr': 1e-3, 'betas': [0.9, 0.99]},
        'scheduler': {'type': 'MultiStepLR', 'milestones': [max(iters * 3 // 4, 1)], 'gamma': 0.5},
        'total_iter': iters,
        'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'},
    }
    return opt


def perceptual_options(vgg19_file: Optional[str]) -> dict:
    """The paper's VGG19 conv5_4 loss when the ImageNet file is there, else the training-free stand-in."""
    if vgg19_file:
        return {'type': 'ESRGANPerceptualLoss', 'layer': 'conv5_4', 'loss_weight': 1.0, 'vgg_weights': vgg19_file}
    return {'type': 'ESRGANStandInPerceptualLoss', 'loss_weight': 1.0, 'scale': SCALE}


def gan_options(args: argparse.Namespace, data, test_data, psnr_model: str, vgg19_file: Optional[str]) -> dict:
    iters = args.gan_iters
    opt = common_options('demo_esrgan', args, data, test_data, iters)
    opt['model_type'] = 'ESRGANRaGANModel'
    opt['network_d'] = {'type': 'ESRGANVGGDiscriminator', 'num_in_ch': 3, 'num_feat': 32, 'input_size': GT_SIZE}
    opt['path']['pretrain_network_g'] = psnr_model
    opt['train'] = {
        'ema_decay': ema_decay(iters),
        'channels_last': True,
        'optim_g': {'type': 'Adam', 'lr': 1e-4, 'betas': [0.9, 0.99]},
        'optim_d': {'type': 'Adam', 'lr': 1e-4, 'betas': [0.9, 0.99]},
        'total_iter': iters,  # no scheduler: the rate stays constant over this short run
        # The paper's loss: L_percep + 5e-3 L_G^Ra + 1e-2 L_1.
        'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1e-2, 'reduction': 'mean'},
        'perceptual_opt': perceptual_options(vgg19_file),
        'gan_opt': {'type': 'ESRGANRaGANLoss', 'loss_weight': 5e-3},
    }
    return opt


# basicsr's log line of a training iteration, e.g.
# "[demo_..][epoch:  0, iter:     120, lr:(1.000e-03,)] [eta: 0:17:54, time (data): 1.044 (0.004)] l_pix: 3.0760e-02"
ITER_LINE = re.compile(r'\[epoch:\s*\d+, iter:\s*([\d,]+), lr:\(')
LOSS_VALUE = re.compile(r'\b(l_\w+): ([-+\d.eE]+)')
FAILURE_TAIL = 30  # lines of a failed stage's output shown in the terminal


def progress_losses(line: str) -> dict:
    """The losses for the progress bar from one log line: ``l_pix`` as it is; in the GAN stage the generator's
    terms summed as ``l_g`` and the discriminator's as ``l_d``."""
    shown: dict = {}
    for key, value in LOSS_VALUE.findall(line):
        name = 'l_g' if key.startswith('l_g_') else 'l_d' if key.startswith('l_d_') else key
        shown[name] = shown.get(name, 0.0) + float(value)
    return {name: f'{value:.3g}' for name, value in shown.items()}


def train(opt: dict, out: str) -> str:
    """One stage through the train command, as a user runs it; returns its final generator checkpoint.

    The command's own output (option dump, every log line) goes to its log file in experiments/<name>/ as usual;
    the terminal gets a progress bar driven by its iteration log lines, and, if it fails, its last lines.
    """
    from tqdm import tqdm

    path = os.path.join(out, 'options', f'{opt["name"]}.yml')
    fileio.save_text(yaml.safe_dump(opt, sort_keys=False), path)
    env = dict(os.environ, PYTHONUNBUFFERED='1')  # its lines as they come, for a live bar
    tail: collections.deque = collections.deque(maxlen=FAILURE_TAIL)
    total = opt['train']['total_iter']
    with subprocess.Popen([sys.executable, '-m', 'esrgan_plugin.train', '-opt', os.path.abspath(path)], cwd=out,
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors='replace',
                          bufsize=1) as proc, \
            tqdm(total=total, desc=opt['name'], unit='iter', file=sys.stderr, dynamic_ncols=True) as bar:
        try:
            for line in proc.stdout:
                line = line.rstrip('\n')
                tail.append(line)
                match = ITER_LINE.search(line)
                if match:
                    bar.update(int(match.group(1).replace(',', '')) - bar.n)
                    bar.set_postfix(progress_losses(line), refresh=True)
                elif line.startswith('warning: '):
                    bar.write(line, file=sys.stderr)
        except KeyboardInterrupt:
            proc.wait()  # the stage got the same signal and stops after the current step, with a checkpoint
            raise
        returncode = proc.wait()
    from esrgan_plugin.training.launch import experiment_folders
    folders = experiment_folders(out, opt['name'], is_train=True)  # where the stage, run in out/, writes
    if returncode:
        say(f'--- last {len(tail)} lines of the output of stage {opt["name"]} ---', error=True)
        for line in tail:
            say(line, error=True)
        log_dir = folders['log']
        raise UserFacingError(f'training stage {opt["name"]} failed (exit code {returncode})'
                              + (f'; its log is in {log_dir}' if os.path.isdir(log_dir) else ''))
    return os.path.join(folders['models'], 'net_g_latest.pth')


# ------------------------------------------------------------------ evaluation
# PSNR/SSIM on Y with a 4-pixel border, NIQE and the colour shift (whole image), as val.metrics entries: scored
# by the path validation uses.
METRICS = {'psnr': {'type': 'calculate_psnr', 'crop_border': 4, 'test_y_channel': True},
           'ssim': {'type': 'calculate_ssim', 'crop_border': 4, 'test_y_channel': True},
           'niqe': {'type': 'calculate_niqe', 'crop_border': 4},
           'shift': {'type': 'calculate_color_shift'}}


def evaluate(nets: dict, test_data, out: str) -> dict:
    """SR images, scores per method and photo (metrics.evaluation, as validation scores), the comparison figure."""
    from esrgan_plugin.metrics import evaluation
    from esrgan_plugin.data.bicubic import matlab_bicubic

    files = sorted(os.listdir(test_data.gt_folder))
    pairs = [evaluation.image_pair(os.path.splitext(f)[0], cv2.imread(os.path.join(test_data.lq_folder, f)),
                                   cv2.imread(os.path.join(test_data.gt_folder, f))) for f in files]
    upscalers = {'bicubic': evaluation.image_upscaler(lambda lr: matlab_bicubic(lr, SCALE)), **nets}
    results = {label: {} for label in METHODS}
    outputs, gts = {}, {}
    for label, upscale in upscalers.items():
        for file, result in zip(files, evaluation.evaluate_pairs(upscale, pairs, METRICS)):
            results[label][result.name] = {**result.values, 'direction': direction_ratio(result.sr)}
            outputs.setdefault(result.name, {})[label] = result.sr
            gts[result.name] = result.gt
            fileio.save_image(result.sr, os.path.join(out, 'results', METHODS[label], file))
    results['ground truth'] = {photo: {'direction': direction_ratio(gt)} for photo, gt in gts.items()}
    rows = [(photo, outputs[photo], gts[photo]) for photo in outputs]
    fileio.save_image(comparison_figure(rows), os.path.join(out, 'comparison.png'))
    return results


def report(results: dict, out: str, perceptual: str) -> None:
    photos = list(results['ground truth'])
    say(f'\n{"method":<28}{"PSNR (dB)":>10}{"SSIM":>8}{"NIQE":>7}   max colour shift per photo (levels)')
    for label in METHODS:
        per_photo = results[label]
        mean = {k: np.mean([s[k] for s in per_photo.values()]) for k in ('psnr', 'ssim', 'niqe')}
        shifts = ', '.join(f'{photo} {per_photo[photo]["shift"]:.2f}' for photo in photos)
        say(f'{label:<28}{mean["psnr"]:>10.2f}{mean["ssim"]:>8.4f}{mean["niqe"]:>7.2f}   {shifts}')
    say(f'(PSNR/SSIM on Y with a 4-pixel border and NIQE: means over {", ".join(photos)}; GAN stage perceptual '
        f'loss: {perceptual})')
    worst = max(results[label][photo]['shift'] for label in METHODS for photo in photos)
    if worst >= MAX_COLOR_SHIFT:
        say(f'warning: a colour channel of some output is {worst:.1f} levels off the ground truth', error=True)
    niqe = {label: np.mean([s['niqe'] for s in results[label].values()]) for label in ('PSNR model', 'ESRGAN')}
    verdict = 'lower: it looks more natural, as the paper claims' if niqe['ESRGAN'] < niqe['PSNR model'] else \
        'not lower: train the GAN stage longer (--gan-iters)'
    say(f'ESRGAN\'s NIQE {niqe["ESRGAN"]:.2f} against the PSNR model\'s {niqe["PSNR model"]:.2f}: {verdict}')
    say('\ndirection ratio (vertical / horizontal mean |second difference|; horizontal streaks raise it):')
    excess = {(label, photo): results[label][photo]['direction'] / results['ground truth'][photo]['direction']
              for label in GAN_STAGE_METHODS for photo in photos}
    for photo in photos:
        ratios = ', '.join(f'{label.split(" (")[0]} {results[label][photo]["direction"]:.2f}'
                           + (f' ({excess[label, photo]:.2f}x)' if label in GAN_STAGE_METHODS else '')
                           for label in METHODS)
        say(f'  {photo}: ground truth {results["ground truth"][photo]["direction"]:.2f}; {ratios}')
    (label, photo), most = max(excess.items(), key=lambda item: item[1])
    if most > MAX_DIRECTION_EXCESS:
        say(f'warning: {label} on {photo} has {most:.2f} times the ground truth\'s direction ratio (bound '
            f'{MAX_DIRECTION_EXCESS}): look for horizontal streaks in comparison.png', error=True)
    else:
        say(f'GAN-stage outputs: at most {most:.2f} times the ground truth\'s ratio (bound {MAX_DIRECTION_EXCESS})')


def where_everything_is(out: str) -> None:
    sets = ','.join(demo_realworld.folder_name(label) for label in TEST_SETS)
    say(f'test sets:       {os.path.join(out, TEST_SETS_DIR)}/{{{sets}}}/ (SR images, comparison.png)')
    say(f'SR images:       {os.path.join(out, "results")}/{{{",".join(METHODS.values())}}}/')
    say(f'side by side:    {os.path.join(out, "comparison.png")}')
    from esrgan_plugin.training.launch import experiment_folders
    logs = [f'{experiment_folders(out, name, is_train=True)["log"]}/train_{name}_*.log'
            for name in ('demo_psnr', 'demo_esrgan')]
    say(f'training logs:   {logs[0]} and {logs[1]}')
    say(f'loss curves:     tensorboard --logdir {os.path.join(out, "tb_logger")}')


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if min(args.psnr_iters, args.gan_iters, args.batch, args.num_feat, args.num_block) < 1:
        build_parser().error('--psnr-iters, --gan-iters, --batch, --num-feat and --num-block must be at least 1')
    out = os.path.abspath(args.out)
    if os.path.exists(out) and os.listdir(out):
        if not args.overwrite:
            raise UserFacingError(f'{out} already exists; pass --overwrite to start again or --out for another '
                                  'folder.')
    start = time.time()
    from esrgan_plugin import register

    register()
    from esrgan_plugin.archs.checkpoint import load_generator
    from esrgan_plugin.losses.perceptual_loss import default_vgg19_path
    from esrgan_plugin.data.preparation import prepare

    # Read before anything is written or trained: a file that does not load stops the demo at once.
    reference = {f'reference: {os.path.splitext(os.path.basename(args.reference))[0]}':
                 load_generator(args.reference)} if args.reference else {}
    if os.path.exists(out):
        shutil.rmtree(out)
    step(f'Writing {len(TRAIN_PHOTOS)} training photos and {len(TEST_PHOTOS)} held-out ones '
         f'({", ".join(TEST_PHOTOS)}) bundled with scikit-image')
    train_dir, test_dir = save_photos(out)

    step(f'Building LMDBs of {SUB_IMAGE}x{SUB_IMAGE} sub-images with MATLAB-bicubic x4 LR '
         '(esrgan_plugin.prepare_data), and the held-out photos\' real-world LR')
    data = prepare(train_dir, os.path.join(out, 'data', 'train'), scale=SCALE, crop=SUB_IMAGE, step=SUB_IMAGE // 2,
                   workers=2)
    test_data = prepare(test_dir, os.path.join(out, 'data', 'test'), scale=SCALE, whole_image=True, lmdb=False,
                        folders=True, workers=1)
    realworld_set = demo_realworld.realworld_test_set(test_dir, os.path.join(out, 'data', 'test_realworld'), SCALE)
    say(f'{data.num_pairs} training pairs, {test_data.num_pairs} held-out images')
    how = 'Real-ESRGAN\'s degradations made on the fly' if args.degradation == 'realworld' else 'MATLAB-bicubic'

    step(f'Stage 1: PSNR-oriented training, L1 loss, {args.psnr_iters} iterations, LR: {how}')
    psnr_model = train(psnr_options(args, data, test_data), out)

    vgg19_file = default_vgg19_path() if os.path.isfile(default_vgg19_path()) else None
    perceptual = (f'the paper\'s, ImageNet VGG19 conv5_4 from {vgg19_file}' if vgg19_file else
                  f'the training-free stand-in; put torchvision\'s VGG19 file at {default_vgg19_path()} for the '
                  'paper\'s')
    step(f'Stage 2: GAN training (RaGAN + perceptual + L1) from the PSNR model, {args.gan_iters} iterations')
    say(f'perceptual loss: {perceptual}')
    gan_model = train(gan_options(args, data, test_data, psnr_model, vgg19_file), out)

    step('Evaluating on the held-out photos')
    sets = {demo_realworld.BICUBIC_SET: (test_data.lq_folder, test_data.gt_folder),
            demo_realworld.REALWORLD_SET: realworld_set}
    evaluate_all(psnr_model, gan_model, reference, sets, test_data, out, 'ImageNet VGG19' if vgg19_file else
                 'stand-in')
    say(f'took {(time.time() - start) / 60:.1f} min')
    return 0


def evaluate_all(psnr_model: str, gan_model: str, reference: dict, sets: dict, test_data, out: str,
                 perceptual: str) -> None:
    """The first table (bicubic LR: PSNR, SSIM, NIQE, colour, direction) and the one of both test sets."""
    from esrgan_plugin.archs.checkpoint import load_generator
    from esrgan_plugin.data.bicubic import matlab_bicubic
    from esrgan_plugin.inference.interpolation import interpolate
    from esrgan_plugin.metrics import evaluation

    psnr_net, gan_net = load_generator(psnr_model), load_generator(gan_model)
    # Network interpolation (paper section 4.4): 0.8 of the GAN model's weights, 0.2 of the PSNR model's.
    interp_net = load_generator(psnr_model)
    interp_net.load_state_dict(interpolate(psnr_net.state_dict(), gan_net.state_dict(), INTERPOLATION_ALPHA))
    labels = list(METHODS)
    results = evaluate(dict(zip(labels[1:], (psnr_net, gan_net, interp_net))), test_data, out)
    report(results, out, perceptual)
    upscalers = {'bicubic': evaluation.image_upscaler(lambda lr: matlab_bicubic(lr, SCALE)),
                 'PSNR model': psnr_net, 'ESRGAN': gan_net, **reference}
    metrics, note = demo_realworld.score_names()
    scores = demo_realworld.score_sets(upscalers, sets, metrics, os.path.join(out, TEST_SETS_DIR))
    for line in [*demo_realworld.score_table(scores, TEST_PHOTOS), *([note] if note else [])]:
        say(line)
    where_everything_is(out)


if __name__ == '__main__':
    run_main(main)
