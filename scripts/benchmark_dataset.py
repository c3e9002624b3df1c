"""Print samples/s of DIV2KPairedDataset against basicsr's PairedImageDataset on the same LMDBs.

    python scripts/benchmark_dataset.py --hr ../shared/data/train/BSD200 --crop 240 --step 120
    python scripts/benchmark_dataset.py --gt data/gt.lmdb --lq data/lq_x4.lmdb

With ``--hr`` it first builds PNG and raw LMDBs into a temporary folder with
prepare_data (removed afterwards); with ``--gt``/``--lq`` it reads existing
LMDBs. Each configuration runs through a DataLoader (training phase: random
crop, flips, rotation) for each worker count. A benchmark, not a test.
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _rate(opt: dict, workers: int, batches: int, batch_size: int) -> float:
    import torch
    from basicsr.data import build_dataset

    dataset = build_dataset(dict(opt, io_backend=dict(opt['io_backend'])))
    sampler = torch.utils.data.RandomSampler(dataset, replacement=True, num_samples=batches * batch_size * 2)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
                                         persistent_workers=False)
    it = iter(loader)
    for _ in range(max(2, workers * 2)):  # warm-up: worker start, first LMDB open, page cache
        next(it)
    start, count = time.perf_counter(), 0
    for _ in range(batches):
        count += next(it)['gt'].shape[0]
    rate = count / (time.perf_counter() - start)
    del it, loader, dataset  # LMDB allows one open environment per path and process
    import gc
    gc.collect()
    return rate


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='python scripts/benchmark_dataset.py', description=__doc__.split('\n')[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--hr', help='folder of HR images to build temporary LMDBs from')
    parser.add_argument('--gt', help='existing GT LMDB (with --lq)')
    parser.add_argument('--lq', help='existing LQ LMDB (with --gt)')
    parser.add_argument('--scale', type=int, default=4)
    parser.add_argument('--crop', type=int, default=480, help='sub-image size when building from --hr')
    parser.add_argument('--step', type=int, default=240, help='sub-image stride when building from --hr')
    parser.add_argument('--gt-size', type=int, default=128, help='training crop, as in ESRGAN')
    parser.add_argument('--batch-size', type=int, default=16)
    parser.add_argument('--batches', type=int, default=40, help='timed batches per configuration')
    parser.add_argument('--workers', type=int, nargs='+', default=[0, 2], help='DataLoader worker counts')
    args = parser.parse_args(argv)
    if bool(args.hr) == bool(args.gt and args.lq):
        parser.error('pass either --hr FOLDER or both --gt and --lq LMDBs')

    import cv2
    import esrgan_plugin
    esrgan_plugin.register()  # basicsr adaptations and the plugin's classes
    from esrgan_plugin.errors import UserFacingError
    from esrgan_plugin.data.preparation import prepare

    cv2.setNumThreads(1)
    tmp = None
    try:
        sources = {}
        if args.hr:
            tmp = tempfile.mkdtemp(prefix='esrgan_bench_')
            for storage in ('png', 'raw'):
                t0 = time.perf_counter()
                out = prepare(args.hr, os.path.join(tmp, storage), scale=args.scale, crop=args.crop, step=args.step,
                              storage=storage, progress=False)
                print(f'built {storage} LMDBs: {out.num_pairs} pairs in {time.perf_counter() - t0:.1f} s, '
                      f'{_size(out.gt_lmdb) + _size(out.lq_lmdb)} MB')
                sources[storage] = (out.gt_lmdb, out.lq_lmdb)
        else:
            sources['given'] = (args.gt, args.lq)

        print(f'samples/s, gt_size {args.gt_size}, batch {args.batch_size}, {args.batches} batches, '
              f'{os.cpu_count()} CPU cores')
        print(f'{"dataset":<22}{"LMDB":<8}' + ''.join(f'{f"workers={w}":>12}' for w in args.workers))
        for storage, (gt, lq) in sources.items():
            for name in ('PairedImageDataset', 'DIV2KPairedDataset'):
                if storage == 'raw' and name == 'PairedImageDataset':
                    continue  # basicsr cannot decode raw values
                opt = dict(name='bench', type=name, phase='train', scale=args.scale, gt_size=args.gt_size,
                           use_hflip=True, use_rot=True, dataroot_gt=gt, dataroot_lq=lq, io_backend={'type': 'lmdb'})
                rates = [_rate(opt, w, args.batches, args.batch_size) for w in args.workers]
                print(f'{name:<22}{storage:<8}' + ''.join(f'{r:>12.0f}' for r in rates), flush=True)
    except UserFacingError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


def _size(path: str) -> int:
    return round(sum(os.path.getsize(os.path.join(path, n)) for n in os.listdir(path)) / 2**20)


if __name__ == '__main__':
    sys.exit(main())
