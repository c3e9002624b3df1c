"""Seconds per GAN training step: ESRGANRaGANModel against basicsr's ESRGANModel, same inputs, same run.

Both models get the same generator, the same VGG-style discriminator (128x128), the same optimisers and the
same pixel loss; the perceptual loss is left out of both, because basicsr's needs ImageNet VGG weights and
returns a different type. What differs is the step itself: basicsr runs the discriminator five times per
step, ours three times. Steps of the two models alternate in blocks, so drifting clocks hit both alike.

    python scripts/benchmark_gan_step.py                  # a reduced generator on the CPU
    python scripts/benchmark_gan_step.py --num-block 23 --batch 16 --device cuda   # the paper's setting
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time


def options(model_type: str, args: argparse.Namespace) -> dict:
    opt = {
        'name': 'bench', 'model_type': model_type, 'scale': 4, 'num_gpu': 1 if args.device == 'cuda' else 0,
        'dist': False, 'rank': 0, 'world_size': 1, 'is_train': True,
        'network_g': {'type': 'ESRGANRRDBNet', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 64,
                      'num_block': args.num_block, 'num_grow_ch': 32},
        'path': {'resume_state': None},
        'train': {
            'ema_decay': 0.999,
            'optim_g': {'type': 'Adam', 'lr': 1e-4, 'betas': [0.9, 0.99]},
            'optim_d': {'type': 'Adam', 'lr': 1e-4, 'betas': [0.9, 0.99]},
            'scheduler': {'type': 'MultiStepLR', 'milestones': [10 ** 6], 'gamma': 0.5},
            'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1e-2, 'reduction': 'mean'},
        },
    }
    if model_type == 'ESRGANModel':
        opt['network_d'] = {'type': 'VGGStyleDiscriminator', 'num_in_ch': 3, 'num_feat': 64, 'input_size': 128}
        opt['train']['gan_opt'] = {'type': 'GANLoss', 'gan_type': 'vanilla', 'real_label_val': 1.0,
                                   'fake_label_val': 0.0, 'loss_weight': 5e-3}
    else:
        opt['network_d'] = {'type': 'ESRGANVGGDiscriminator', 'num_in_ch': 3, 'num_feat': 64, 'input_size': 128}
        opt['train']['gan_opt'] = {'type': 'ESRGANRaGANLoss', 'loss_weight': 5e-3}
    return opt


def timed_steps(model, data: dict, steps: int, device: 'torch.device') -> list[float]:
    import torch

    times = []
    for _ in range(steps):
        if device.type == 'cuda':
            torch.cuda.synchronize()
        start = time.perf_counter()
        model.feed_data(data)
        model.optimize_parameters(1)
        if device.type == 'cuda':
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--num-block', type=int, default=4, help='RRDB blocks of the generator (paper: 23)')
    parser.add_argument('--batch', type=int, default=4, help='batch size (paper: 16)')
    parser.add_argument('--steps', type=int, default=3, help='timed steps per block and model')
    parser.add_argument('--blocks', type=int, default=3, help='alternating blocks of timed steps')
    parser.add_argument('--device', choices=['auto', 'cpu', 'cuda'], default='auto',
                        help='auto: CUDA when present, else the CPU')
    args = parser.parse_args()

    import torch  # after parsing, so that -h answers at once

    import esrgan_plugin  # noqa: F401  registration and basicsr adaptations
    from basicsr.models import build_model
    if args.device == 'auto':
        args.device = 'cuda' if torch.cuda.is_available() else 'cpu'
    device = torch.device(args.device)
    torch.manual_seed(0)
    data = {'lq': torch.rand(args.batch, 3, 32, 32), 'gt': torch.rand(args.batch, 3, 128, 128)}
    models = {}
    for name, model_type in (('basicsr ESRGANModel', 'ESRGANModel'), ('esrgan_plugin ESRGANRaGANModel',
                                                                       'ESRGANRaGANModel')):
        torch.manual_seed(0)
        models[name] = build_model(copy.deepcopy(options(model_type, args)))
        timed_steps(models[name], data, 1, device)  # warm-up
    times = {name: [] for name in models}
    for _ in range(args.blocks):
        for name, model in models.items():
            times[name] += timed_steps(model, data, args.steps, device)
    print(f'device {args.device}, generator {args.num_block} RRDBs, batch {args.batch}, HR 128x128, '
          f'{args.steps * args.blocks} timed steps each (median)')
    medians = {name: statistics.median(t) for name, t in times.items()}
    for name, median in medians.items():
        print(f'{name:<32} {median:8.3f} s/step')
    ours, theirs = medians['esrgan_plugin ESRGANRaGANModel'], medians['basicsr ESRGANModel']
    print(f'speed-up: {theirs / ours:.2f}x')


if __name__ == '__main__':
    main()
