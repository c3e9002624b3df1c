"""`infer --tile auto`, `--max-memory` and `--plan` on the command line (the measured accuracy is in
tests/integration/test_memory_model.py)."""
import re

import cv2
import numpy as np
import pytest
import torch

from conftest import run_command, tiny_generator
from esrgan_plugin import infer


def run(capsys, *argv):
    return run_command(capsys, infer.main, *argv)


@pytest.fixture
def files(tmp_path):
    torch.save({'params': tiny_generator().state_dict()}, tmp_path / 'model.pth')
    rng = np.random.default_rng(0)
    assert cv2.imwrite(str(tmp_path / 'a.png'), rng.integers(0, 256, (300, 700, 3), dtype=np.uint8))
    return tmp_path


@pytest.mark.parametrize('argv, message', [
    (['--max-memory', '4XB'], "argument --max-memory: '4XB' is not a memory size; write e.g. 4GB"),
    (['--tile', 'big'], "argument --tile: 'big' is neither auto nor a number of pixels"),
    (['--tile', '64', '--max-memory', '4GB'], '--max-memory sizes the tiles of --tile auto'),
])
def test_bad_memory_options_are_one_line_usage_errors(files, capsys, argv, message):
    code, _, err = run(capsys, '-i', str(files / 'a.png'), '-o', str(files / 'out'), '-m', str(files / 'model.pth'),
                       *argv)
    assert code == 2 and message in err.strip().splitlines()[-1]
    assert not (files / 'out').exists()


def test_output_is_needed_except_for_a_plan(files, capsys):
    code, _, err = run(capsys, '-i', str(files / 'a.png'), '-m', str(files / 'model.pth'))
    assert code == 2 and 'required: -o/--output' in err


def test_plan_prints_a_peak_per_tile_and_writes_nothing(files, capsys):
    code, out, _ = run(capsys, '-i', str(files / 'a.png'), '-m', str(files / 'model.pth'), '--device', 'cpu',
                       '--plan', '--tile-pad', '16', '--max-memory', '1.5GiB')
    assert code == 0
    rows = re.findall(r'^\s+(whole|\d+)\s+(\d+)x(\d+)\s+(\d+)\s+([\d.]+ [MG]iB)\s+(yes|no)$', out, re.M)
    tiles = [r[0] for r in rows]
    assert tiles == ['whole', '512', '384', '256', '128', '64']  # the tiles smaller than the image's 700 pixels
    # Windows and tile counts as the tiling lays them out, worked out here: tile + 2 x 16 per cut side.
    assert [(int(r[1]), int(r[2]), int(r[3])) for r in rows] == [
        (700, 300, 1), (544, 300, 2), (416, 300, 2), (288, 288, 6), (160, 160, 18), (96, 96, 55)]
    assert 'budget (--max-memory) 1.50 GiB' in out and re.search(r'auto: (the whole image|tile \d+)', out)
    assert sorted(p.name for p in files.iterdir()) == ['a.png', 'model.pth']


def test_plan_shows_the_share_of_the_available_memory_and_the_chosen_tile(files, capsys):
    from esrgan_plugin.inference.memory import available_ram
    code, out, _ = run(capsys, '-i', str(files / 'a.png'), '-m', str(files / 'model.pth'), '--device', 'cpu',
                       '--plan')
    assert code == 0
    share, available, budget = re.search(r'budget \((\d+)% of ([\d.]+) GiB available RAM\) ([\d.]+) GiB', out).groups()
    # What the process holds (at most a few GiB here) plus what the kernel reports available.
    assert int(share) == 50 and available_ram() / 2**30 - 2 < float(available) < available_ram() / 2**30 + 4
    assert abs(float(budget) - float(available) / 2) <= 0.01
    assert re.search(r'^  auto: the whole image, predicted peak [\d.]+ [MG]iB: of the tiles that fit up to 2048 '
                     r'pixels, the one computing the fewest pixels$', out, re.M), out


def test_auto_tile_says_what_it_chose(files, capsys):
    code, _, err = run(capsys, '-i', str(files / 'a.png'), '-o', str(files / 'out'), '-m', str(files / 'model.pth'),
                       '--device', 'cpu', '--tile', 'auto')
    assert code == 0 and (files / 'out' / 'a_out.png').is_file()
    assert re.search(r'a_out\.png: the whole image, predicted peak [\d.]+ [MG]iB \(budget: 50% of [\d.]+ GiB '
                     r'available RAM, [\d.]+ GiB\)', err), err


def out_of_memory_above(monkeypatch, largest: int) -> list:
    """Make every run with a tile above ``largest`` (or the whole image) fail as an exhausted GPU would; returns
    the tiles tried, in order."""
    from esrgan_plugin.inference import upscale_files
    real, tried = upscale_files.write_upscaled, []

    def write_or_run_out(net, picture, dst, tile=0, **kwargs):
        tried.append(tile)
        if tile == 0 or tile > largest:
            raise torch.OutOfMemoryError('CUDA out of memory. Tried to allocate 2.00 GiB')
        return real(net, picture, dst, tile=tile, **kwargs)

    monkeypatch.setattr(upscale_files, 'write_upscaled', write_or_run_out)
    return tried


def test_auto_tile_halves_the_tile_when_the_run_still_runs_out_of_memory(files, capsys, monkeypatch):
    tried = out_of_memory_above(monkeypatch, 200)
    code, _, err = run(capsys, '-i', str(files / 'a.png'), '-o', str(files / 'out'), '-m', str(files / 'model.pth'),
                       '--device', 'cpu', '--tile', 'auto')
    assert code == 0, err
    # 700 pixels wide: the whole image, then 350 and 175 pixels on the 16-pixel grid.
    assert tried == [0, 336, 160]
    assert 'a_out.png: out of memory with the whole image; trying tile 336' in err
    assert 'a_out.png: out of memory with tile 336; trying tile 160' in err
    untiled = cv2.imread(str(files / 'out' / 'a_out.png'))
    monkeypatch.undo()
    code, _, _ = run(capsys, '-i', str(files / 'a.png'), '-o', str(files / 'whole'), '-m', str(files / 'model.pth'),
                     '--device', 'cpu', '--tile', '0')
    assert code == 0 and np.array_equal(untiled, cv2.imread(str(files / 'whole' / 'a_out.png')))


def test_a_fixed_tile_that_runs_out_of_memory_is_one_line_and_nothing_is_written(files, capsys, monkeypatch):
    tried = out_of_memory_above(monkeypatch, 100)
    code, _, err = run(capsys, '-i', str(files / 'a.png'), '-o', str(files / 'out'), '-m', str(files / 'model.pth'),
                       '--device', 'cpu', '--tile', '256')
    assert code == 1 and tried == [256]
    assert err.strip().splitlines()[-1].startswith('error: out of memory while upscaling')
    assert not (files / 'out' / 'a_out.png').exists()


def test_auto_tile_gives_up_below_the_smallest_tile(files, capsys, monkeypatch):
    tried = out_of_memory_above(monkeypatch, 8)
    code, _, err = run(capsys, '-i', str(files / 'a.png'), '-o', str(files / 'out'), '-m', str(files / 'model.pth'),
                       '--device', 'cpu', '--tile', 'auto')
    assert code == 1 and tried == [0, 336, 160, 80, 32]
    assert err.strip().splitlines()[-1].startswith('error: out of memory while upscaling')
    assert not (files / 'out' / 'a_out.png').exists()


def test_the_default_is_auto_and_speaks_only_when_it_tiles(files, capsys):
    argv = ['-i', str(files / 'a.png'), '-m', str(files / 'model.pth'), '--device', 'cpu']
    code, _, err = run(capsys, *argv, '-o', str(files / 'whole'))
    assert code == 0 and 'predicted peak' not in err and (files / 'whole' / 'a_out.png').is_file()
    # A budget just above what the command holds leaves room for tiles only.
    from esrgan_plugin.inference.memory import memory_budget
    limit = memory_budget(torch.device('cpu')).in_use + 80 * 2**20
    code, _, err = run(capsys, *argv, '-o', str(files / 'tiled'), '--max-memory', str(limit))
    assert code == 0 and re.search(r'a_out\.png: tile \d+ \(\d+ tiles\), predicted peak', err), err
