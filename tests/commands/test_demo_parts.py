"""The demo's parts: the progress line and a failed stage (its figure and direction ratio are tested in
tests/metrics/test_comparison.py). The demo itself, shortened, runs end to end in tests/integration/test_demo.py."""
import pytest

from conftest import subprocess_env
from esrgan_plugin.demo import ITER_LINE, progress_losses, train
from esrgan_plugin.errors import UserFacingError


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
