"""The demo's parts: the comparison figure, the direction ratio, the progress line, a failed stage. The demo itself,
shortened, runs end to end in tests/integration/test_demo.py."""
import numpy as np
import pytest

from conftest import subprocess_env
from esrgan_plugin.demo import ITER_LINE, comparison_figure, direction_ratio, progress_losses, train
from esrgan_plugin.errors import UserFacingError
from esrgan_plugin.metrics.results_page import detailed_region


def test_comparison_rows_have_equal_width_and_zoom_into_detail():
    flat = np.full((120, 160, 3), 128, np.uint8)
    detail = flat.copy()
    detail[40:100, 90:150] = np.random.default_rng(0).integers(0, 256, (60, 60, 3))  # the only texture
    y, x = detailed_region(detail, 48, 1, stride=8, measure='magnitude')[:2]
    inside = max(0, min(y + 48, 100) - max(y, 40)) * max(0, min(x + 48, 150) - max(x, 90))
    assert inside >= 0.75 * 48 * 48, (y, x)
    wide = np.full((80, 200, 3), 50, np.uint8)
    figure = comparison_figure([('tall', {'a': detail, 'b': detail}, detail), ('wide', {'a': wide, 'b': wide}, wide)],
                               width=100, gap=4)
    assert figure.shape[1] == 3 * 100 + 2 * 4
    # no padding: the right-most column of each photo's block carries image content, not a filler
    assert (figure[:, -1] != 255).any() and (figure[:, -1] != 0).any()


def test_direction_ratio_is_vertical_over_horizontal_second_differences():
    y, x = np.mgrid[0:60, 0:80].astype(np.float64)
    # second differences: 2 * 3 along y, 2 * 0.5 along x, exactly, at every pixel
    assert direction_ratio(3 * y ** 2 + 0.5 * x ** 2) == pytest.approx(6.0)
    rng = np.random.default_rng(0)
    noise = rng.normal(128, 20, (300, 300, 3))
    assert direction_ratio(noise) == pytest.approx(1.0, abs=0.02)  # isotropic
    stripes = noise + 40.0 * (np.arange(300) % 2)[:, None, None]  # every other row brighter: horizontal stripes
    assert direction_ratio(stripes) > 1.5
    assert direction_ratio(stripes.transpose(1, 0, 2)) == pytest.approx(1 / direction_ratio(stripes))
    assert direction_ratio(np.full((10, 10), 7, np.uint8)) == 1.0


def test_progress_losses_read_from_basicsrs_log_lines():
    psnr = ('2026-12-04 20:09:42,416 INFO: [demo_..][epoch:  0, iter:   1,200, lr:(1.000e-03,)] [eta: 0:17:54, '
            'time (data): 1.044 (0.004)] l_pix: 3.0760e-02 ')
    assert ITER_LINE.search(psnr).group(1) == '1,200' and progress_losses(psnr) == {'l_pix': '0.0308'}
    gan = ('[demo_..][epoch:  0, iter:     150, lr:(1.000e-04,)] [eta: 0:00:00, time (data): 0.684 (0.003)] '
           'l_g_pix: 4.0e-04 l_g_percep: 4.0e-02 l_g_gan: 3.0e-02 l_d_real: 1.0e-03 l_d_fake: 2.0e-03 '
           'out_d_real: 1.4738e+00 out_d_fake: -5.0559e+00 ')
    assert progress_losses(gan) == {'l_g': '0.0704', 'l_d': '0.003'}


def test_a_failed_stage_shows_its_last_lines_and_one_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv('PYTHONPATH', subprocess_env()['PYTHONPATH'])  # the stage runs this checkout
    bad = {'name': 'broken_stage', 'model_type': 'ESRGANPSNRModel', 'scale': 4, 'datasets': {},
           'train': {'total_iter': 10}}
    with pytest.raises(UserFacingError, match=r'^training stage broken_stage failed \(exit code 2\)$'):
        train(bad, str(tmp_path))
    err = capsys.readouterr().err
    assert '--- last ' in err and 'nothing was run or written' in err  # the train command's own last line
