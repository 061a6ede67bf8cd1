import io

import numpy as np
import pytest
from PIL import Image

from emotion_batch.exceptions import ImageError
from emotion_batch.imaging import decode_image
from emotion_batch.sample import jpeg_bytes, synthetic_photo

from .conftest import png_bytes


def _gradient(mode: str) -> Image.Image:
    base = np.tile(np.arange(0, 256, 2, dtype=np.uint8), (64, 1))
    rgb = Image.fromarray(np.stack([base, base[:, ::-1], np.full_like(base, 90)], axis=-1))
    return rgb.convert(mode)


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA", "P", "CMYK", "1"])
def test_every_pillow_mode_becomes_rgb(mode):
    image = _gradient(mode)
    out = io.BytesIO()
    image.save(out, "TIFF" if mode == "CMYK" else "PNG")
    decoded = decode_image(out.getvalue(), name=f"x.{mode}")
    assert decoded.rgb.dtype == np.uint8
    assert decoded.rgb.shape == (64, 128, 3)
    assert (decoded.width, decoded.height) == (128, 64)
    if mode in ("RGB", "RGBA", "CMYK"):
        # colours survive: red rises left to right, green falls
        assert decoded.rgb[10, 120, 0] > decoded.rgb[10, 5, 0] + 100
        assert decoded.rgb[10, 5, 1] > decoded.rgb[10, 120, 1] + 100


def test_sixteen_bit_png_is_scaled_not_clipped():
    values = np.linspace(0, 65535, 200, dtype=np.uint16).reshape(10, 20)
    decoded = decode_image(png_bytes(Image.fromarray(values)), name="deep.png")
    gray = decoded.rgb[:, :, 0].astype(int)
    assert gray.min() == 0 and gray.max() == 255
    assert len(np.unique(gray)) > 150  # a clip at 255 would leave almost every pixel white


def test_exif_orientation_is_honoured():
    rng = np.random.default_rng(0)
    photo = synthetic_photo(rng, 320, 200, 1)
    decoded = decode_image(jpeg_bytes(photo, orientation=6), name="rot.jpg")
    assert (decoded.width, decoded.height) == (320, 200)
    assert decoded.rgb.shape == (200, 320, 3)
    diff = np.abs(decoded.rgb.astype(int) - np.asarray(photo).astype(int)).mean()
    assert diff < 8  # same picture, only JPEG noise


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_a_jpeg_decodes_to_pillows_pixels_upright_by_every_exif_orientation(monkeypatch, orientation, mode):
    """JPEGs are decoded by libjpeg-turbo straight into numpy (simplejpeg), not through Pillow: the same
    pixels as Pillow decodes, turned by the EXIF orientation as ``ImageOps.exif_transpose`` turns them."""
    import simplejpeg
    from PIL import ImageOps

    calls = []
    real = simplejpeg.decode_jpeg
    monkeypatch.setattr(simplejpeg, "decode_jpeg", lambda *a, **k: calls.append(1) or real(*a, **k))
    photo = synthetic_photo(np.random.default_rng(orientation), 96, 64, 1).convert(mode)
    out = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = orientation
    photo.save(out, "JPEG", quality=90, exif=exif)
    decoded = decode_image(out.getvalue(), name="turned.jpg")
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(out.getvalue()))).convert("RGB"))
    assert calls == [1]  # the fast decoder, not Pillow's
    assert decoded.rgb.shape == expected.shape and (decoded.rgb == expected).all()
    assert (decoded.width, decoded.height) == expected.shape[1::-1]
    assert decoded.rgb.flags["C_CONTIGUOUS"]


def test_a_cmyk_jpeg_falls_back_to_pillow():
    out = io.BytesIO()
    _gradient("CMYK").save(out, "JPEG", quality=95)
    decoded = decode_image(out.getvalue(), name="print.jpg")
    assert decoded.rgb.shape == (64, 128, 3)
    assert decoded.rgb[10, 120, 0] > decoded.rgb[10, 5, 0] + 100  # colours survive, as Pillow converts them


@pytest.mark.parametrize("payload, status", [
    (b"", "unreadable"),
    (b"plain text pretending to be a picture", "unreadable"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "unreadable"),
])
def test_bad_bytes_are_recorded_outcomes(payload, status):
    with pytest.raises(ImageError) as info:
        decode_image(payload, name="bad.jpg")
    assert info.value.status == status
    assert "bad.jpg" in str(info.value)


def test_truncated_jpeg_is_unreadable():
    data = jpeg_bytes(synthetic_photo(np.random.default_rng(1), 320, 240, 1))
    with pytest.raises(ImageError) as info:
        decode_image(data[: len(data) // 2], name="cut.jpg")
    assert info.value.status == "unreadable"


def test_too_many_pixels_is_unsupported_before_decoding():
    data = png_bytes(Image.new("RGB", (400, 300)))
    with pytest.raises(ImageError) as info:
        decode_image(data, name="huge.png", max_pixels=100_000)
    assert info.value.status == "unsupported"
    assert "120,000" in str(info.value)


@pytest.mark.parametrize("fast", [True, False])
def test_large_image_is_reduced_for_work_and_scale_recorded(monkeypatch, fast):
    import simplejpeg

    if not fast:  # Pillow's path (a JPEG libjpeg-turbo refuses) reduces the same way
        monkeypatch.setattr(simplejpeg, "decode_jpeg", lambda *a, **k: (_ for _ in ()).throw(ValueError("no")))
    gradient = np.linspace(0, 255, 4000, dtype=np.uint8)[None, :, None] * np.ones((3000, 1, 3), np.uint8)
    data = jpeg_bytes(Image.fromarray(gradient))
    decoded = decode_image(data, name="big.jpg", work_side=1000)
    assert decoded.rgb.shape == (750, 1000, 3)  # both sides reduced, the photo's shape kept
    assert (decoded.width, decoded.height) == (4000, 3000)
    assert decoded.scale == pytest.approx(4.0)
    assert abs(int(decoded.rgb[375, 500, 0]) - 128) <= 3 and decoded.rgb[375, 990, 0] > 245  # the same picture


def test_truncated_jpeg_is_unreadable_after_weasyprint_import():
    import weasyprint  # noqa: F401  (sets PIL.ImageFile.LOAD_TRUNCATED_IMAGES = True at import)

    data = jpeg_bytes(synthetic_photo(np.random.default_rng(2), 320, 240, 1))
    with pytest.raises(ImageError) as info:
        decode_image(data[: len(data) // 2], name="cut.jpg")
    assert info.value.status == "unreadable"


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares its size and holds no pixels: enough for every size check, nothing to decode."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)) + chunk(b"IEND", b"")


def test_our_pixel_limit_is_the_only_one(monkeypatch):
    """Pillow's own bomb limit (89,478,485 pixels) refused a 95-megapixel image below our documented 120 MP."""
    from emotion_batch.imaging import DEFAULT_MAX_PIXELS

    with pytest.raises(ImageError) as info:
        decode_image(_png_header_only(10_000, 9_500), name="big.png")  # 95 MP: past the size checks, then no pixels
    assert info.value.status == "unreadable" and "89,478,485" not in str(info.value)
    with pytest.raises(ImageError) as info:
        decode_image(_png_header_only(12_000, 10_001), name="bigger.png")
    assert info.value.status == "unsupported" and f"{DEFAULT_MAX_PIXELS:,}" in str(info.value)
    # the same with real pixels, Pillow's limit set below ours as its default is below our default
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000_000)
    decoded = decode_image(png_bytes(Image.new("L", (1500, 1000), 80)), name="ok.png", max_pixels=2_000_000)
    assert (decoded.width, decoded.height) == (1500, 1000)
    with pytest.raises(ImageError) as info:  # above twice Pillow's limit: its DecompressionBombError, our words
        decode_image(png_bytes(Image.new("L", (2000, 2500), 80)), name="no.png", max_pixels=4_000_000)
    assert info.value.status == "unsupported"
    assert str(info.value) == "no.png: 2000x2500 = 5,000,000 pixels is above the limit of 4,000,000"
    with pytest.raises(ImageError) as info:  # above twice our limit: Pillow's own error, in our words
        decode_image(png_bytes(Image.new("L", (3000, 3000), 80)), name="bomb.png", max_pixels=4_000_000)
    assert str(info.value) == "bomb.png: 9,000,000 pixels is above the limit of 4,000,000"
    assert info.value.status == "unsupported"


def test_an_mpo_camera_jpeg_decodes_its_first_image_by_the_fast_decoder(monkeypatch):
    """Cameras and phones write JPEGs with more images after the photo (MPO): the photo is the first, decoded
    by libjpeg-turbo as any JPEG, to Pillow's pixels."""
    import simplejpeg

    calls = []
    real = simplejpeg.decode_jpeg
    monkeypatch.setattr(simplejpeg, "decode_jpeg", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = synthetic_photo(np.random.default_rng(3), 96, 64, 1)
    out = io.BytesIO()
    first.save(out, "MPO", save_all=True, append_images=[Image.new("RGB", (96, 64), (0, 0, 255))], quality=90)
    opened = Image.open(io.BytesIO(out.getvalue()))
    assert opened.format == "MPO"
    decoded = decode_image(out.getvalue(), name="camera.jpg")
    assert calls == [1] and (decoded.rgb == np.asarray(opened.convert("RGB"))).all()
