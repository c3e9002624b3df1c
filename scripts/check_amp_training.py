"""Does a GAN run in reduced precision end where the fp32 run ends? (the accuracy check of mixed-precision training)

Trains ESRGANRaGANModel twice from the same seed on the same tiny data, in fp32 and in ``--amp`` (bf16 with
channels_last by default), with a tiny generator, and compares the mean pixel loss (``l_g_pix``) of the last
``--last`` iterations. Exit status 1 when they differ by more than ``--tolerance`` (relative).

    python scripts/check_amp_training.py                     # 200 iterations, last 50, within 5 %
    python scripts/check_amp_training.py --device cuda --amp fp16
"""
from __future__ import annotations

import argparse
import sys

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--iters', type=int, default=200)
    parser.add_argument('--last', type=int, default=50, help='iterations averaged at the end')
    parser.add_argument('--amp', choices=['bf16', 'fp16'], default='bf16')
    parser.add_argument('--no-channels-last', action='store_true')
    parser.add_argument('--tolerance', type=float, default=0.05, help='relative difference allowed')
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    return parser


if __name__ == '__main__':
    build_parser().parse_args()  # -h and usage errors are answered here, before torch is imported

import torch  # noqa: E402


def options(amp: str, channels_last: bool, device: str) -> dict:
    return {
        'name': 'amp_check', 'model_type': 'ESRGANRaGANModel', 'scale': 4, 'num_gpu': int(device == 'cuda'),
        'dist': False, 'rank': 0, 'world_size': 1, 'is_train': True,
        'network_g': {'type': 'ESRGANRRDBNet', 'num_in_ch': 3, 'num_out_ch': 3, 'scale': 4, 'num_feat': 8,
                      'num_block': 2, 'num_grow_ch': 4},
        'network_d': {'type': 'ESRGANVGGDiscriminator', 'num_in_ch': 3, 'num_feat': 4, 'input_size': 32},
        'path': {'resume_state': None},
        'train': {
            'amp': amp, 'channels_last': channels_last, 'ema_decay': 0.999,
            'optim_g': {'type': 'Adam', 'lr': 1e-4, 'betas': [0.9, 0.99]},
            'optim_d': {'type': 'Adam', 'lr': 1e-4, 'betas': [0.9, 0.99]},
            'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1e-2, 'reduction': 'mean'},
            'perceptual_opt': {'type': 'ESRGANPerceptualLoss', 'layer': 'conv1_1', 'vgg_weights': 'random'},
            'gan_opt': {'type': 'ESRGANRaGANLoss', 'loss_weight': 5e-3},
        },
    }


def tiny_batches(count: int) -> list[dict]:
    """Smooth random 32x32 GT images and their 4x box-downscaled LR, batches of 2."""
    g = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(count):
        gt = torch.nn.functional.avg_pool2d(torch.rand(2, 3, 36, 36, generator=g), 5, stride=1)
        batches.append({'gt': gt, 'lq': torch.nn.functional.avg_pool2d(gt, 4)})
    return batches


def pixel_losses(amp: str, channels_last: bool, iters: int, device: str) -> list[float]:
    from basicsr.models import build_model
    torch.manual_seed(0)
    model = build_model(options(amp, channels_last, device))
    data = tiny_batches(8)
    losses = []
    for it in range(1, iters + 1):
        model.feed_data(data[it % len(data)])
        model.optimize_parameters(it)
        losses.append(model.get_current_log()['l_g_pix'])
    return losses


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.last > args.iters:
        parser.error('--last must not exceed --iters')

    import esrgan_plugin
    esrgan_plugin.register()  # basicsr adaptations and the plugin's classes
    from basicsr.utils import get_root_logger
    logger = get_root_logger()
    level = logger.level
    logger.setLevel('ERROR')  # the models' info lines are not this script's output
    channels_last = not args.no_channels_last
    try:
        reference = pixel_losses('fp32', False, args.iters, args.device)
        reduced = pixel_losses(args.amp, channels_last, args.iters, args.device)
    finally:
        logger.setLevel(level)
    ref_mean = sum(reference[-args.last:]) / args.last
    red_mean = sum(reduced[-args.last:]) / args.last
    relative = abs(red_mean - ref_mean) / ref_mean
    ok = relative <= args.tolerance
    print(f'{args.iters} iterations on {args.device}; mean l_g_pix of the last {args.last}:')
    print(f'  fp32                        {ref_mean:.6f}  (first iteration {reference[0]:.6f})')
    print(f'  {args.amp}, channels_last {str(channels_last):<5}  {red_mean:.6f}  (first iteration {reduced[0]:.6f})')
    print(f'relative difference {100 * relative:.2f} %; within {100 * args.tolerance:.1f} %: {"yes" if ok else "NO"}')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
