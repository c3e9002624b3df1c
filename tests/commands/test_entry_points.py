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
    from builders import train_options
    (tmp_path / 'gt').mkdir()
    opt = train_options()  # valid but for the one path below
    for dataset in opt['datasets'].values():
        dataset['dataroot_gt'] = dataset['dataroot_lq'] = 'gt'
        dataset['io_backend'] = {'type': 'disk'}
    opt['datasets']['val']['dataroot_lq'] = 'lq_missing' if broken == 'dataroot' else 'gt'
    opt['path']['pretrain_network_g'] = 'weights/missing.pth' if broken == 'pretrained' else None
    (tmp_path / 'o.yml').write_text(yaml.safe_dump(opt))
    result = subprocess.run([PYTHON, '-m', module, '-opt', 'o.yml'], capture_output=True, text=True,
                            env=subprocess_env(), timeout=120, cwd=tmp_path)
    assert result.returncode == 2
    expected = ('datasets.val.dataroot_lq: lq_missing does not exist' if broken == 'dataroot' else
                'path.pretrain_network_g: weights/missing.pth does not exist')
    assert result.stderr.splitlines()[0].startswith(f'error: o.yml: {expected}'), result.stderr
    assert len(result.stderr.splitlines()) == 2  # the problem and the count
    assert not (tmp_path / 'experiments').exists() and not (tmp_path / 'results').exists()
