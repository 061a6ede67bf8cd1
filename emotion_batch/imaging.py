"""Decode image bytes into an oriented RGB array: EXIF orientation, every Pillow mode, size limits.

Failures raise ``ImageError`` whose ``status`` is what the image row records: ``unreadable`` (corrupt,
truncated, empty, not an image) or ``unsupported`` (too many pixels, animation frames beyond the first
are ignored, not refused).
"""

from __future__ import annotations

import datetime as dt
import io
import re
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from .exceptions import ImageError

#: Largest image accepted, in pixels (a 12,000 x 10,000 photo); larger ones are ``unsupported``.
DEFAULT_MAX_PIXELS = 120_000_000
#: Long side of the working copy faces are searched in; boxes are reported in original pixels.
DEFAULT_WORK_SIDE = 1920

_EXIF_IFD = 0x8769
_DATETIME_ORIGINAL = 36867
_DATETIME = 306


@dataclass
class Decoded:
    """An oriented image ready for detection.

    Attributes:
        rgb: ``uint8`` array ``(h, w, 3)``, at most ``work_side`` on its long side.
        width, height: size of the oriented original image in pixels.
        scale: ``original pixels / working pixels`` (1.0 when not reduced).
        captured_at: EXIF DateTimeOriginal (or DateTime) as naive-local time tagged UTC, when present.
    """

    rgb: np.ndarray
    width: int
    height: int
    scale: float
    captured_at: dt.datetime | None


def _captured_at(image: Image.Image) -> dt.datetime | None:
    try:
        exif = image.getexif()
        value = exif.get_ifd(_EXIF_IFD).get(_DATETIME_ORIGINAL) or exif.get(_DATETIME)
        if not value:
            return None
        return dt.datetime.strptime(str(value).strip("\x00 "), "%Y:%m:%d %H:%M:%S").replace(tzinfo=dt.timezone.utc)
    except (ValueError, TypeError, KeyError, OSError, SyntaxError):
        return None


def to_rgb(image: Image.Image) -> np.ndarray:
    """Any Pillow mode -> ``uint8`` RGB array. 16-bit and float images are scaled, not clipped;
    transparent pixels are composited on white."""
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(image).astype(np.float64)
        if mode.startswith("I;16"):
            arr = arr / 257.0
        else:
            lo, hi = float(arr.min()), float(arr.max())
            arr = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        gray = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
    if mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image)


def _dct_size(image: Image.Image, work_side: int) -> tuple[int, int] | None:
    """The least size a JPEG of at least twice ``work_side`` needs decoded (its own shape, ``work_side`` on
    the long side): its decoder then scales by DCT to that or a little larger. None for any other image."""
    width, height = image.size
    if not work_side or image.format not in ("JPEG", "MPO") or max(width, height) < 2 * work_side:
        return None
    factor = max(width, height) / work_side
    return int(np.ceil(width / factor)), int(np.ceil(height / factor))


def _turbo_jpeg(data: bytes, image: Image.Image, work_side: int) -> np.ndarray | None:
    """A JPEG's pixels as an RGB array, decoded by libjpeg-turbo straight into numpy (``simplejpeg``), or
    None where Pillow should decode it: not a JPEG (an MPO, a camera's JPEG with more images after it, is
    one: its first image is the photo), CMYK, or anything libjpeg-turbo warns about (a truncated or damaged
    file gets Pillow's verdict, as before). At full size pixel for pixel what Pillow decodes; at 1920x1080
    6.6 ms where Pillow's decode and its copy into numpy took 18-26 (``benchmarks/throughput.py --stages``).
    A JPEG of at least twice ``work_side`` is decoded smaller by libjpeg-turbo's DCT scaling (its factors
    run from 7/8 to 1/8: a 6000x4000 photo comes out at 3/8, 2250x1500), never below ``work_side``."""
    if image.format not in ("JPEG", "MPO") or image.mode not in ("RGB", "L"):
        return None
    try:
        import simplejpeg
    except ImportError:  # a declared dependency; an environment not reinstalled still decodes, with Pillow
        return None

    least = _dct_size(image, work_side)
    least = {"min_width": least[0], "min_height": least[1]} if least else {}
    try:
        return simplejpeg.decode_jpeg(data, colorspace="RGB", strict=True, **least)
    except (ValueError, RuntimeError, TypeError):
        return None


#: EXIF orientation -> the array operation that shows the photo upright (as ``ImageOps.exif_transpose``)
_UPRIGHT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, k=-1),
    7: lambda a: a.transpose(1, 0, 2)[::-1, ::-1],
    8: lambda a: np.rot90(a, k=1),
}


def _oriented(rgb: np.ndarray, orientation: int) -> np.ndarray:
    return _UPRIGHT[orientation](rgb) if orientation in _UPRIGHT else rgb


def decode_image(
    data: bytes, *, name: str, max_pixels: int = DEFAULT_MAX_PIXELS, work_side: int = DEFAULT_WORK_SIDE
) -> Decoded:
    """Decode one image file's bytes.

    Args:
        data: the file's content.
        name: the file's name, for messages.
        max_pixels: images with more pixels are refused as ``unsupported`` before their pixels are decoded.
        work_side: the working copy's long side; 0 keeps full resolution.

    Raises:
        ImageError: with ``status`` ``unreadable`` or ``unsupported``.
    """
    if not data:
        raise ImageError(f"{name}: empty file (0 bytes)", status="unreadable")
    # WeasyPrint sets this Pillow-wide flag to True when it is imported (reports, same process), which
    # would pad a truncated file with grey and call it readable: our policy is that it is unreadable.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    # Pillow's own decompression-bomb check (a warning above 89,478,485 pixels, an error above twice that, by
    # default) must not refuse what our limit allows: it is set from ours, its warning is left to our own check
    # just below (which names the size), and its error stops what is more than twice our limit.
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise ImageError(
                    f"{name}: {width}x{height} = {width * height:,} pixels is above the limit of {max_pixels:,}",
                    status="unsupported",
                )
            captured = _captured_at(image)
            orientation = image.getexif().get(0x0112, 1)
            fast = _turbo_jpeg(data, image, work_side)
            if fast is None:
                if (least := _dct_size(image, work_side)) is not None:
                    image.draft("RGB", least)  # Pillow's DCT scaling: 1/2..1/8
                image.load()
                image = ImageOps.exif_transpose(image) if orientation != 1 else image
            rgb_image = image
            if orientation in (5, 6, 7, 8):
                width, height = height, width
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:  # Pillow's words name its limit, twice ours: say ours
        found = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(found.group(1)):,} pixels" if found else "more pixels than that"
        raise ImageError(f"{name}: {size} is above the limit of {max_pixels:,}", status="unsupported") from exc
    except UnidentifiedImageError as exc:  # its text names an in-memory buffer's address: say it once, stably
        raise ImageError(f"{name}: not a readable image (UnidentifiedImageError: no known image format)",
                         status="unreadable") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"{name}: not a readable image ({type(exc).__name__}: {exc})", status="unreadable") from exc
    try:
        rgb = _oriented(fast, orientation) if fast is not None else to_rgb(rgb_image)
    except (OSError, ValueError) as exc:
        raise ImageError(f"{name}: pixels could not be converted ({exc})", status="unsupported") from exc
    h, w = rgb.shape[:2]
    if work_side and max(h, w) > work_side:
        import cv2

        factor = work_side / max(h, w)
        # OpenCV: a 4032x3024 JPEG decoded at half size goes to 1920x1440 in 5 ms bilinear, where Pillow's
        # resize and its copy back into numpy took 58; a larger reduction (a 3800x2850 JPEG, too small for
        # DCT scaling; a large PNG) takes the area filter, which does not alias (slower: 28-60 ms)
        flag = cv2.INTER_LINEAR if factor >= 0.75 else cv2.INTER_AREA
        rgb = cv2.resize(np.ascontiguousarray(rgb), (max(1, round(w * factor)), max(1, round(h * factor))),
                         interpolation=flag)
    scale = width / rgb.shape[1]
    return Decoded(rgb=np.ascontiguousarray(rgb), width=width, height=height, scale=scale, captured_at=captured)
