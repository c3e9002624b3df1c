"""The colour-shift metric: registered, lower is better, and equal to the channel means computed here."""
import cv2
import numpy as np
import pytest

from esrgan_plugin.errors import UserFacingError
from esrgan_plugin.metrics import color_metric, evaluation, scoring


def numpy_color_shift(sr: np.ndarray, gt: np.ndarray, border: int = 0) -> float:
    """The definition, directly: the largest |mean of a channel of sr - mean of that channel of gt|."""
    if border:
        sr, gt = sr[border:-border, border:-border], gt[border:-border, border:-border]
    sr = sr.reshape(sr.shape[0], sr.shape[1], -1).astype(np.float64)
    gt = gt.reshape(gt.shape[0], gt.shape[1], -1).astype(np.float64)
    return max(abs(sr[..., c].mean() - gt[..., c].mean()) for c in range(sr.shape[2]))


def test_registered_under_its_type_and_lower_is_better():
    from basicsr.utils.registry import METRIC_REGISTRY

    assert METRIC_REGISTRY.get('calculate_color_shift') is color_metric.calculate_color_shift
    assert scoring.better({'type': 'calculate_color_shift'}) == 'lower'
    assert scoring.better({'type': 'calculate_color_shift', 'better': 'higher'}) == 'higher'


def test_known_shift_per_channel_in_levels():
    gt = np.full((8, 8, 3), 100, np.uint8)
    sr = gt + np.array([1, 0, 0], np.uint8)
    sr[0, 0, 2] = 100 - 64  # one pixel of the red channel 64 levels down: its mean drops by one level
    assert color_metric.channel_mean_shift(sr, gt) == pytest.approx([1.0, 0.0, -1.0])
    assert color_metric.calculate_color_shift(sr, gt) == pytest.approx(1.0)
    assert color_metric.calculate_color_shift(gt, gt) == 0


@pytest.mark.parametrize('border', [0, 4])
def test_equals_an_independent_computation_on_saved_images(tmp_path, border):
    rng = np.random.default_rng(5)
    gt = rng.integers(0, 256, (40, 36, 3), dtype=np.uint8)
    sr = np.clip(gt.astype(int) + rng.integers(-30, 40, gt.shape), 0, 255).astype(np.uint8)
    assert cv2.imwrite(str(tmp_path / 'sr.png'), sr) and cv2.imwrite(str(tmp_path / 'gt.png'), gt)
    sr, gt = cv2.imread(str(tmp_path / 'sr.png')), cv2.imread(str(tmp_path / 'gt.png'))
    opts = {'color_shift': {'type': 'calculate_color_shift', 'crop_border': border}}
    value = scoring.evaluate(sr, gt, opts)['color_shift']  # through basicsr's calculate_metric, as validation
    assert value == pytest.approx(numpy_color_shift(sr, gt, border), abs=1e-12) and value > 1


def test_gray_and_chw_images():
    rng = np.random.default_rng(6)
    gt = rng.integers(0, 256, (20, 24), dtype=np.uint8)
    sr = np.clip(gt.astype(int) + 3, 0, 255).astype(np.uint8)
    assert color_metric.calculate_color_shift(sr, gt) == pytest.approx(numpy_color_shift(sr, gt))
    rgb_gt = rng.integers(0, 256, (3, 20, 24), dtype=np.uint8)
    rgb_sr = np.clip(rgb_gt.astype(int) - np.array([5, 0, 2])[:, None, None], 0, 255).astype(np.uint8)
    expected = numpy_color_shift(rgb_sr.transpose(1, 2, 0), rgb_gt.transpose(1, 2, 0))
    assert color_metric.calculate_color_shift(rgb_sr, rgb_gt, input_order='CHW') == pytest.approx(expected)


def test_shapes_that_differ_are_one_line():
    with pytest.raises(UserFacingError, match='image shapes differ'):
        color_metric.calculate_color_shift(np.zeros((4, 4, 3)), np.zeros((4, 5, 3)))


def test_the_evaluation_path_scores_it_as_validation_does():
    rng = np.random.default_rng(7)
    lq, gt = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8), rng.integers(0, 256, (24, 20, 3), dtype=np.uint8)
    tinted = evaluation.image_upscaler(lambda img: np.clip(cv2.resize(img, (20, 24)).astype(int) + [0, 0, 9], 0,
                                                           255).astype(np.uint8))
    (result,) = evaluation.evaluate_pairs(tinted, [evaluation.image_pair('x', lq, gt)],
                                          {'color_shift': {'type': 'calculate_color_shift'}})
    assert result.values['color_shift'] == pytest.approx(numpy_color_shift(result.sr, result.gt))
