"""Peak memory and time of one training step with train.accumulate: N micro-batches against one batch.

Each setting runs in a fresh process (the peak RSS of a process only grows), on the CPU or on CUDA
(``torch.cuda.max_memory_allocated``). The generator is the paper's (23 blocks, 64 features) unless
``--num-block`` says otherwise; the PSNR stage (L1), so the figures are the generator's.

    python scripts/benchmark_accumulation_memory.py                       # batch 4, N = 1, 2, 4, CPU
    python scripts/benchmark_accumulation_memory.py --device cuda --batch 16 --accumulate 1 2 4 8
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--batch', type=int, default=4, help='batch of a step (batch_size_per_gpu)')
    parser.add_argument('--accumulate', type=int, nargs='+', default=[1, 2, 4], help='micro-batches per step')
    parser.add_argument('--patch', type=int, default=128, help='HR patch size (gt_size)')
    parser.add_argument('--num-block', type=int, default=23, help='RRDB blocks of the generator')
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    parser.add_argument('--one', type=int, help=argparse.SUPPRESS)  # the child: measure this N, print JSON
    return parser


if __name__ == '__main__':
    ARGS = build_parser().parse_args()  # -h and usage errors are answered here, before torch is imported


def measure(args: argparse.Namespace) -> dict:
    """One warm-up step, then the peak of one more step (in this process)."""
    import resource
    import tempfile
    import time

    import torch

    import esrgan_plugin
    esrgan_plugin.register()  # basicsr adaptations and the plugin's classes
    from basicsr.models import build_model

    folder = tempfile.mkdtemp()
    cuda = args.device == 'cuda'
    opt = {'name': 'memory', 'model_type': 'ESRGANPSNRModel', 'scale': 4, 'num_gpu': int(cuda), 'dist': False,
           'rank': 0, 'world_size': 1, 'is_train': True,
           'network_g': {'type': 'ESRGANRRDBNet', 'num_in_ch': 3, 'num_out_ch': 3, 'scale': 4,
                         'num_block': args.num_block},
           'path': {'models': folder, 'training_states': folder, 'visualization': folder, 'resume_state': None},
           'train': {'accumulate': args.one, 'ema_decay': 0.999,
                     'optim_g': {'type': 'Adam', 'lr': 2e-4, 'betas': [0.9, 0.99]},
                     'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'}}}
    model = build_model(opt)
    batch = {'lq': torch.rand(args.batch, 3, args.patch // 4, args.patch // 4),
             'gt': torch.rand(args.batch, 3, args.patch, args.patch)}
    model.feed_data(batch)
    model.optimize_parameters(1)  # optimizer state allocated
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated() / 2**20
    start = time.perf_counter()
    model.feed_data(batch)
    model.optimize_parameters(2)
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    result = {'seconds': seconds, 'peak_rss_mib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
              'rss_after_warmup_mib': before}
    if cuda:
        result.update(peak_cuda_mib=torch.cuda.max_memory_allocated() / 2**20, cuda_before_mib=base)
    return result


def main(args: argparse.Namespace) -> None:
    if args.one is not None:
        print(json.dumps(measure(args)))
        return
    import platform
    print(f'PSNR step, generator {args.num_block} blocks x 64 features, batch {args.batch}, HR {args.patch}x'
          f'{args.patch}, {args.device}; {platform.processor() or platform.machine()}')
    key = 'peak_cuda_mib' if args.device == 'cuda' else 'peak_rss_mib'
    print(f'| accumulate | micro-batch | {key} | seconds per step |')
    print('|---|---|---|---|')
    for n in args.accumulate:
        if args.batch % n:
            print(f'| {n} | — | batch {args.batch} is not divisible by {n} | |')
            continue
        child = subprocess.run([sys.executable, __file__, *sys.argv[1:], '--one', str(n)], capture_output=True,
                               text=True)
        if child.returncode:
            print(f'| {n} | {args.batch // n} | failed: {child.stderr.strip().splitlines()[-1]} | |')
            continue
        result = json.loads(child.stdout.strip().splitlines()[-1])
        print(f'| {n} | {args.batch // n} | {result[key]:.0f} | {result["seconds"]:.2f} |', flush=True)


if __name__ == '__main__':
    main(ARGS)
