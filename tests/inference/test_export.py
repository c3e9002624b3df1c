"""Export round trips: what is written loads back to a net with identical outputs."""
import sys

import pytest
import torch
from safetensors import safe_open

from conftest import run_command, tiny_generator
from esrgan_plugin import export
from esrgan_plugin.inference import export as inference_export
from esrgan_plugin.archs.checkpoint import load_generator
from layouts import in_layout
from esrgan_plugin.errors import UserFacingError


@pytest.fixture(params=[4, 2])
def source(request, tmp_path):
    net = tiny_generator(scale=request.param, seed=5)
    path = tmp_path / 'source.pth'
    torch.save(in_layout(net.state_dict(), 'xinntao'), path)  # a foreign layout on purpose
    return net, str(path)


def outputs(net):
    x = torch.rand(1, 3, 12, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return net(x)


@pytest.mark.parametrize('ext', ['.pth', '.safetensors'])
def test_round_trip_gives_identical_outputs(tmp_path, source, ext):
    net, path = source
    out = str(tmp_path / f'exported{ext}')
    assert export.main(['-m', path, '-o', out]) == 0
    assert torch.equal(outputs(load_generator(out)), outputs(net))
    if ext == '.pth':
        assert set(torch.load(out, weights_only=True)) == {'params'}


def test_safetensors_metadata_holds_the_architecture(tmp_path, source):
    net, path = source
    out = str(tmp_path / 'g.safetensors')
    export.main(['-m', path, '-o', out])
    with safe_open(out, 'pt') as f:
        meta = f.metadata()
    assert meta['arch'] == 'ESRGANRRDBNet'
    assert (meta['scale'], meta['num_feat'], meta['num_block'], meta['num_grow_ch']) == (
        str(net.scale), '8', '2', '4')


def test_onnx_round_trip(tmp_path, source):
    ort = pytest.importorskip('onnxruntime')
    pytest.importorskip('onnx')
    net, path = source
    out = str(tmp_path / 'g.onnx')
    diff = inference_export.export_onnx(load_generator(path), out)
    assert diff < 1e-5
    # an independent run at yet another size, through the dynamic axes
    x = torch.rand(2, 3, 20, 12)
    (onnx_out,) = ort.InferenceSession(out, providers=['CPUExecutionProvider']).run(None, {'lr': x.numpy()})
    with torch.no_grad():
        assert abs(torch.from_numpy(onnx_out) - net(x)).max() < 1e-5


def test_onnx_without_the_extra_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, 'onnxruntime', None)  # as if not installed
    # a hint that works for an installed package as well as for a clone (no -e ".[onnx]")
    with pytest.raises(UserFacingError, match=r'pip install onnx onnxruntime\.$'):
        inference_export.require_onnx()


def test_command_errors(tmp_path, monkeypatch, capsys):
    torch.save(tiny_generator().state_dict(), tmp_path / 'source.pth')
    monkeypatch.chdir(tmp_path)
    result = run_command(capsys, export.main, '-m', 'source.pth', '-o', 'g.bin')
    assert result.code == 2 and 'must end in .pth, .safetensors, .onnx' in result.err
    result = run_command(capsys, export.main, '-m', 'missing.pth', '-o', 'g.pth')
    assert result.code == 1 and result.err.startswith('error: Checkpoint missing.pth does not exist')
    assert sorted(p.name for p in tmp_path.iterdir()) == ['source.pth']
