"""The real-world degradation's share of a training step, at Real-ESRGAN's settings, on the CPU or CUDA.

Times, each the median of --repeats after one warm-up:
  kernels   draw_kernels for the whole batch (the dataset's work, in DataLoader workers during training);
  degrade   degrade_batch on a batch of crop_pad_size GT regions (the model's work, on the training device);
  step      forward, L1 loss, backward and Adam step of the generator on LR/GT patches of gt_size.
The generator is the paper's (23 blocks, 64 features) unless --num-block says otherwise. A CPU cannot hold the
activations of a batch of 12 such patches in a few GB, so --step-batch (default 2) sets the batch the step is
timed at; the step's time for --batch is scaled from it linearly (on the CPU the time per sample does not
depend on the batch). The share printed is degrade / (degrade + step at --batch).

    python scripts/benchmark_degradation.py                              # batch 12, gt_size 256, region 400
    python scripts/benchmark_degradation.py --device cuda --step-batch 12
"""
from __future__ import annotations

import argparse
import statistics
import time


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--batch', type=int, default=12, help='batch_size_per_gpu (Real-ESRGAN: 12)')
    parser.add_argument('--gt-size', type=int, default=256, help='gt_size (Real-ESRGAN: 256)')
    parser.add_argument('--crop-pad-size', type=int, default=400, help='the region degraded (Real-ESRGAN: 400)')
    parser.add_argument('--step-batch', type=int, default=2, help='batch the training step is timed at')
    parser.add_argument('--num-block', type=int, default=23, help='RRDB blocks of the generator')
    parser.add_argument('--repeats', type=int, default=3, help='timed repetitions of each part')
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    return parser


if __name__ == '__main__':
    ARGS = build_parser().parse_args()  # -h and usage errors are answered here, before torch is imported


def median_time(run, repeats: int, sync) -> tuple[float, float]:
    """Median wall and CPU seconds (this process, all threads) of ``run()`` over ``repeats`` calls, after one
    warm-up call. On a shared machine the CPU time is the steadier of the two."""
    run()
    wall, cpu = [], []
    for _ in range(repeats):
        sync()
        start, start_cpu = time.perf_counter(), time.process_time()
        run()
        sync()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def main(args: argparse.Namespace) -> None:
    import torch

    import esrgan_plugin
    esrgan_plugin.register()  # basicsr adaptations (the degradations import a module current torchvision lacks)
    from esrgan_plugin.archs.rrdbnet_arch import ESRGANRRDBNet
    from esrgan_plugin.data.realworld_degradation import RealWorldSettings, degrade_batch, draw_kernels, seeded

    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)
    settings = RealWorldSettings.from_options({'gt_size': args.gt_size, 'crop_pad_size': args.crop_pad_size})
    gt = torch.rand(args.batch, 3, args.crop_pad_size, args.crop_pad_size, device=device)

    def kernels() -> dict:
        drawn = [draw_kernels(settings) for _ in range(args.batch)]
        return {k: torch.stack([d[k] for d in drawn]) for k in drawn[0]}

    batch_kernels = kernels()
    seeds = iter(range(1000))

    def degrade() -> None:
        with seeded(next(seeds), device):
            degrade_batch(gt, batch_kernels, settings, 4)

    net = ESRGANRRDBNet(num_block=args.num_block).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-4, betas=(0.9, 0.99))
    lq = torch.rand(args.step_batch, 3, args.gt_size // 4, args.gt_size // 4, device=device)
    target = torch.rand(args.step_batch, 3, args.gt_size, args.gt_size, device=device)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.l1_loss(net(lq), target).backward()
        optimizer.step()

    with torch.no_grad():
        t_degrade = median_time(degrade, args.repeats, sync)
    t_kernels = median_time(kernels, args.repeats, lambda: None)
    t_step = tuple(t * args.batch / args.step_batch for t in median_time(step, args.repeats, sync))
    print(f'device {device}, threads {torch.get_num_threads()}, batch {args.batch}, region {args.crop_pad_size}, '
          f'gt_size {args.gt_size}, generator {args.num_block} blocks (step timed at batch {args.step_batch})')
    print('seconds                          wall      CPU')
    for name, (wall, cpu) in (('kernels (dataset, per batch)', t_kernels), ('degrade_batch', t_degrade),
                              (f'training step (batch {args.batch})', t_step)):
        print(f'{name:<30} {wall:8.3f} {cpu:8.3f}')
    shares = [100 * d / (d + s) for d, s in zip(t_degrade, t_step)]
    print(f'degradation share of a step:  {shares[0]:7.1f}% {shares[1]:7.1f}%')


if __name__ == '__main__':
    main(ARGS)
