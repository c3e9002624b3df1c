"""Photos as they are shown: EXIF orientation, colour profile, EXIF and XMP kept, CMYK, HEIC and AVIF.

Every input is made here with Pillow; what a viewer shows is Pillow's own rendering of the input
(``ImageOps.exif_transpose``, ``convert('RGB')``), and the expected output is the net run directly on it.
"""
import io

import numpy as np
import pytest
from PIL import Image, ImageCms, ImageOps

from conftest import net_output, tiny_generator
from esrgan_plugin.inference import image_io, upscale

ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile('sRGB')).tobytes()
CAMERA = {0x010F: 'PhoneMaker', 0x0110: 'Model 7', 0x0132: '2026:12:07 10:11:12'}  # Make, Model, DateTime
XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
       b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="6"/></rdf:RDF></x:xmpmeta>')


@pytest.fixture(scope='module')
def net():
    return tiny_generator(scale=4, seed=5)


def exif_bytes(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    for tag, value in CAMERA.items():
        exif[tag] = value
    return exif.tobytes()


def photo(path, orientation: int = 1, size=(64, 48), seed: int = 0, **save) -> str:
    """A random photo, ``size`` (width, height) as stored, with orientation, profile and camera tags."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, exif=exif_bytes(orientation), icc_profile=ICC, **save)
    return str(path)


def shown(path) -> np.ndarray:
    """The input as a viewer shows it: Pillow's decoding, turned by its own orientation."""
    with Image.open(path) as image:
        return np.asarray(ImageOps.exif_transpose(image).convert('RGB'))


def upscale_into(net, src: str, dst: str, **options) -> Image.Image:
    upscale.write_upscaled(net, image_io.read_image(src), dst, **options)
    return Image.open(dst)


@pytest.mark.parametrize('orientation', range(1, 9))
@pytest.mark.parametrize('stored', ['jpg', 'png'])
def test_each_exif_orientation_comes_out_as_shown_with_the_tag_reset(tmp_path, net, orientation, stored):
    src = photo(tmp_path / f'phone.{stored}', orientation, **({'quality': 95} if stored == 'jpg' else {}))
    expected = net_output(net, shown(src))
    out = upscale_into(net, src, str(tmp_path / 'phone_out.png'))
    assert out.size == (expected.shape[1], expected.shape[0])
    assert out.size == ((256, 192) if orientation <= 4 else (192, 256))
    assert np.abs(np.asarray(out.convert('RGB')).astype(float) - expected).max() <= 1
    assert out.getexif()[0x0112] == 1
    if orientation in (2, 3, 4):  # same size, other content: the test would see a file left as stored
        with Image.open(src) as image:
            assert np.abs(net_output(net, np.asarray(image.convert('RGB'))) - expected).max() > 1


@pytest.mark.parametrize('out_ext', ['png', 'jpg', 'webp', 'tiff'])
def test_profile_camera_tags_and_xmp_are_kept(tmp_path, net, out_ext):
    src = photo(tmp_path / 'phone.jpg', 6, quality=95, xmp=XMP)
    out = upscale_into(net, src, str(tmp_path / f'phone_out.{out_ext}'))
    assert out.size == (192, 256) and out.info['icc_profile'] == ICC
    exif = out.getexif()
    assert {tag: exif[tag] for tag in CAMERA} == CAMERA and exif.get(0x0112, 1) == 1  # TIFF: no tag, upright
    assert out.info['xmp'] == XMP.replace(b'tiff:Orientation="6"', b'tiff:Orientation="1"')
    assert ImageOps.exif_transpose(out).size == out.size  # viewers leave it as it is
    expected = net_output(net, shown(src))
    lossless = out_ext in ('png', 'tiff')
    assert np.abs(np.asarray(out.convert('RGB')).astype(float) - expected).mean() < (0.01 if lossless else 3)


@pytest.mark.parametrize('out_ext', ['png', 'jpg', 'webp', 'tiff'])
def test_strip_metadata_drops_profile_exif_and_xmp(tmp_path, net, out_ext):
    src = photo(tmp_path / 'phone.jpg', 6, quality=95, xmp=XMP)
    out = upscale_into(net, src, str(tmp_path / f'phone_out.{out_ext}'), strip_metadata=True)
    assert out.size == (192, 256)  # still upright
    assert 'icc_profile' not in out.info and 'xmp' not in out.info
    assert not any(tag in out.getexif() for tag in CAMERA)


def test_webp_with_alpha_keeps_its_metadata_and_pixels(tmp_path, net):
    """An extended WebP made around the encoder's own image chunks decodes to the same pixels."""
    rgba = np.random.default_rng(1).integers(0, 256, (12, 16, 4), dtype=np.uint8)
    Image.fromarray(rgba).save(tmp_path / 'a.png', icc_profile=ICC, exif=exif_bytes(1))
    picture = image_io.read_image(str(tmp_path / 'a.png'))
    upscale.write_upscaled(net, picture, str(tmp_path / 'kept.webp'))
    upscale.write_upscaled(net, picture, str(tmp_path / 'bare.webp'), strip_metadata=True)
    kept, bare = Image.open(tmp_path / 'kept.webp'), Image.open(tmp_path / 'bare.webp')
    assert kept.mode == 'RGBA' and kept.info['icc_profile'] == ICC and kept.getexif()[0x010F] == 'PhoneMaker'
    assert np.array_equal(np.asarray(kept), np.asarray(bare))


@pytest.mark.parametrize('ext', ['png', 'tiff'])
def test_16bit_gray_keeps_its_depth_and_profile(tmp_path, net, ext):
    gray = np.random.default_rng(2).integers(0, 65536, (10, 12), dtype=np.uint16)
    Image.fromarray(gray).save(tmp_path / f'g16.{ext}', icc_profile=ICC)
    out = upscale_into(net, str(tmp_path / f'g16.{ext}'), str(tmp_path / f'g16_out.{ext}'))
    assert out.mode.startswith('I;16') and out.size == (48, 40) and out.info['icc_profile'] == ICC


def test_cmyk_jpeg_comes_out_as_its_rgb_rendering(tmp_path, net):
    cmyk = np.random.default_rng(3).integers(0, 256, (12, 16, 4), dtype=np.uint8)
    Image.fromarray(cmyk, 'CMYK').save(tmp_path / 'print.jpg', quality=95)
    with Image.open(tmp_path / 'print.jpg') as image:
        assert image.mode == 'CMYK'
        expected = net_output(net, np.asarray(image.convert('RGB')))
    out = upscale_into(net, str(tmp_path / 'print.jpg'), str(tmp_path / 'print_out.png'))
    assert out.mode == 'RGB' and np.abs(np.asarray(out).astype(float) - expected).max() <= 1


@pytest.mark.parametrize('ext', ['heic', 'avif'])
def test_heic_and_avif_are_read_and_written_as_png(tmp_path, net, ext):
    import pillow_heif
    pillow_heif.register_heif_opener()  # to make the file; infer registers it on its first read
    src = photo(tmp_path / f'phone.{ext}', 6, size=(32, 24), quality=90)
    dst = image_io.output_path(src, str(tmp_path), '_out', 'auto', has_alpha=False)
    assert dst.endswith('phone_out.png')
    out = upscale_into(net, src, dst)
    expected = net_output(net, shown(src))
    assert out.size == (96, 128) and np.abs(np.asarray(out.convert('RGB')).astype(float) - expected).max() <= 1
    assert out.getexif()[0x010F] == 'PhoneMaker'


def test_damaged_exif_is_ignored_not_fatal(tmp_path, net):
    pixels = np.zeros((8, 8, 3), np.uint8)
    Image.fromarray(pixels).save(tmp_path / 'odd.jpg', exif=b'Exif\x00\x00MM\x00*\x00\x00\xff\xff')
    picture = image_io.read_image(str(tmp_path / 'odd.jpg'))
    assert picture.color.shape == (8, 8, 3)


def test_a_truncated_jpeg_is_one_read_error(tmp_path):
    data = io.BytesIO()
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(data, 'JPEG')
    (tmp_path / 'cut.jpg').write_bytes(data.getvalue()[:200])
    with pytest.raises(image_io.ImageReadError, match='cut.jpg'):
        image_io.read_image(str(tmp_path / 'cut.jpg'))
