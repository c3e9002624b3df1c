"""Upscaling users' images: each image kind, tiling, outscale, precision, failures and the command line."""
import os
import subprocess

import cv2
import numpy as np
import pytest
import torch

from conftest import PYTHON, run_command, subprocess_env, tiny_generator
from esrgan_plugin.inference import runtime as fast_inference
from esrgan_plugin import infer
from esrgan_plugin.inference import image_io
from esrgan_plugin.inference import runtime
from esrgan_plugin.inference import upscale
from esrgan_plugin.errors import UserFacingError
from layouts import in_layout


def net_output(net, rgb01: np.ndarray) -> np.ndarray:
    """The net run directly on an H x W x 3 RGB float image: the reference for the pipeline."""
    with torch.no_grad():
        out = net(torch.from_numpy(np.ascontiguousarray(rgb01.transpose(2, 0, 1))).float().unsqueeze(0))
    return out[0].clamp(0, 1).numpy().transpose(1, 2, 0)


def luma(rgb: np.ndarray) -> np.ndarray:
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


@pytest.fixture
def net():
    return tiny_generator(scale=4, seed=2)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def write(path, img) -> str:
    assert cv2.imwrite(str(path), img)
    return str(path)


def upscale_file(net, src: str, dst: str, **options) -> None:
    """One image read and upscaled into a file, as the command does for each of its inputs."""
    upscale.write_upscaled(net, image_io.read_image(src), dst, **options)


def upscaled_rgb(net, picture, **options) -> np.ndarray:
    """The float32 output as RGB (or gray), alpha dropped: ``upscale_to_array`` fills OpenCV's BGR(A) layout."""
    out = upscale.upscale_to_array(net, picture, np.dtype(np.float32), **options)
    return out if out.ndim == 2 else out[..., 2::-1]


def test_color_png_equals_the_net_on_the_rgb_image(tmp_path, net, rng):
    bgr = rng.integers(0, 256, (13, 11, 3), dtype=np.uint8)
    src = write(tmp_path / 'a.png', bgr)
    upscale_file(net, src, str(tmp_path / 'out.png'))
    expected = np.round(net_output(net, bgr[..., ::-1] / 255.0) * 255).astype(np.uint8)[..., ::-1]
    assert np.array_equal(cv2.imread(str(tmp_path / 'out.png'), cv2.IMREAD_UNCHANGED), expected)


def test_gray_stays_gray(tmp_path, net, rng):
    gray = rng.integers(0, 256, (12, 9), dtype=np.uint8)
    src = write(tmp_path / 'g.png', gray)
    upscale_file(net, src, str(tmp_path / 'g_out.png'))
    out = cv2.imread(str(tmp_path / 'g_out.png'), cv2.IMREAD_UNCHANGED)
    expected = luma(net_output(net, np.repeat(gray[..., None] / 255.0, 3, axis=2)))
    assert out.shape == (48, 36) and out.dtype == np.uint8
    assert np.abs(out.astype(float) - expected * 255).max() <= 0.51


def test_rgba_alpha_is_upscaled_by_the_net(tmp_path, net, rng):
    bgra = rng.integers(0, 256, (10, 14, 4), dtype=np.uint8)
    src = write(tmp_path / 'rgba.png', bgra)
    upscale_file(net, src, str(tmp_path / 'rgba_out.png'))
    out = cv2.imread(str(tmp_path / 'rgba_out.png'), cv2.IMREAD_UNCHANGED)
    assert out.shape == (40, 56, 4)
    color = np.round(net_output(net, bgra[..., 2::-1] / 255.0) * 255)[..., ::-1]
    alpha = luma(net_output(net, np.repeat(bgra[..., 3:] / 255.0, 3, axis=2))) * 255
    assert np.array_equal(out[..., :3], color.astype(np.uint8))
    assert np.abs(out[..., 3] - alpha).max() <= 0.51


def test_rgba_alpha_bicubic(tmp_path, net, rng):
    bgra = rng.integers(0, 256, (10, 14, 4), dtype=np.uint8)
    picture = image_io.read_image(write(tmp_path / 'rgba.png', bgra))
    alpha = upscale.upscale_to_array(net, picture, np.dtype(np.float32), alpha_mode='bicubic')[..., 3]
    expected = np.clip(cv2.resize(bgra[..., 3] / np.float32(255), (56, 40), interpolation=cv2.INTER_CUBIC), 0, 1)
    np.testing.assert_allclose(alpha, expected, atol=1e-6)


def test_16bit_png_stays_16bit(tmp_path, net, rng):
    bgr = rng.integers(0, 65536, (9, 10, 3), dtype=np.uint16)
    src = write(tmp_path / 'deep.png', bgr)
    upscale_file(net, src, str(tmp_path / 'deep_out.png'))
    out = cv2.imread(str(tmp_path / 'deep_out.png'), cv2.IMREAD_UNCHANGED)
    assert out.dtype == np.uint16 and out.shape == (36, 40, 3)
    expected = net_output(net, bgr[..., ::-1] / 65535.0)[..., ::-1] * 65535
    assert np.abs(out - expected).max() <= 0.6  # float32 compute, rounded to 1/65535
    assert len(np.unique(out)) > 256  # really more than 8 bits of levels


@pytest.mark.parametrize('ext', ['.jpg', '.webp', '.tiff', '.bmp'])
def test_formats_opencv_reads(tmp_path, net, rng, ext):
    bgr = rng.integers(0, 256, (8, 12, 3), dtype=np.uint8)
    src = write(tmp_path / f'x{ext}', bgr)
    decoded = cv2.imread(src, cv2.IMREAD_UNCHANGED)  # what a lossy format actually stored
    dst = image_io.output_path(src, str(tmp_path / 'out'), '_out', 'auto', has_alpha=False)
    assert dst.endswith(f'x_out{ext}')
    upscale_file(net, src, dst)
    out = cv2.imread(dst, cv2.IMREAD_UNCHANGED)
    expected = net_output(net, decoded[..., ::-1] / 255.0)[..., ::-1] * 255
    tolerance = 0.51 if ext in ('.tiff', '.bmp') else 40  # lossless formats exact; lossy ones close
    assert out.shape == (32, 48, 3) and np.abs(out - expected).mean() < tolerance


def test_tiled_file_output_equals_untiled(tmp_path, net, rng):
    bgr = rng.integers(0, 256, (97, 29, 3), dtype=np.uint8)  # longer than a window (12 + 2 x 34) in rows
    picture = image_io.read_image(write(tmp_path / 'odd.png', bgr))
    whole = upscale.upscale_to_array(net, picture, np.dtype(np.uint8), tile=0)
    tiled = upscale.upscale_to_array(net, picture, np.dtype(np.uint8), tile=12, tile_pad=34)
    assert whole.shape == (388, 116, 3)
    assert np.abs(whole.astype(int) - tiled).max() <= 1 and np.mean(whole != tiled) < 1e-3  # rounding ties only


# the net gives x4; beyond that Lanczos enlarges it, below it area averaging shrinks it
@pytest.mark.parametrize('outscale,interp', [(6, cv2.INTER_LANCZOS4), (3.5, cv2.INTER_AREA), (2, cv2.INTER_AREA)])
def test_outscale_resizes_the_net_output(tmp_path, net, rng, outscale, interp):
    bgr = rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)
    picture = image_io.read_image(write(tmp_path / 'a.png', bgr))
    result = upscaled_rgb(net, picture, outscale=outscale)
    size = (round(12 * outscale), round(10 * outscale))
    expected = np.clip(cv2.resize(net_output(net, bgr[..., ::-1] / np.float32(255)), size, interpolation=interp), 0, 1)
    assert result.shape == (size[1], size[0], 3)
    np.testing.assert_allclose(result, expected, atol=1e-5)


def test_bf16_on_cpu_is_close_to_fp32(tmp_path, net, rng):
    bgr = rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)
    picture = image_io.read_image(write(tmp_path / 'a.png', bgr))
    fp32 = upscaled_rgb(net, picture)
    bf16 = upscaled_rgb(tiny_generator(scale=4, seed=2).to(torch.bfloat16), picture)
    assert np.abs(fp32 - bf16).max() < 0.05


def test_fp16_on_cpu_falls_back_with_a_note(monkeypatch):
    dtype, note = runtime.choose_dtype('fp16', torch.device('cpu'))
    assert dtype == torch.float32 and 'bf16' in note
    monkeypatch.setattr(fast_inference, 'cpu_has_fast_bf16', lambda: True)
    assert runtime.choose_dtype('bf16', torch.device('cpu')) == (torch.bfloat16, None)
    monkeypatch.setattr(fast_inference, 'cpu_has_fast_bf16', lambda: False)
    dtype, note = runtime.choose_dtype('bf16', torch.device('cpu'))
    assert dtype == torch.float32 and 'slower than fp32' in note and 'channels_last' in note


def test_bf16_request_on_a_cpu_without_native_bf16_runs_fp32_channels_last(tmp_path, monkeypatch, capsys):
    """The fast path where bf16 is emulated: fp32 weights in channels_last, a note on stderr."""
    monkeypatch.setattr(fast_inference, 'cpu_has_fast_bf16', lambda: False)
    seen = {}
    real_prepare = runtime.prepare_generator

    def spy(net, device, dtype=torch.float32, channels_last=None, compile_mode=None):
        prepared = real_prepare(net, device, dtype, channels_last=channels_last, compile_mode=compile_mode)
        seen['weight'] = prepared.conv_first.weight
        return prepared

    monkeypatch.setattr(runtime, 'prepare_generator', spy)
    torch.save({'params': tiny_generator(scale=4, seed=3).state_dict()}, tmp_path / 'net.pth')
    write(tmp_path / 'a.png', np.random.default_rng(0).integers(0, 256, (12, 12, 3), dtype=np.uint8))
    code = run_command(capsys, infer.main, '-i', tmp_path / 'a.png', '-o', tmp_path / 'out', '-m', tmp_path / 'net.pth',
                       '--precision', 'bf16', '--device', 'cpu').code
    assert code == 0 and (tmp_path / 'out' / 'a_out.png').is_file()
    assert seen['weight'].dtype == torch.float32
    assert seen['weight'].is_contiguous(memory_format=torch.channels_last)


def test_corrupt_and_missing_images_are_reported(tmp_path):
    (tmp_path / 'bad.png').write_bytes(b'\x89PNG\r\n\x1a\n not really')
    with pytest.raises(image_io.ImageReadError, match='bad.png'):
        image_io.read_image(str(tmp_path / 'bad.png'))
    with pytest.raises(image_io.ImageReadError, match='nope.png'):
        image_io.read_image(str(tmp_path / 'nope.png'))


def test_outputs_never_overwrite_inputs(tmp_path, rng):
    src = write(tmp_path / 'a.png', rng.integers(0, 256, (4, 4, 3), dtype=np.uint8))
    with pytest.raises(UserFacingError, match='overwrite'):
        upscale.plan_outputs([src], str(tmp_path), '', 'auto')
    (tmp_path / 'file').write_text('x')
    with pytest.raises(UserFacingError, match='is a file'):
        upscale.plan_outputs([src], str(tmp_path / 'file'), '_out', 'auto')
    with pytest.raises(UserFacingError, match='does not exist'):
        upscale.list_inputs(str(tmp_path / 'missing'))


def test_a_failed_write_leaves_nothing(tmp_path, net, rng, monkeypatch):
    src = write(tmp_path / 'a.png', rng.integers(0, 256, (6, 6, 3), dtype=np.uint8))
    out_dir = tmp_path / 'out'

    def encode_then_fail(ext, img, params):  # as if interrupted while the file is being written
        raise KeyboardInterrupt

    monkeypatch.setattr(cv2, 'imencode', encode_then_fail)
    with pytest.raises(KeyboardInterrupt):
        upscale_file(net, src, str(out_dir / 'a_out.png'))
    assert not out_dir.exists() or os.listdir(out_dir) == []


# ------------------------------------------------------------------ the command, end to end
def test_command_on_a_folder_with_a_corrupt_file(tmp_path, net, rng):
    """The real entry point, in an interpreter of its own: python -m esrgan_plugin.infer."""
    images = tmp_path / 'in'
    images.mkdir()
    write(images / 'one.png', rng.integers(0, 256, (9, 7, 3), dtype=np.uint8))
    write(images / 'two.jpg', rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    (images / 'broken.png').write_bytes(b'not an image')
    # the original release layout, to show any layout loads and the architecture is read from the file
    torch.save(in_layout(net.state_dict(), 'original'), tmp_path / 'model.pth')
    result = subprocess.run([PYTHON, '-m', 'esrgan_plugin.infer', '-i', 'in', '-o', 'out', '-m', 'model.pth', '--tile',
                             '4', '--tile-pad', '34'], capture_output=True, text=True, env=subprocess_env(),
                            timeout=180, cwd=tmp_path)
    assert result.returncode == 1
    assert sorted(os.listdir(tmp_path / 'out')) == ['one_out.png', 'two_out.jpg']  # nothing else, no temp files
    assert 'error:' in result.stderr and 'broken.png' in result.stderr and 'Traceback' not in result.stderr
    assert '2 of 3 file(s)' in result.stderr
    out = cv2.imread(str(tmp_path / 'out' / 'one_out.png'))
    expected = np.round(net_output(net, cv2.imread(str(images / 'one.png'))[..., ::-1] / 255.0) * 255)[..., ::-1]
    assert np.abs(out.astype(int) - expected).max() <= 1


def test_command_errors_and_help(tmp_path, net, rng, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_command(capsys, infer.main, '-h')
    assert result.code == 0 and '--tile-pad' in result.out and '--outscale' in result.out
    torch.save({'params': net.state_dict()}, tmp_path / 'model.pth')
    result = run_command(capsys, infer.main, '-i', 'missing.png', '-o', 'out', '-m', 'model.pth')
    assert result.code == 1 and result.err.startswith('error: input missing.png does not exist')
    write(tmp_path / 'a.png', rng.integers(0, 256, (4, 4, 3), dtype=np.uint8))
    (tmp_path / 'bad.pth').write_bytes(b'junk')
    result = run_command(capsys, infer.main, '-i', 'a.png', '-o', 'out', '-m', 'bad.pth')
    assert result.code == 1 and 'error: Checkpoint bad.pth' in result.err
    assert 'Traceback' not in result.err and not (tmp_path / 'out').exists()


# ------------------------------------------------------------------ existing outputs and full disks
def run_in_process(capsys, *argv):
    result = run_command(capsys, infer.main, *argv)
    return result.code, result.err


@pytest.mark.parametrize('same_folder', [False, True])
def test_a_second_run_says_outputs_exist_and_overwrite_replaces_them(tmp_path, net, rng, capsys, same_folder):
    folder = tmp_path / 'in'
    folder.mkdir()
    write(folder / 'a.png', rng.integers(0, 256, (5, 6, 3), dtype=np.uint8))
    write(folder / 'b.png', rng.integers(0, 256, (4, 4, 3), dtype=np.uint8))
    torch.save({'params': net.state_dict()}, tmp_path / 'model.pth')
    out = folder if same_folder else tmp_path / 'out'
    args = ['-i', str(folder), '-o', str(out), '-m', str(tmp_path / 'model.pth'), '--device', 'cpu']
    assert run_in_process(capsys, *args)[0] == 0
    (out / 'a_out.png').write_bytes(b'stale')
    code, err = run_in_process(capsys, *args)
    assert code == 1 and err.count('\n') == 1 and '--suffix' in err.split(';')[-1]
    assert err.startswith(f'error: 2 of the 2 output(s) already exist in {out} (e.g. a_out.png); pass --overwrite')
    assert (out / 'a_out.png').read_bytes() == b'stale'
    code, err = run_in_process(capsys, *args, '--overwrite')
    assert code == 0 and '2 of 2 file(s) written' in err  # earlier outputs in the input folder are not inputs
    assert cv2.imread(str(out / 'a_out.png')).shape == (20, 24, 3)
    expected = {'a_out.png', 'b_out.png'} | ({'a.png', 'b.png'} if same_folder else set())
    assert set(os.listdir(out)) == expected


def test_full_disk_stops_with_one_line_and_leaves_no_temp_file(tmp_path, net, rng, capsys, monkeypatch):
    write(tmp_path / 'a.png', rng.integers(0, 256, (5, 6, 3), dtype=np.uint8))
    torch.save({'params': net.state_dict()}, tmp_path / 'model.pth')

    def enospc(fd):
        raise OSError(28, os.strerror(28))

    monkeypatch.setattr(os, 'fsync', enospc)
    code, err = run_in_process(capsys, '-i', str(tmp_path / 'a.png'), '-o', str(tmp_path / 'out'), '-m',
                               str(tmp_path / 'model.pth'), '--device', 'cpu')
    assert code == 1 and err.count('\n') == 1
    assert err.startswith(f'error: cannot write {tmp_path / "out" / "a_out.png"}: no space left on device')
    assert os.listdir(tmp_path / 'out') == []


def test_color_fix_flag_help_bad_value_and_a_run(tmp_path, rng, capsys):
    from esrgan_plugin.choices import COLOR_FIXES
    from esrgan_plugin.inference.color_fix import apply_color_fix

    result = run_command(capsys, infer.main, '-h')
    assert result.code == 0 and '--color-fix {none,mean,wavelet}' in result.out
    assert next(a for a in infer.build_parser()._actions if '--color-fix' in a.option_strings).choices is COLOR_FIXES
    result = run_command(capsys, infer.main, '-i', 'a.png', '-o', 'out', '-m', 'net.pth', '--color-fix', 'median')
    assert result.code == 2
    assert "argument --color-fix: invalid choice: 'median' (choose from" in result.err
    net = tiny_generator(scale=4, seed=3)
    torch.save({'params': net.state_dict()}, tmp_path / 'net.pth')
    bgr = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)
    write(tmp_path / 'a.png', bgr)
    code = run_command(capsys, infer.main, '-i', tmp_path / 'a.png', '-o', tmp_path / 'out', '-m',
                       tmp_path / 'net.pth', '--color-fix', 'wavelet', '--device', 'cpu').code
    # what the command wrote: the net's 8-bit output with the wavelet fix applied to it
    expected = np.round(net_output(net, bgr[..., ::-1] / 255.0) * 255).astype(np.uint8)
    apply_color_fix('wavelet', expected, (bgr[..., ::-1] / 255.0).astype(np.float32), 4)
    assert code == 0 and np.array_equal(cv2.imread(str(tmp_path / 'out' / 'a_out.png')), expected[..., ::-1])


def test_phone_photos_in_a_folder_come_out_upright_with_or_without_metadata(tmp_path, rng, capsys):
    """A folder of a phone's files (JPEG turned by EXIF, HEIC, animated GIF) through the command line."""
    import pillow_heif
    from PIL import Image, ImageOps

    pillow_heif.register_heif_opener()  # to make the HEIC file
    folder = tmp_path / 'phone'
    folder.mkdir()
    exif = Image.Exif()
    exif[0x0112], exif[0x010F] = 6, 'PhoneMaker'
    Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).save(folder / 'a.jpg', exif=exif.tobytes())
    Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(folder / 'b.heic', exif=exif.tobytes())
    frames = [Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)) for _ in range(2)]
    frames[0].save(folder / 'c.gif', save_all=True, append_images=frames[1:], duration=[30, 60], loop=0)
    torch.save({'params': tiny_generator(scale=4, seed=3).state_dict()}, tmp_path / 'net.pth')
    base = ['-i', folder, '-m', tmp_path / 'net.pth', '--device', 'cpu']
    assert run_command(capsys, infer.main, *base, '-o', tmp_path / 'kept').code == 0
    assert run_command(capsys, infer.main, *base, '-o', tmp_path / 'bare', '--strip-metadata').code == 0
    assert sorted(os.listdir(tmp_path / 'kept')) == ['a_out.jpg', 'b_out.png', 'c_out.gif']
    for folder_name, camera in (('kept', 'PhoneMaker'), ('bare', None)):
        with Image.open(tmp_path / folder_name / 'a_out.jpg') as out:
            assert out.size == (48, 64) and ImageOps.exif_transpose(out).size == (48, 64)
            assert out.getexif().get(0x010F) == camera
        with Image.open(tmp_path / folder_name / 'c_out.gif') as out:
            assert out.n_frames == 2 and out.size == (24, 24)
    assert '--strip-metadata' in run_command(capsys, infer.main, '-h').out
