"""The results page's choice of crop (the page itself is tested end to end in test_perceptual_evaluation.py)."""
import numpy as np
import pytest

from esrgan_plugin.metrics.results_page import detailed_region


def test_crop_is_the_textured_region_on_the_scale_grid():
    rng = np.random.default_rng(0)
    img = np.full((240, 320, 3), 100, dtype=np.uint8)
    img[130:194, 200:264] = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)  # the only detail
    top, left, size = detailed_region(img, 64, 4)
    assert size == 64 and top % 4 == 0 and left % 4 == 0
    assert abs(top - 130) <= 2 and abs(left - 200) <= 4  # nearest grid position to the patch


def test_crop_size_fits_small_images():
    img = np.zeros((50, 90, 3), dtype=np.uint8)
    img[10:20, 60:70] = 255
    top, left, size = detailed_region(img, 128, 4)
    assert size == 48 and 0 <= top <= 50 - 48 and 0 <= left <= 90 - 48


def test_stride_and_measure_are_parameters_for_other_callers():
    """The demo's figure zooms with a coarser stride and summed gradient length; the page's defaults stay."""
    rng = np.random.default_rng(0)
    img = np.full((64, 160, 3), 100, np.uint8)
    img[16:48, 30:31] = 255  # one strong line: most squared gradient
    img[16:48, 110:142] = 100 + rng.integers(-25, 26, (32, 32, 1))  # faint texture: most summed gradient length
    top, left, size = detailed_region(img, 32, 4)
    assert (size, top) == (32, 16) and left <= 30 < left + size
    top, left, size = detailed_region(img, 32, 4, measure='magnitude')
    assert (size, top, left) == (32, 16, 112)
    top, left, size = detailed_region(img, 30, 1, stride=8, measure='magnitude')
    assert size == 30 and top % 8 == 0 and left % 8 == 0 and left >= 104  # scale 1: the size is kept as asked
    with pytest.raises(ValueError, match='measure'):
        detailed_region(img, 32, 4, measure='sum')
