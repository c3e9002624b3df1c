import subprocess

import pytest

from conftest import PYTHON, subprocess_env


@pytest.mark.parametrize('module', ['esrgan_plugin.train', 'esrgan_plugin.test'])
def test_help(module):
    result = subprocess.run([PYTHON, '-m', module, '-h'], capture_output=True, text=True, env=subprocess_env(),
                            timeout=120)
    assert result.returncode == 0
    assert '-opt' in result.stdout and '--launcher' in result.stdout


@pytest.mark.parametrize('module', ['esrgan_plugin.train', 'esrgan_plugin.test'])
def test_missing_option_file_is_one_clear_error(tmp_path, module):
    result = subprocess.run([PYTHON, '-m', module, '-opt', str(tmp_path / 'nope.yml')], capture_output=True,
                            text=True, env=subprocess_env(), timeout=120, cwd=tmp_path)
    assert result.returncode == 2
    assert 'does not exist' in result.stderr
    assert 'Traceback' not in result.stderr
    assert not (tmp_path / 'experiments').exists() and not (tmp_path / 'results').exists()


def test_invalid_yaml_is_one_clear_error(tmp_path):
    bad = tmp_path / 'bad.yml'
    bad.write_text('name: [unclosed\n')
    result = subprocess.run([PYTHON, '-m', 'esrgan_plugin.train', '-opt', str(bad)], capture_output=True, text=True,
                            env=subprocess_env(), timeout=120, cwd=tmp_path)
    assert result.returncode == 2 and 'not valid YAML' in result.stderr


@pytest.mark.parametrize('module', ['esrgan_plugin.train', 'esrgan_plugin.test'])
@pytest.mark.parametrize('broken', ['dataroot', 'pretrained'])
def test_missing_data_or_checkpoint_stops_before_anything_is_written(tmp_path, module, broken):
    import yaml
    (tmp_path / 'gt').mkdir()
    opt = {'name': 'x', 'model_type': 'ESRGANPSNRModel', 'num_gpu': 0,
           'datasets': {'val': {'name': 'v', 'type': 'DIV2KPairedDataset', 'dataroot_gt': 'gt',
                                'dataroot_lq': 'lq_missing' if broken == 'dataroot' else 'gt'}},
           'path': {'pretrain_network_g': 'weights/missing.pth' if broken == 'pretrained' else None}}
    (tmp_path / 'o.yml').write_text(yaml.safe_dump(opt))
    result = subprocess.run([PYTHON, '-m', module, '-opt', 'o.yml'], capture_output=True, text=True,
                            env=subprocess_env(), timeout=120, cwd=tmp_path)
    assert result.returncode == 2
    expected = 'datasets.val.dataroot_lq lq_missing' if broken == 'dataroot' else 'path.pretrain_network_g'
    assert expected in result.stderr and 'does not exist' in result.stderr
    assert not (tmp_path / 'experiments').exists() and not (tmp_path / 'results').exists()
