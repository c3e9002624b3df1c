"""The demo's side-by-side figure and the direction ratio that shows streaks (metrics/comparison.py)."""
import numpy as np
import pytest

from esrgan_plugin.metrics.comparison import comparison_figure, direction_ratio
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
