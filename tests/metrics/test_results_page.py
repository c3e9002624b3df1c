"""The results page's choice of crop (the page itself is tested end to end in test_perceptual_evaluation.py)."""
import numpy as np

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
