"""Seconds per training iteration: basicsr's SRModel / ESRGANModel against ours in fp32 and in the fast modes.

Two ways to measure, same rows:

* ``--via step`` (default): all models in this process, the same input batch, steps of the rows interleaved
  (round-robin, so a drifting clock or a noisy neighbour hits every row alike), median of the step times.
  Per row it prints seconds/step, the ratio to basicsr, the achieved GFLOP/s (FLOPs of one step counted once
  with torch.utils.flop_counter) and the relative difference of the first step's pixel loss from ours in
  fp32 (the generators start from the same weights, so this is the forward's agreement).
* ``--via cli``: ``python -m esrgan_plugin.train`` runs on a tiny generated LMDB (basicsr's
  ``PairedImageDataset`` for every row), one run per row and round, rounds interleaved; seconds per
  iteration are the gaps between consecutive iteration lines of the log (``print_freq: 1``), the first
  ``--warmup`` of each run dropped: the seconds per iteration a user of the command sees.

``--mode l1`` is the PSNR-oriented stage (SRModel vs ESRGANPSNRModel), ``--mode gan`` the GAN stage
(ESRGANModel with VGGStyleDiscriminator, vanilla GAN loss and PerceptualLoss vs ESRGANRaGANModel). Both
perceptual losses use the same randomly initialised VGG19, written to a temporary folder (basicsr reads
``experiments/pretrained_models/vgg19-dcbb9e9d.pth`` relative to the working directory, so the script runs
there).

    python scripts/benchmark_train.py --mode gan                          # CPU, full generator, batch 2, 128²
    python scripts/benchmark_train.py --mode l1 --via cli --steps 4
    python scripts/benchmark_train.py --mode gan --device cuda --batch 16 --rows basicsr fp32 bf16-cl fp16-cl
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import glob
import io
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime

ROWS = {  # name: the plugin's precision options (None: basicsr's own model)
    'basicsr': None,
    'fp32': {},
    'fp32-cl': {'channels_last': True},
    'fp32-compile': {'compile': True},
    'fp32-cl-compile': {'channels_last': True, 'compile': True},
    'bf16': {'amp': 'bf16'},
    'bf16-cl': {'amp': 'bf16', 'channels_last': True},
    'bf16-cl-compile': {'amp': 'bf16', 'channels_last': True, 'compile': True},
    'fp16-cl': {'amp': 'fp16', 'channels_last': True},
    'fp16-cl-compile': {'amp': 'fp16', 'channels_last': True, 'compile': True},
    # CUDA graphs: one launch for the whole step's kernels, for launch-bound small patches
    'fp32-cudagraphs': {'compile': 'reduce-overhead'},
    'bf16-cl-cudagraphs': {'amp': 'bf16', 'channels_last': True, 'compile': 'reduce-overhead'},
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument('--mode', choices=['l1', 'gan'], default='gan')
    parser.add_argument('--via', choices=['step', 'cli'], default='step')
    parser.add_argument('--num-block', type=int, default=23, help='RRDB blocks of the generator (paper: 23)')
    parser.add_argument('--batch', type=int, default=2, help='batch size (paper: 16)')
    parser.add_argument('--gt-size', type=int, default=128, help='GT patch size (paper: 128)')
    parser.add_argument('--rows', nargs='+', choices=list(ROWS), default=['basicsr', 'fp32', 'bf16', 'bf16-cl'])
    parser.add_argument('--rounds', type=int, default=5, help='interleaved rounds')
    parser.add_argument('--steps', type=int, default=1, help='timed steps per row and round')
    parser.add_argument('--warmup', type=int, default=1, help='untimed steps per row (per run with --via cli)')
    parser.add_argument('--device', choices=['auto', 'cpu', 'cuda'], default='auto', help='auto: CUDA when present')
    return parser


if __name__ == '__main__':
    build_parser().parse_args()  # -h and usage errors are answered here, before torch is imported

import torch  # noqa: E402

LOG_LINE = re.compile(r'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO: \[.*iter:\s*([\d,]+)')


def options(args: argparse.Namespace, row: str, vgg_path: str) -> dict:
    """Model options of one row: basicsr's classes for 'basicsr', ours with the row's precision otherwise."""
    basicsr = ROWS[row] is None
    arch = {'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 64, 'num_block': args.num_block, 'num_grow_ch': 32}
    opt = {
        'name': f'bench_{row}', 'scale': 4, 'num_gpu': 1 if args.device == 'cuda' else 0,
        'dist': False, 'rank': 0, 'world_size': 1, 'is_train': True,
        'network_g': {'type': 'RRDBNet' if basicsr else 'ESRGANRRDBNet', **arch},
        'path': {'resume_state': None},
        'train': {
            'ema_decay': 0.999,
            'optim_g': {'type': 'Adam', 'lr': 1e-4, 'betas': [0.9, 0.99]},
            'scheduler': {'type': 'MultiStepLR', 'milestones': [10 ** 6], 'gamma': 0.5},
            'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0 if args.mode == 'l1' else 1e-2, 'reduction': 'mean'},
            **(ROWS[row] or {}),
        },
    }
    if args.mode == 'l1':
        opt['model_type'] = 'SRModel' if basicsr else 'ESRGANPSNRModel'
        return opt
    opt['train']['optim_d'] = {'type': 'Adam', 'lr': 1e-4, 'betas': [0.9, 0.99]}
    d = {'num_in_ch': 3, 'num_feat': 64, 'input_size': args.gt_size}
    if basicsr:
        opt['model_type'] = 'ESRGANModel'
        opt['network_d'] = {'type': 'VGGStyleDiscriminator', **d}
        opt['train']['perceptual_opt'] = {'type': 'PerceptualLoss', 'layer_weights': {'conv5_4': 1},
                                          'vgg_type': 'vgg19', 'use_input_norm': True, 'range_norm': False,
                                          'perceptual_weight': 1.0, 'style_weight': 0, 'criterion': 'l1'}
        opt['train']['gan_opt'] = {'type': 'GANLoss', 'gan_type': 'vanilla', 'real_label_val': 1.0,
                                   'fake_label_val': 0.0, 'loss_weight': 5e-3}
    else:
        opt['model_type'] = 'ESRGANRaGANModel'
        opt['network_d'] = {'type': 'ESRGANVGGDiscriminator', **d}
        opt['train']['perceptual_opt'] = {'type': 'ESRGANPerceptualLoss', 'layer': 'conv5_4',
                                          'vgg_weights': vgg_path}
        opt['train']['gan_opt'] = {'type': 'ESRGANRaGANLoss', 'loss_weight': 5e-3}
    return opt


def write_random_vgg19(folder: str) -> str:
    """A randomly initialised torchvision VGG19 state dict where basicsr looks for the ImageNet file."""
    from torchvision.models import vgg19
    path = os.path.join(folder, 'experiments', 'pretrained_models', 'vgg19-dcbb9e9d.pth')
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.manual_seed(0)
    torch.save(vgg19(weights=None).state_dict(), path)
    return path


# ------------------------------------------------------------------------------------------ in-process
def sync(device: str) -> None:
    if device == 'cuda':
        torch.cuda.synchronize()


def one_step(model, data: dict, it: int, device: str) -> float:
    sync(device)
    start = time.perf_counter()
    model.feed_data(data)
    model.optimize_parameters(it)
    sync(device)
    return time.perf_counter() - start


def pixel_loss(model) -> float:
    log = model.get_current_log()
    return log['l_g_pix'] if 'l_g_pix' in log else log['l_pix']


def bench_steps(args: argparse.Namespace, folder: str) -> list[tuple]:
    from basicsr.models import build_model
    from torch.utils.flop_counter import FlopCounterMode

    vgg_path = write_random_vgg19(folder)
    g = torch.Generator().manual_seed(0)
    lr_size = args.gt_size // 4
    data = {'lq': torch.rand(args.batch, 3, lr_size, lr_size, generator=g),
            'gt': torch.rand(args.batch, 3, args.gt_size, args.gt_size, generator=g)}
    models, first_loss, flops, times = {}, {}, {}, {}
    initial_g = None
    for row in args.rows:
        torch.manual_seed(0)
        try:
            models[row] = build_model(copy.deepcopy(options(args, row, vgg_path)))  # basicsr pops from it
        except Exception as err:  # e.g. fp16 on a CPU: report the row, measure the others
            print(f'{row}: not measured ({type(err).__name__}: {str(err).splitlines()[0]})', flush=True)
            continue
        model = models[row]
        net_g = model.get_bare_model(model.net_g)
        if initial_g is None:
            initial_g = {k: v.clone() for k, v in net_g.state_dict().items()}
        else:  # every row starts from the same generator weights (basicsr's RRDBNet has our names)
            net_g.load_state_dict(initial_g)
        with FlopCounterMode(display=False) as counter:
            model.feed_data(data)
            model.optimize_parameters(1)
        first_loss[row] = pixel_loss(model)
        flops[row] = counter.get_total_flops()
        for it in range(2, 2 + args.warmup):  # warm-up (compilation, allocator, cuDNN autotuning)
            one_step(model, data, it, args.device)
        times[row] = []
        print(f'{row}: ready', flush=True)
    for rnd in range(args.rounds):
        for row, model in models.items():
            times[row] += [one_step(model, data, 10 + rnd * args.steps + i, args.device) for i in range(args.steps)]
    results = []
    for row in models:
        loss_diff = (abs(first_loss[row] - first_loss['fp32']) / first_loss['fp32']) if 'fp32' in first_loss else None
        results.append((row, statistics.median(times[row]), flops[row], loss_diff))
    return results


# ------------------------------------------------------------------------------- through the train command
def make_lmdbs(folder: str, gt_size: int, count: int = 8) -> tuple[str, str]:
    import cv2
    import numpy as np
    from basicsr.utils.lmdb_util import make_lmdb_from_imgs

    rng = np.random.default_rng(0)
    names = [f'{i:04d}' for i in range(count)]
    for kind, size in (('gt', gt_size), ('lq', gt_size // 4)):
        os.makedirs(os.path.join(folder, kind), exist_ok=True)
    for name in names:
        hr = cv2.GaussianBlur((rng.random((gt_size, gt_size, 3)) * 255).astype(np.uint8), (5, 5), 1.5)
        cv2.imwrite(os.path.join(folder, 'gt', f'{name}.png'), hr)
        cv2.imwrite(os.path.join(folder, 'lq', f'{name}.png'),
                    cv2.resize(hr, (gt_size // 4, gt_size // 4), interpolation=cv2.INTER_AREA))
    paths = []
    for kind in ('gt', 'lq'):
        path = os.path.join(folder, f'{kind}.lmdb')
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):  # its progress
            make_lmdb_from_imgs(os.path.join(folder, kind), path, [f'{n}.png' for n in names], names,
                                map_size=1 << 28)
        paths.append(path)
    return paths[0], paths[1]


def cli_iteration_times(args: argparse.Namespace, folder: str, row: str, name: str, vgg_path: str,
                        lmdbs: tuple[str, str]) -> list[float]:
    import yaml
    opt = options(args, row, vgg_path)
    for key in ('dist', 'rank', 'world_size', 'is_train'):
        opt.pop(key)
    opt.update(name=name, manual_seed=0)
    opt['datasets'] = {'train': {
        'name': 'bench', 'type': 'PairedImageDataset', 'dataroot_gt': lmdbs[0], 'dataroot_lq': lmdbs[1],
        'io_backend': {'type': 'lmdb'}, 'gt_size': args.gt_size, 'use_hflip': True, 'use_rot': True,
        'num_worker_per_gpu': 1, 'batch_size_per_gpu': args.batch, 'dataset_enlarge_ratio': 100,
        'pin_memory': args.device == 'cuda'}}
    opt['train']['total_iter'] = args.warmup + args.steps + 1
    opt['logger'] = {'print_freq': 1, 'save_checkpoint_freq': 10 ** 9, 'use_tb_logger': False}
    yml = os.path.join(folder, f'{name}.yml')
    with open(yml, 'w') as f:
        yaml.safe_dump(opt, f)
    env = dict(os.environ)
    if args.device == 'cpu':
        env['CUDA_VISIBLE_DEVICES'] = ''
    run = subprocess.run([sys.executable, '-m', 'esrgan_plugin.train', '-opt', yml], cwd=folder, env=env,
                         capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError((run.stderr or run.stdout).strip().splitlines()[-1])
    log = ''.join(open(p).read() for p in glob.glob(os.path.join(folder, 'experiments', name, 'train_*.log')))
    stamps = [datetime.strptime(m.group(1), '%Y-%m-%d %H:%M:%S,%f')
              for m in map(LOG_LINE.match, log.splitlines()) if m]
    gaps = [(b - a).total_seconds() for a, b in zip(stamps, stamps[1:])]
    return gaps[args.warmup:]


def bench_cli(args: argparse.Namespace, folder: str) -> list[tuple]:
    vgg_path = write_random_vgg19(folder)
    lmdbs = make_lmdbs(os.path.join(folder, 'data'), args.gt_size)
    times = {row: [] for row in args.rows}
    failed = {}
    for rnd in range(args.rounds):
        for row in args.rows:
            if row in failed:
                continue
            try:
                times[row] += cli_iteration_times(args, folder, row, f'{row}_r{rnd}', vgg_path, lmdbs)
                print(f'{row}, round {rnd + 1}: done', flush=True)
            except RuntimeError as err:
                failed[row] = str(err)
                print(f'{row}: not measured ({err})', flush=True)
    return [(row, statistics.median(t), None, None) for row, t in times.items() if t]


def main() -> None:
    parser = build_parser()
    args = parser.parse_args()
    if args.device == 'auto':
        args.device = 'cuda' if torch.cuda.is_available() else 'cpu'
    if 'basicsr' not in args.rows:
        args.rows.insert(0, 'basicsr')

    import esrgan_plugin
    esrgan_plugin.register()  # basicsr adaptations and the plugin's classes
    from basicsr.utils import get_root_logger
    get_root_logger().setLevel('ERROR')
    if args.device == 'cuda':
        torch.backends.cudnn.benchmark = True  # what basicsr's launcher sets, for its rows too
    with tempfile.TemporaryDirectory() as folder:
        cwd = os.getcwd()
        os.chdir(folder)  # basicsr reads its VGG19 file relative to the working directory
        try:
            results = (bench_steps if args.via == 'step' else bench_cli)(args, folder)
        finally:
            os.chdir(cwd)
    device = torch.cuda.get_device_name() if args.device == 'cuda' else f'cpu, {torch.get_num_threads()} threads'
    print(f'\n{args.mode} step via {args.via}: {device}; generator {args.num_block} RRDBs, batch {args.batch}, '
          f'GT {args.gt_size}²; median of {args.rounds * args.steps} timed '
          f'{"steps" if args.via == "step" else "iterations"} per row, rows interleaved')
    base = dict((r[0], r[1]) for r in results).get('basicsr')
    print(f'{"row":<17}{"s/step":>9}{"vs basicsr":>12}{"GFLOP/s":>10}{"pixel loss vs fp32":>20}')
    for row, seconds, flops, loss_diff in results:
        ratio = f'{base / seconds:.2f}x' if base else '-'
        gflops = f'{flops / seconds / 1e9:.1f}' if flops else '-'
        agreement = f'{loss_diff:.1e}' if loss_diff is not None else '-'
        print(f'{row:<17}{seconds:>9.3f}{ratio:>12}{gflops:>10}{agreement:>20}')


if __name__ == '__main__':
    main()
