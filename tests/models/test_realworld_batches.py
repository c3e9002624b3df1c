"""Training pairs made in feed_data: seeded by (manual_seed, iteration, rank) alone, the pool as basicsr's."""
import types

import pytest
import torch
from basicsr.models.realesrnet_model import RealESRNetModel

import esrgan_plugin
from esrgan_plugin.data.realworld_degradation import draw_kernels, seeded
from esrgan_plugin.models.realworld_batches import RealWorldBatches, TrainingPairPool

esrgan_plugin.register()

CPU = torch.device('cpu')


def options(rank=0, queue_size=4, seed=5):
    train_set = {'degradation': 'realworld', 'gt_size': 32, 'crop_pad_size': 96, 'queue_size': queue_size}
    return {'is_train': True, 'scale': 4, 'manual_seed': seed, 'rank': rank, 'dist': False,
            'datasets': {'train': train_set}, 'train': {}, 'path': {}}


def data(n=2, size=96):
    """GT crops and their kernels, as the realworld dataset yields them (collated)."""
    g = torch.Generator().manual_seed(0)
    coarse = torch.rand(n, 3, size // 4, size // 4, generator=g)
    gt = torch.nn.functional.interpolate(coarse, size=(size, size), mode='bilinear').clamp(0, 1)
    batches = RealWorldBatches(options(), CPU)
    with seeded(1, CPU):
        drawn = [draw_kernels(batches.settings) for _ in range(n)]
    return {'gt': gt, **{k: torch.stack([d[k] for d in drawn]) for k in drawn[0]}}


def test_a_batch_depends_on_seed_iteration_and_rank_only():
    batch = data()
    first = RealWorldBatches(options(queue_size=0), CPU)
    a1, a2 = first.pair(batch), first.pair(batch)
    torch.manual_seed(123)  # the global generators do not matter, and are left as they were
    state = torch.get_rng_state()
    second = RealWorldBatches(options(queue_size=0), CPU)
    b1 = second.pair(batch)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a1['lq'], b1['lq']) and torch.equal(a1['gt'], b1['gt'])
    assert not torch.equal(a1['lq'], a2['lq'])  # the next iteration draws anew
    resumed = RealWorldBatches(options(queue_size=0), CPU)
    resumed.load_state({'iter': 1})
    assert torch.equal(resumed.pair(batch)['lq'], a2['lq'])
    other_rank = RealWorldBatches(options(rank=1, queue_size=0), CPU).pair(batch)
    assert not torch.equal(other_rank['lq'], a1['lq'])
    assert a1['lq'].shape == (2, 3, 8, 8) and a1['gt'].shape == (2, 3, 32, 32)


def basicsr_pool(queue_size):
    """basicsr's RealESRNetModel._dequeue_and_enqueue on a bare object (its .cuda() calls kept on the CPU)."""
    model = types.SimpleNamespace(queue_size=queue_size)
    return model, lambda: RealESRNetModel._dequeue_and_enqueue(model)


def test_the_pool_exchanges_batches_as_basicsr_does(monkeypatch):
    monkeypatch.setattr(torch.Tensor, 'cuda', lambda self, *args, **kwargs: self)
    ours = TrainingPairPool(6)
    reference, dequeue_and_enqueue = basicsr_pool(6)
    for step in range(7):
        lq, gt = torch.rand(2, 3, 4, 4), torch.rand(2, 3, 16, 16)
        reference.lq, reference.gt = lq.clone(), gt.clone()
        with seeded(step, CPU):
            dequeue_and_enqueue()
        with seeded(step, CPU):
            got = ours.exchange(lq, gt)
        assert torch.equal(got[0], reference.lq) and torch.equal(got[1], reference.gt), step
        assert torch.equal(ours.lq, reference.queue_lr) and torch.equal(ours.gt, reference.queue_gt)


def test_the_pool_is_saved_and_put_back():
    pool = TrainingPairPool(4)
    assert pool.state_dict() == {'filled': 0}
    for _ in range(3):
        pool.exchange(torch.rand(2, 3, 4, 4), torch.rand(2, 3, 16, 16))
    copy = TrainingPairPool(4)
    copy.load_state_dict(pool.state_dict(), CPU)
    lq, gt = torch.rand(2, 3, 4, 4), torch.rand(2, 3, 16, 16)
    with seeded(0, CPU):
        expected = pool.exchange(lq, gt)
    with seeded(0, CPU):
        got = copy.exchange(lq, gt)
    assert torch.equal(expected[0], got[0]) and torch.equal(expected[1], got[1])
    with pytest.raises(ValueError, match='multiple of the batch'):
        TrainingPairPool(5).exchange(lq, gt)
