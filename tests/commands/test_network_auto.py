"""The test command reads the generator's architecture from the checkpoint, like infer and export."""
import os

import cv2
import numpy as np
import pytest
import torch
import yaml

from conftest import run_command, tiny_generator
from esrgan_plugin import test as evaluation_command
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


@pytest.fixture
def run_test(case, monkeypatch, capsys):
    """The test command on the option dict under ``name``, in the case's folder."""
    root = case[0]
    monkeypatch.chdir(root)

    def run(opt: dict, name: str):
        (root / f'{name}.yml').write_text(yaml.safe_dump(dict(opt, name=name)))
        return run_command(capsys, evaluation_command.main, '-opt', f'{name}.yml')
    return run


def outputs(root, name: str) -> dict:
    folder = root / 'results' / name / 'visualization' / 'pairs'
    return {n: cv2.imread(str(folder / n)) for n in sorted(os.listdir(folder))}


def test_no_network_g_gives_the_outputs_of_the_right_network_g(case, run_test):
    root, net, opt = case
    inferred = run_test(opt, 'inferred')
    assert inferred.code == 0, inferred.err[-3000:]
    assert 'network_g read from net.pth: ESRGANRRDBNet(num_in_ch=3, num_out_ch=3, scale=4, num_feat=8, ' \
           'num_block=2, num_grow_ch=4)' in inferred.out
    stated = run_test({**opt, 'network_g': {'type': 'ESRGANRRDBNet', **ARCH}}, 'stated')
    assert stated.code == 0, stated.err[-3000:]
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


def test_network_printout_goes_to_the_log_file_only(case, run_test):
    root, _, opt = case
    result = run_test(opt, 'quiet')
    assert result.code == 0, result.err[-3000:]
    console = result.out + result.err
    assert 'Network: ESRGANRRDBNet, with parameters:' in console
    assert 'ResidualDenseBlock(' not in console
    log = next((root / 'results' / 'quiet').glob('test_quiet_*.log')).read_text()
    assert 'Network: ESRGANRRDBNet, with parameters:' in log and log.count('ResidualDenseBlock(') == 6


def test_disagreeing_network_g_is_refused_before_any_folder(case, run_test):
    root, _, opt = case
    result = run_test({**opt, 'network_g': {'type': 'ESRGANRRDBNet', 'num_feat': 8, 'num_block': 2}},
                      'wrong')  # num_grow_ch falls back to the paper's 32; the file has 4
    assert result.code == 1
    assert result.err.count('\n') == 1 and result.err.startswith(
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
