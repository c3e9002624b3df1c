"""The test command reads the generator's architecture from the checkpoint, like infer and export."""
import os
import subprocess

import cv2
import numpy as np
import pytest
import torch
import yaml

from conftest import PYTHON, subprocess_env, tiny_generator
from esrgan_plugin.errors import UserFacingError
from esrgan_plugin.config.network_auto import resolve_network_g
from esrgan_plugin.config.option_file import apply_overrides

# Not the option files' (paper's) architecture: every hyper-parameter differs from the defaults.
ARCH = dict(num_feat=8, num_block=2, num_grow_ch=4, scale=4)


@pytest.fixture(scope='module')
def case(tmp_path_factory):
    root = tmp_path_factory.mktemp('reads_checkpoint')
    rng = np.random.default_rng(0)
    for folder in ('gt', 'lq'):
        (root / folder).mkdir()
    for name in ('a', 'b'):
        gt = cv2.GaussianBlur(rng.integers(0, 256, (32, 40, 3), dtype=np.uint8), (5, 5), 0)
        cv2.imwrite(str(root / 'gt' / f'{name}.png'), gt)
        cv2.imwrite(str(root / 'lq' / f'{name}.png'), cv2.resize(gt, (10, 8), interpolation=cv2.INTER_AREA))
    net = tiny_generator(**ARCH, seed=5)
    torch.save({'params_ema': net.state_dict()}, root / 'net.pth')
    opt = {'name': 'run', 'model_type': 'ESRGANPSNRModel', 'scale': 4, 'num_gpu': 0, 'manual_seed': 0,
           'datasets': {'test_1': {'name': 'pairs', 'type': 'PairedImageDataset', 'dataroot_gt': 'gt',
                                   'dataroot_lq': 'lq', 'filename_tmpl': '{}', 'io_backend': {'type': 'disk'}}},
           'path': {'pretrain_network_g': 'net.pth', 'param_key_g': None},
           'val': {'save_img': True, 'suffix': 'sr'}}
    return root, net, opt


def run_test(root, opt: dict, name: str):
    opt = dict(opt, name=name)
    (root / f'{name}.yml').write_text(yaml.safe_dump(opt))
    return subprocess.run([PYTHON, '-m', 'esrgan_plugin.test', '-opt', f'{name}.yml'], capture_output=True,
                          text=True, env=subprocess_env(), timeout=300, cwd=root)


def outputs(root, name: str) -> dict:
    folder = root / 'results' / name / 'visualization' / 'pairs'
    return {n: cv2.imread(str(folder / n)) for n in sorted(os.listdir(folder))}


def test_no_network_g_gives_the_outputs_of_the_right_network_g(case):
    root, net, opt = case
    inferred = run_test(root, opt, 'inferred')
    assert inferred.returncode == 0, inferred.stderr[-3000:]
    assert 'network_g read from net.pth: ESRGANRRDBNet(num_in_ch=3, num_out_ch=3, scale=4, num_feat=8, ' \
           'num_block=2, num_grow_ch=4)' in inferred.stdout
    stated = run_test(root, {**opt, 'network_g': {'type': 'ESRGANRRDBNet', **ARCH}}, 'stated')
    assert stated.returncode == 0, stated.stderr[-3000:]
    mine, theirs = outputs(root, 'inferred'), outputs(root, 'stated')
    assert sorted(mine) == ['a_sr.png', 'b_sr.png'] == sorted(theirs)
    for name in mine:
        assert np.array_equal(mine[name], theirs[name]), name
    # and both are the net itself, run here on the LR image
    lr = cv2.imread(str(root / 'lq' / 'a.png'))[..., ::-1] / 255.0
    with torch.no_grad():
        sr = net(torch.from_numpy(lr.transpose(2, 0, 1).copy()).float()[None])[0]
    expected = sr.clamp(0, 1).mul(255).round().byte().numpy().transpose(1, 2, 0)[..., ::-1]
    assert np.array_equal(mine['a_sr.png'], expected)


def test_network_printout_goes_to_the_log_file_only(case):
    root, _, opt = case
    result = run_test(root, opt, 'quiet')
    assert result.returncode == 0, result.stderr[-3000:]
    console = result.stdout + result.stderr
    assert 'Network: ESRGANRRDBNet, with parameters:' in console
    assert 'ResidualDenseBlock(' not in console
    log = next((root / 'results' / 'quiet').glob('test_quiet_*.log')).read_text()
    assert 'Network: ESRGANRRDBNet, with parameters:' in log and log.count('ResidualDenseBlock(') == 6


def test_disagreeing_network_g_is_refused_before_any_folder(case):
    root, _, opt = case
    result = run_test(root, {**opt, 'network_g': {'type': 'ESRGANRRDBNet', 'num_feat': 8, 'num_block': 2}},
                      'wrong')  # num_grow_ch falls back to the paper's 32; the file has 4
    assert result.returncode == 1
    assert result.stderr.count('\n') == 1 and result.stderr.startswith(
        'error: wrong.yml: network_g.num_grow_ch is 32 but the checkpoint net.pth has num_grow_ch 4')
    assert not (root / 'results' / 'wrong').exists()
    assert not [p for p in (root / 'results').iterdir() if '_archived_' in p.name]


def test_resolve_network_g_without_a_subprocess(tmp_path):
    torch.save(tiny_generator(**{**ARCH, 'scale': 2}).state_dict(), tmp_path / 'x2.pth')
    opt = {'scale': 2, 'path': {'pretrain_network_g': str(tmp_path / 'x2.pth')}}
    resolved, note = resolve_network_g({**opt, 'network_g': {'type': 'auto'}}, 'o.yml')
    assert resolved['network_g'] == {'type': 'ESRGANRRDBNet', 'num_in_ch': 3, 'num_out_ch': 3, 'scale': 2,
                                     'num_feat': 8, 'num_block': 2, 'num_grow_ch': 4}
    assert 'network_g' not in opt and note.startswith('network_g read from')
    stated = {**opt, 'network_g': {'type': 'ESRGANRRDBNet', **ARCH, 'scale': 2}}
    assert resolve_network_g(stated, 'o.yml') == (stated, None)
    with pytest.raises(UserFacingError, match='scale is 4 but the checkpoint .* is an x2 generator'):
        resolve_network_g({**opt, 'scale': 4}, 'o.yml')
    with pytest.raises(UserFacingError, match='path.pretrain_network_g is not set'):
        resolve_network_g({'path': {}}, 'o.yml')
    # --force_yml entries are applied by the one implementation, on a copy
    assert apply_overrides(opt, ['path:pretrain_network_g=b.pth'])[0] == {
        'scale': 2, 'path': {'pretrain_network_g': 'b.pth'}}
    assert opt['path']['pretrain_network_g'].endswith('x2.pth')
