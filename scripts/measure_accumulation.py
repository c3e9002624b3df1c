"""How far does train.accumulate move training from one batch's? Prints, per model and network, the relative
difference of the summed gradient of the first step, ||g_N - g_1|| / ||g_1||, and of the weight update after K
steps, ||w_N - w_1|| / ||w_1 - w_0||, where _1 is the run without accumulation, _N the run with N micro-batches,
w_0 the start.

The PSNR stage (L1) sums to the batch's gradient, so its difference is float rounding. The GAN stage's
relativistic loss compares each logit with the mean of the other class's logits within its micro-batch, and the
discriminator's BatchNorm normalises each micro-batch by itself, so its difference is real; the rows with
identical micro-batches (each micro-batch a copy of the same images, where both means and BatchNorm statistics
are the batch's) show what float rounding alone gives through Adam.

    python scripts/measure_accumulation.py                      # 20 steps, batch 8, N = 2, 4, 32x32 patches
    python scripts/measure_accumulation.py --patch 128 --images ../shared/data/train/Kodak24
"""
from __future__ import annotations

import argparse
import glob
import os

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--steps', type=int, default=20, help='optimizer steps (K)')
    parser.add_argument('--batch', type=int, default=8, help='batch of a step (batch_size_per_gpu)')
    parser.add_argument('--accumulate', type=int, nargs='+', default=[2, 4], help='micro-batches per step (N)')
    parser.add_argument('--patch', type=int, default=32,
                        help="HR patch size (gt_size, D's input_size): 32, 64, 96, 128")
    parser.add_argument('--images', default=os.path.join(REPO_ROOT, '..', 'shared', 'data', 'train', 'Kodak24'),
                        help='folder of photos to crop the HR patches from (random smooth images if absent)')
    return parser


if __name__ == '__main__':
    ARGS = build_parser().parse_args()  # -h and usage errors are answered here, before torch is imported

import tempfile  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import esrgan_plugin  # noqa: E402
esrgan_plugin.register()  # basicsr adaptations and the plugin's classes
from basicsr.models import build_model  # noqa: E402


def patches(folder: str, count: int, seed: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` HR crops of ``size`` (from the photos in ``folder``, else smooth noise) and their x4 LR (area)."""
    rng = np.random.default_rng(seed)
    files = sorted(glob.glob(os.path.join(folder, '*.png')) + glob.glob(os.path.join(folder, '*.bmp')))
    hrs = []
    for _ in range(count):
        if files:
            img = cv2.imread(files[rng.integers(len(files))], cv2.IMREAD_COLOR)
            y, x = rng.integers(img.shape[0] - size), rng.integers(img.shape[1] - size)
            hrs.append(img[y:y + size, x:x + size])
        else:
            hrs.append(cv2.GaussianBlur((rng.random((size, size, 3)) * 255).astype(np.uint8), (5, 5), 1.5))
    lrs = [cv2.resize(hr, (size // 4, size // 4), interpolation=cv2.INTER_AREA) for hr in hrs]

    def tensor(imgs):
        return torch.from_numpy(np.stack(imgs)[..., ::-1].copy()).permute(0, 3, 1, 2).float() / 255
    return tensor(lrs), tensor(hrs)


def options(model_type: str, accumulate: int, folder: str, patch: int) -> dict:
    opt = {
        'name': 'accumulation', 'model_type': model_type, 'scale': 4, 'num_gpu': 0, 'dist': False, 'rank': 0,
        'world_size': 1, 'is_train': True,
        'network_g': {'type': 'ESRGANRRDBNet', 'num_in_ch': 3, 'num_out_ch': 3, 'scale': 4, 'num_feat': 16,
                      'num_block': 2, 'num_grow_ch': 8},
        'network_d': {'type': 'ESRGANVGGDiscriminator', 'num_in_ch': 3, 'num_feat': 8, 'input_size': patch},
        'path': {'models': folder, 'training_states': folder, 'visualization': folder, 'resume_state': None},
        'train': {
            'accumulate': accumulate, 'ema_decay': 0,
            'optim_g': {'type': 'Adam', 'lr': 1e-4, 'betas': [0.9, 0.99]},
            'optim_d': {'type': 'Adam', 'lr': 1e-4, 'betas': [0.9, 0.99]},
            'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1e-2, 'reduction': 'mean'},
            'perceptual_opt': {'type': 'ESRGANPerceptualLoss', 'layer': 'conv2_2', 'vgg_weights': 'random'},
            'gan_opt': {'type': 'ESRGANRaGANLoss', 'loss_weight': 5e-3},
        },
    }
    if model_type == 'ESRGANPSNRModel':
        opt.pop('network_d')
        for key in ('optim_d', 'perceptual_opt', 'gan_opt'):
            opt['train'].pop(key)
        opt['train']['pixel_opt']['loss_weight'] = 1.0
    return opt


def weights(model) -> dict:
    nets = {'G': model.net_g, **({'D': model.net_d} if hasattr(model, 'net_d') else {})}
    return {name: torch.cat([p.detach().flatten() for p in net.parameters()]) for name, net in nets.items()}


def run(model_type: str, accumulate: int, batches: list, folder: str, patch: int) -> tuple[dict, dict, dict]:
    """The weights at the start and after the last step, and the summed gradients the first step applied."""
    torch.manual_seed(0)
    model = build_model(options(model_type, accumulate, folder, patch))
    start, first_gradients = weights(model), {}
    nets = {'G': (model.net_g, model.optimizer_g), **({'D': (model.net_d, model.optimizer_d)}
                                                      if hasattr(model, 'net_d') else {})}
    for name, (net, optimizer) in nets.items():
        def step(*args, name=name, net=net, original=optimizer.step, **kwargs):
            if name not in first_gradients:
                first_gradients[name] = torch.cat([p.grad.flatten() for p in net.parameters()])
            return original(*args, **kwargs)
        optimizer.step = step
    for it, (lq, gt) in enumerate(batches, start=1):
        model.feed_data({'lq': lq, 'gt': gt})
        model.optimize_parameters(it)
    return start, weights(model), first_gradients


def main(args: argparse.Namespace) -> None:
    import logging
    logging.getLogger('basicsr').setLevel(logging.ERROR)
    folder = tempfile.mkdtemp()
    source = args.images if glob.glob(os.path.join(args.images, '*.*')) else 'random smooth images'
    print(f'{args.steps} steps of Adam (lr 1e-4), batch {args.batch}, HR {args.patch}x{args.patch} patches from '
          f'{source}; '
          f'torch {torch.__version__}, {torch.backends.cpu.get_cpu_capability()}')
    print('| model | micro-batches | N | first step, G: ‖g_N − g_1‖ / ‖g_1‖ | D: same | '
          f'after {args.steps} steps, G: ‖w_N − w_1‖ / ‖w_1 − w_0‖ | D: same |')
    print('|---|---|---|---|---|---|---|')
    for model_type in ('ESRGANPSNRModel', 'ESRGANRaGANModel'):
        for kind in ('distinct', 'identical'):
            batches = []
            for step in range(args.steps):
                copies = max(args.accumulate) if kind == 'identical' else 1
                lq, gt = patches(args.images, args.batch // copies, step, args.patch)
                batches.append((lq.repeat(copies, 1, 1, 1), gt.repeat(copies, 1, 1, 1)))
            start, reference, reference_gradients = run(model_type, 1, batches, folder, args.patch)
            for n in args.accumulate:
                _, split, gradients = run(model_type, n, batches, folder, args.patch)
                cells = [f'{((gradients[k] - reference_gradients[k]).norm() / reference_gradients[k].norm()):.2e}'
                         if k in reference else '—' for k in ('G', 'D')]
                cells += [f'{((split[k] - reference[k]).norm() / (reference[k] - start[k]).norm()).item():.2e}'
                          if k in reference else '—' for k in ('G', 'D')]
                print(f'| {model_type} | {kind} | {n} | {" | ".join(cells)} |', flush=True)


if __name__ == '__main__':
    main(ARGS)
