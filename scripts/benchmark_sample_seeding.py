"""Print the cost of seeding every training sample (``esrgan_plugin.training.train_data``), in microseconds per sample.

    python scripts/benchmark_sample_seeding.py                 # synthetic 480x480 sub-images, 128 crops
    python scripts/benchmark_sample_seeding.py --gt data/gt.lmdb --lq data/lq_x4.lmdb

Three ways of drawing the same samples, interleaved in one process: the dataset alone; as a DataLoader worker
draws them (seed the generators, then draw); as the training process draws them without workers (save its own
generator states, seed, draw, restore). A benchmark, not a test.
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _synthetic_lmdbs(folder: str, count: int = 8, size: int = 480, scale: int = 4) -> tuple:
    import cv2
    import numpy as np
    from basicsr.utils.lmdb_util import make_lmdb_from_imgs

    rng = np.random.default_rng(0)
    names = [f'{i:04d}' for i in range(count)]
    for kind, side in (('gt', size), ('lq', size // scale)):
        os.makedirs(os.path.join(folder, kind))
        for name in names:
            img = cv2.GaussianBlur((rng.random((size, size, 3)) * 255).astype(np.uint8), (5, 5), 1.5)
            cv2.imwrite(os.path.join(folder, kind, f'{name}.png'), cv2.resize(img, (side, side)))
        make_lmdb_from_imgs(os.path.join(folder, kind), os.path.join(folder, f'{kind}.lmdb'),
                            [f'{n}.png' for n in names], names, map_size=1 << 28)
    return os.path.join(folder, 'gt.lmdb'), os.path.join(folder, 'lq.lmdb')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--gt', help='GT LMDB (default: synthetic data in a temporary folder)')
    parser.add_argument('--lq', help='LQ LMDB')
    parser.add_argument('--gt-size', type=int, default=128)
    parser.add_argument('--rounds', type=int, default=20)
    args = parser.parse_args()

    import esrgan_plugin
    esrgan_plugin.register()  # basicsr adaptations and the plugin's classes
    from esrgan_plugin.data.div2k_dataset import DIV2KPairedDataset
    from esrgan_plugin.training.train_data import _seeded, sample_seed

    with tempfile.TemporaryDirectory() as tmp:
        gt, lq = (args.gt, args.lq) if args.gt else _synthetic_lmdbs(tmp)
        dataset = DIV2KPairedDataset({'name': 'bench', 'type': 'DIV2KPairedDataset', 'dataroot_gt': gt,
                                      'dataroot_lq': lq, 'io_backend': {'type': 'lmdb'}, 'gt_size': args.gt_size,
                                      'use_hflip': True, 'use_rot': True, 'phase': 'train', 'scale': 4})
        n = min(len(dataset), 64)

        def draw(restore):
            for i in range(n):
                if restore is None:
                    dataset[i]
                else:
                    with _seeded(sample_seed(0, 1, 0, i), restore):
                        dataset[i]

        times = {None: [], False: [], True: []}
        for _ in range(args.rounds):
            for mode in times:
                start = time.perf_counter()
                draw(mode)
                times[mode].append((time.perf_counter() - start) / n * 1e6)
    plain = statistics.median(times[None])
    print(f'dataset alone:                     {plain:8.0f} us/sample')
    print(f'seeded, in a worker:               {statistics.median(times[False]):8.0f} us/sample')
    print(f'seeded, in the training process:   {statistics.median(times[True]):8.0f} us/sample')


if __name__ == '__main__':
    main()
