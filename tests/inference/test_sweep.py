"""The sweep's arguments and plot axes (the sweep itself runs end to end in test_perceptual_evaluation.py)."""
import pytest

from esrgan_plugin import interpolate
from esrgan_plugin.inference import sweep
from esrgan_plugin.errors import UserFacingError


def test_range_includes_stop_and_rounds():
    assert sweep.parse_range('0:1:0.1') == [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    assert sweep.parse_range('0.2:0.8:0.3') == [0.2, 0.5, 0.8]
    assert sweep.parse_range('0.5:0.5:0.1') == [0.5]
    for bad in ('0:1', 'a:b:c', '0:1:0', '1:0:0.1', '0:2:0.5'):
        with pytest.raises(UserFacingError, match='--sweep'):
            sweep.parse_range(bad)


def test_plot_axes_psnr_against_every_lower_is_better_metric():
    assert sweep.plot_axes({'ssim_y': 'higher', 'psnr_y': 'higher', 'psnr_rgb': 'higher', 'niqe': 'lower',
                            'lpips': 'lower'}) == ('psnr_y', ['niqe', 'lpips'])
    assert sweep.plot_axes({'psnr_y': 'higher'}) == ('psnr_y', [])


def test_command_line_errors(tmp_path, capsys):
    common = ['--psnr', 'a.pth', '--gan', 'b.pth', '-o', str(tmp_path / 'out')]
    with pytest.raises(SystemExit):
        interpolate.main(common + ['--alpha', '0.5', '--sweep', '0:1:0.5'])
    assert 'not allowed with argument' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        interpolate.main(common + ['--sweep', '0:1:0.5', '--eval', str(tmp_path / 'missing.yml')])
    assert 'missing.yml: option file does not exist' in capsys.readouterr().err
    with pytest.raises(UserFacingError, match='--sweep'):
        interpolate.main(common + ['--sweep', '0:1'])
    assert not (tmp_path / 'out').exists()
