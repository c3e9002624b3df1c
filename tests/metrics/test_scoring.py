"""Metric directions: NIQE and LPIPS lower-is-better by default, unless the option says otherwise."""
import numpy as np
import pytest

from esrgan_plugin.metrics import scoring as metrics
from esrgan_plugin.errors import UserFacingError

METRIC_OPTS = {
    'psnr': {'type': 'calculate_psnr', 'crop_border': 4, 'test_y_channel': True},
    'niqe': {'type': 'calculate_niqe', 'crop_border': 4},
    'lpips': {'type': 'calculate_lpips', 'net': 'alex'},
    'niqe_as_higher': {'type': 'calculate_niqe', 'crop_border': 4, 'better': 'higher'},
}


def test_directions_default_per_type_and_option_overrides():
    assert metrics.directions(METRIC_OPTS) == {'psnr': 'higher', 'niqe': 'lower', 'lpips': 'lower',
                                               'niqe_as_higher': 'higher'}
    with pytest.raises(UserFacingError, match="better: 'smaller' is not valid"):
        metrics.better({'type': 'calculate_psnr', 'better': 'smaller'})


def test_evaluate_passes_options_to_basicsr_and_describes_direction():
    from basicsr.metrics import calculate_psnr

    rng = np.random.default_rng(0)
    sr, gt = (rng.integers(0, 256, (24, 24, 3), dtype=np.uint8) for _ in range(2))
    values = metrics.evaluate(sr, gt, {'psnr': {**METRIC_OPTS['psnr'], 'better': 'higher'}})
    assert values == {'psnr': calculate_psnr(sr, gt, crop_border=4, test_y_channel=True)}
    assert metrics.describe({'psnr': 24.0, 'niqe': 4.73}, {'psnr': 'higher', 'niqe': 'lower'}) == \
        'psnr 24.0000 (higher is better), niqe 4.7300 (lower is better)'


def test_niqe_of_a_flat_image_is_nan_not_a_crash():
    flat = np.full((200, 200, 3), 128, dtype=np.uint8)
    assert np.isnan(metrics.evaluate(flat, None, {'niqe': METRIC_OPTS['niqe']})['niqe'])


def test_summary_table_lists_means_and_directions():
    table = metrics.summary_table([('Set14', {'psnr': 24.1234, 'niqe': 4.73}), ('Set5', {'psnr': 28.5})],
                                  {'psnr': 'higher', 'niqe': 'lower'}).splitlines()
    assert table[0].split() == ['dataset', 'psnr', 'niqe']
    assert table[1].split() == ['better:', 'higher', 'lower']
    assert table[2].split() == ['Set14', '24.1234', '4.7300']
    assert table[3].split() == ['Set5', '28.5000', '-']


def test_niqe_is_on_in_test_options_and_gan_stage_validation():
    import os

    import yaml

    from conftest import REPO_ROOT
    for name in ('test_set14.yml', 'test_set5.yml', 'train_ESRGAN_x4.yml'):
        with open(os.path.join(REPO_ROOT, 'options', name), encoding='utf-8') as f:
            niqe = yaml.safe_load(f)['val']['metrics']['niqe']
        assert niqe['type'] == 'calculate_niqe' and niqe['crop_border'] == 4 and metrics.better(niqe) == 'lower'
