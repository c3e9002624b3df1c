"""Animated GIF, WebP and PNG: every frame upscaled, in order, with its duration and the loop count kept.

The inputs are made here with Pillow and the outputs read back with Pillow; each lossless output frame is the net
run directly on the matching input frame.
"""
import numpy as np
import pytest
from PIL import Image

from conftest import net_output, tiny_generator
from esrgan_plugin.inference import image_io, upscale

DURATIONS = [40, 70, 120]


@pytest.fixture(scope='module')
def net():
    return tiny_generator(scale=4, seed=5)


def animation(path, loop=None, seed=0) -> list[np.ndarray]:
    """Three random 10 x 8 frames saved as an animation; returns the frames as Pillow reads them back."""
    rng = np.random.default_rng(seed)
    frames = [Image.fromarray(rng.integers(0, 256, (8, 10, 3), dtype=np.uint8)) for _ in DURATIONS]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=DURATIONS,
                   **({} if loop is None else {'loop': loop}), **({'lossless': True} if str(path).endswith('webp')
                                                                    else {}))
    return [np.asarray(frame.convert('RGB')) for frame in frames_of(path)]


def frames_of(path) -> list[Image.Image]:
    out = []
    with Image.open(path) as image:
        for index in range(image.n_frames):
            image.seek(index)
            image.load()
            frame = image.copy()
            frame.info['duration'] = image.info.get('duration')
            out.append(frame)
    return out


@pytest.mark.parametrize('src_ext, out_ext, loop', [('gif', 'gif', 3), ('gif', 'gif', None), ('webp', 'webp', 2),
                                                    ('png', 'png', 0), ('gif', 'png', 5), ('png', 'webp', 4)])
def test_frames_durations_and_loop_are_kept(tmp_path, net, src_ext, out_ext, loop):
    inputs = animation(tmp_path / f'anim.{src_ext}', loop)
    picture = image_io.read_image(str(tmp_path / f'anim.{src_ext}'))
    assert picture.frames == 3 and picture.color.shape == (8, 10, 3)
    upscale.write_upscaled(net, picture, str(tmp_path / f'anim_out.{out_ext}'))
    frames = frames_of(tmp_path / f'anim_out.{out_ext}')
    assert [f.size for f in frames] == [(40, 32)] * 3
    assert [int(f.info['duration']) for f in frames] == DURATIONS
    with Image.open(tmp_path / f'anim_out.{out_ext}') as out:
        assert out.info.get('loop') == (loop if loop is not None or out_ext == 'gif' else 1)
    expected = [net_output(net, frame) for frame in inputs]
    got = [np.asarray(f.convert('RGB')).astype(float) for f in frames]
    for index, frame in enumerate(got):  # each output frame nearest to its own input frame's upscale
        assert int(np.argmin([np.abs(frame - e).mean() for e in expected])) == index
    if out_ext == 'png':  # lossless: the net's output itself
        assert max(np.abs(g - e).max() for g, e in zip(got, expected)) <= 1


def test_an_animation_goes_to_a_format_that_holds_one(tmp_path):
    src = str(tmp_path / 'anim.gif')
    assert image_io.output_path(src, 'out', '_x', 'jpg', has_alpha=False, animated=True).endswith('anim_x.png')
    assert image_io.output_path(src, 'out', '_x', 'auto', has_alpha=False, animated=True).endswith('anim_x.gif')
    assert image_io.output_path(src, 'out', '_x', 'webp', has_alpha=False, animated=True).endswith('anim_x.webp')


@pytest.mark.parametrize('ext', ['png', 'gif'])
def test_a_transparent_animation_keeps_its_transparency(tmp_path, net, ext):
    rng = np.random.default_rng(4)
    frames = []
    for _ in DURATIONS:
        rgba = rng.integers(0, 256, (8, 10, 4), dtype=np.uint8)
        rgba[..., 3] = np.where(rng.random((8, 10)) < 0.5, 0, 255)
        frames.append(Image.fromarray(rgba))
    frames[0].save(tmp_path / f'a.{ext}', save_all=True, append_images=frames[1:], duration=DURATIONS)
    picture = image_io.read_image(str(tmp_path / f'a.{ext}'))
    assert picture.alpha is not None and picture.animation.has_alpha
    upscale.write_upscaled(net, picture, str(tmp_path / f'a_out.{ext}'), alpha_mode='bicubic')
    out = frames_of(tmp_path / f'a_out.{ext}')
    assert len(out) == 3 and [int(f.info['duration']) for f in out] == DURATIONS
    alpha = [np.asarray(f.convert('RGBA'))[..., 3] for f in out]
    shown = [np.asarray(f.convert('RGBA'))[..., 3] for f in frames_of(tmp_path / f'a.{ext}')]  # as composed
    for was, a in zip(shown, alpha):  # transparent where the input was, frame by frame (bicubic blurs edges)
        was_opaque = was.repeat(4, 0).repeat(4, 1) > 127
        assert np.mean(was_opaque == (a > 127)) > 0.8


def test_a_still_gif_stays_a_still_gif_with_its_transparency(tmp_path, net):
    rgba = np.random.default_rng(6).integers(0, 256, (8, 10, 4), dtype=np.uint8)
    rgba[..., 3] = np.where(rgba[..., 3] > 127, 255, 0)
    Image.fromarray(rgba).save(tmp_path / 'still.gif')
    picture = image_io.read_image(str(tmp_path / 'still.gif'))
    assert picture.animation is None and picture.alpha is not None
    upscale.write_upscaled(net, picture, str(tmp_path / 'still_out.gif'), alpha_mode='bicubic')
    with Image.open(tmp_path / 'still_out.gif') as out:
        assert out.n_frames == 1 and 'loop' not in out.info and out.size == (40, 32)
        opaque = np.asarray(out.convert('RGBA'))[..., 3] > 127
    assert np.mean(opaque == (rgba[..., 3].repeat(4, 0).repeat(4, 1) > 127)) > 0.8


def test_an_animation_turned_by_exif_has_every_frame_upright(tmp_path, net):
    rng = np.random.default_rng(7)
    frames = [Image.fromarray(rng.integers(0, 256, (8, 10, 3), dtype=np.uint8)) for _ in DURATIONS]
    exif = Image.Exif()
    exif[0x0112] = 6
    frames[0].save(tmp_path / 'turned.png', save_all=True, append_images=frames[1:], duration=DURATIONS,
                   exif=exif.tobytes())
    with Image.open(tmp_path / 'turned.png') as image:
        assert image.getexif()[0x0112] == 6
    shown = [np.asarray(frame.transpose(Image.Transpose.ROTATE_270)) for frame in frames]  # 6: a quarter clockwise
    upscale.write_upscaled(net, image_io.read_image(str(tmp_path / 'turned.png')), str(tmp_path / 'turned_out.png'))
    out = frames_of(tmp_path / 'turned_out.png')
    assert [f.size for f in out] == [(32, 40)] * 3
    for frame, expected in zip(out, shown):
        assert np.abs(np.asarray(frame.convert('RGB')).astype(float) - net_output(net, expected)).max() <= 1
