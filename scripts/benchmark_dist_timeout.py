"""Print what ``dist_params.timeout`` costs per training step: the stop agreement's all-reduce, in microseconds.

    python scripts/benchmark_dist_timeout.py                  # 2 processes, gloo on the CPU, 20 rounds of 500 calls

Two processes on this machine share one gloo process group with the plugin's timeout (600 s) and a second group
with torch's own default for gloo (30 min). Each round times, in turn: the bare all-reduce of one number on the
group with torch's default, the same on the group with the plugin's timeout, and the loop's call as training makes
it after every step (``StopSignals.agreed_stop`` inside ``distributed.collective``). The timeout is a property of
the process group, set once when it starts, so the three should differ by noise only. A benchmark, not a test.
"""
import argparse
import os
import socket
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _worker(rank: int, port: int, rounds: int, calls: int) -> None:
    import datetime

    import torch
    import torch.distributed as dist

    from esrgan_plugin.choices import DIST_TIMEOUT_S
    from esrgan_plugin.training import distributed
    from esrgan_plugin.training.stop_signals import StopSignals

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=2, timeout=datetime.timedelta(seconds=DIST_TIMEOUT_S))
    torch_default = dist.new_group(backend='gloo', timeout=datetime.timedelta(minutes=30))
    opt = {'dist': True, 'rank': rank, 'dist_params': {'timeout': DIST_TIMEOUT_S}}
    signals = StopSignals()
    flag = torch.zeros(1, dtype=torch.int64)
    device = torch.device('cpu')

    def bare_default():
        dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=torch_default)

    def bare_plugin():
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)

    def as_the_loop_calls_it():
        with distributed.collective(opt, 'agreeing whether to stop after this step'):
            signals.agreed_stop(True, device)

    ways = {'all_reduce, torch default timeout (30 min)': bare_default,
            f'all_reduce, dist_params.timeout {DIST_TIMEOUT_S} s': bare_plugin,
            'agreed_stop in collective() (the loop, per step)': as_the_loop_calls_it}
    times = {name: [] for name in ways}
    for _ in range(rounds):
        for name, way in ways.items():
            dist.barrier()
            start = time.perf_counter()
            for _ in range(calls):
                way()
            times[name].append((time.perf_counter() - start) / calls * 1e6)
    if rank == 0:
        print(f'{rounds} rounds of {calls} calls, 2 processes, gloo on 127.0.0.1; microseconds per call '
              '(median [min-max] of the rounds):')
        for name, values in times.items():
            print(f'  {name:<52} {statistics.median(values):7.1f} [{min(values):.1f}-{max(values):.1f}]')
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rounds', type=int, default=20)
    parser.add_argument('--calls', type=int, default=500, help='calls per round and way')
    args = parser.parse_args()

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    mp.spawn(_worker, args=(port, args.rounds, args.calls), nprocs=2)


if __name__ == '__main__':
    main()
