"""Each basicsr 1.4.2 adaptation in esrgan_plugin.compat, shown to be needed and to work."""
import subprocess
import textwrap

import pytest
import torch

from conftest import PYTHON, free_port, subprocess_env


def _run(code: str, **env_overrides) -> subprocess.CompletedProcess:
    env = {**subprocess_env(), **env_overrides}
    return subprocess.run([PYTHON, '-c', textwrap.dedent(code)], capture_output=True, text=True, env=env, timeout=120)


def test_basicsr_imports_after_the_plugin():
    result = _run('''
        import esrgan_plugin
        import basicsr
        from basicsr.data.degradations import rgb_to_grayscale
        import torch
        assert rgb_to_grayscale(torch.rand(3, 4, 4)).shape == (1, 4, 4)
        print('ok')
    ''')
    assert result.returncode == 0, result.stderr
    assert 'ok' in result.stdout


@pytest.mark.parametrize('version, ships_it', [('0.16.2', True), ('0.17.0', False), ('0.29.1+cu130', False),
                                               ('1.0.0', False)])
def test_the_alias_is_left_out_where_torchvision_still_ships_the_module(monkeypatch, version, ships_it):
    """torchvision before 0.17 has functional_tensor itself; the version is read without importing torchvision."""
    import importlib.metadata

    from esrgan_plugin import compat
    monkeypatch.setattr(importlib.metadata, 'version', lambda name: version)
    assert compat._torchvision_has_functional_tensor() is ships_it


def test_basicsr_alone_needs_the_alias():
    """Documents why the alias exists: this torchvision dropped functional_tensor."""
    if _run('import torchvision.transforms.functional_tensor').returncode == 0:
        pytest.skip('this torchvision still ships functional_tensor')
    result = _run('import basicsr')
    assert result.returncode != 0 and 'functional_tensor' in result.stderr


def test_basicsr_imports_without_distutils():
    """Python 3.12 has no distutils; basicsr's arch_util imports LooseVersion from it."""
    result = _run('''
        import sys
        class BlockDistutils:
            def find_spec(self, name, path=None, target=None):
                if name == 'distutils' or name.startswith('distutils.') or name == '_distutils_hack':
                    raise ImportError('distutils is gone, as on Python 3.12')
        sys.modules.pop('distutils', None)
        sys.meta_path.insert(0, BlockDistutils())
        import esrgan_plugin
        import basicsr.archs.arch_util as au
        assert au.LooseVersion('0.29.2') >= au.LooseVersion('0.9.0')
        assert not (au.LooseVersion('0.8.1') >= au.LooseVersion('0.9.0'))
        print('ok')
    ''')
    assert result.returncode == 0, result.stderr


def test_resume_state_loads_without_cuda(tmp_path):
    import basicsr.train
    from esrgan_plugin import compat

    assert basicsr.train.load_resume_state is compat.load_resume_state
    states = tmp_path / 'experiments' / 'exp' / 'training_states'
    states.mkdir(parents=True)
    param = torch.nn.Parameter(torch.zeros(2))
    opt_ = torch.optim.Adam([param])
    param.grad = torch.ones(2)
    opt_.step()
    for it in (5, 10):
        torch.save({'epoch': 0, 'iter': it, 'optimizers': [opt_.state_dict()], 'schedulers': []},
                   states / f'{it}.state')
    opt = {'auto_resume': True, 'root_path': str(tmp_path), 'name': 'exp',
           'path': {'resume_state': None, 'models': str(tmp_path / 'models')}}
    state = basicsr.train.load_resume_state(opt)
    assert state['iter'] == 10
    assert opt['path']['resume_state'].endswith('10.state')
    assert state['optimizers'][0]['state'][0]['exp_avg'].device.type == 'cpu'

    newest = states / '10.state'  # truncated, as by a full disk: the state before it is used
    newest.write_bytes(newest.read_bytes()[:100])
    opt['path']['resume_state'] = None
    assert basicsr.train.load_resume_state(opt)['iter'] == 5
    assert opt['path']['resume_state'].endswith('5.state')


@pytest.mark.skipif(torch.cuda.is_available(), reason="shows the CPU failure of basicsr's own function")
def test_basicsrs_resume_fails_without_cuda(tmp_path):
    """Why the replacement exists: basicsr's own function needs CUDA."""
    from esrgan_plugin import compat
    torch.save({'iter': 1}, tmp_path / '1.state')
    with pytest.raises((RuntimeError, AssertionError)):
        compat.REPLACED['load_resume_state']({'auto_resume': False, 'path': {'resume_state': str(tmp_path / '1.state')}})


def test_init_dist_uses_gloo_on_cpu():
    result = _run('''
        import esrgan_plugin, torch
        esrgan_plugin.register()
        import basicsr.utils.options as o
        import torch.distributed as dist
        o.init_dist('pytorch')
        print('backend', dist.get_backend(), dist.get_rank(), dist.get_world_size())
        dist.destroy_process_group()
    ''', RANK='0', LOCAL_RANK='0', WORLD_SIZE='1', MASTER_ADDR='127.0.0.1', MASTER_PORT=str(free_port()),
                  CUDA_VISIBLE_DEVICES='')
    assert result.returncode == 0, result.stderr
    assert 'backend gloo 0 1' in result.stdout


def test_basicsrs_init_dist_fails_on_cpu():
    """Why the replacement exists: basicsr's own init_dist needs CUDA."""
    result = _run('''
        import esrgan_plugin
        from basicsr.utils.dist_util import init_dist
        init_dist('pytorch')
    ''', RANK='0', LOCAL_RANK='0', WORLD_SIZE='1', MASTER_ADDR='127.0.0.1', MASTER_PORT=str(free_port()),
                  CUDA_VISIBLE_DEVICES='')
    assert result.returncode != 0


def test_basicsr_reads_the_file_and_overrides_with_yaml12_floats(tmp_path, monkeypatch):
    """basicsr re-reads the option file itself: ``lr: 2e-4`` must reach it as the float the check accepted."""
    import sys

    import yaml
    from basicsr.utils.options import parse_options

    from esrgan_plugin.compat import REPLACED
    path = tmp_path / 'o.yml'
    path.write_text('name: x\nnum_gpu: 0\ndatasets: {}\npath: {}\n'
                    'train:\n  optim_g: {lr: 2e-4}\n  optim_d: {lr: 1e-4}\n  warmup_iter: 0\n')
    # basicsr's own reading: YAML 1.1, and its override parser keeps '3e-4' and '-1' as text
    with open(path) as f:
        assert yaml.load(f, Loader=REPLACED['ordered_yaml']()[0])['train']['optim_g']['lr'] == '2e-4'
    assert REPLACED['_postprocess_yml_value']('3e-4') == '3e-4' and REPLACED['_postprocess_yml_value']('-1') == '-1'

    monkeypatch.setattr(sys, 'argv', ['x', '-opt', str(path), '--force_yml', 'train:optim_d:lr=3e-4',
                                      'train:warmup_iter=-1'])
    parsed, _ = parse_options(str(tmp_path), is_train=False)
    assert parsed['train']['optim_g']['lr'] == 2e-4 and parsed['train']['optim_d']['lr'] == 3e-4
    assert parsed['train']['warmup_iter'] == -1
