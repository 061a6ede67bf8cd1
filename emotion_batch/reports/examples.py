"""Example faces for a report (``--examples``): crops of the most confident faces per expression.

Face images are personal data, so crops exist only in memory and inside the report itself, as small
``data:`` URIs; nothing is written anywhere else. The images are read again from the folder their run
recorded (``runs.root``); a path that would leave that folder is refused, and an image that cannot be
read any more is reported as such in the report.
"""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..aggregate import ExampleFace
from ..exceptions import ImageError
from ..labels import EMOTIONS

__all__ = ["ExampleThumb", "THUMB_PIXELS", "example_thumbnails"]

log = logging.getLogger(__name__)

#: Side of a thumbnail in pixels (shown at about 18 mm, so about 150 dpi in print).
THUMB_PIXELS = 112
#: Extra context around the detected box, as a share of its size on each side.
MARGIN = 0.15
#: Images larger than this are not read again for an example.
MAX_EXAMPLE_BYTES = 64 * 2**20


@dataclass(frozen=True)
class ExampleThumb:
    """One example face as the report shows it: a ``data:`` URI, or why there is none."""

    emotion: str
    rank: int
    probability: float
    uri: Optional[str]
    problem: Optional[str]


def _read(root: Optional[str], image_path: str) -> bytes:
    if not root:
        raise ImageError("the run that stored it recorded no folder")
    base = Path(root).resolve()
    path = (base / image_path).resolve()
    if not path.is_relative_to(base):
        raise ImageError("its stored path leaves the run's folder")
    try:
        if path.stat().st_size > MAX_EXAMPLE_BYTES:
            raise ImageError("the file is too large to read again")
        return path.read_bytes()
    except OSError as exc:
        raise ImageError(f"not readable under the run's folder ({exc.strerror or type(exc).__name__})") from exc


def _crop(data: bytes, name: str, box: tuple[float, float, float, float]) -> str:
    from PIL import Image

    from ..imaging import decode_image

    decoded = decode_image(data, name=name)
    x, y, w, h = (v / decoded.scale for v in box)
    side = max(w, h) * (1.0 + 2 * MARGIN)
    cx, cy = x + w / 2, y + h / 2
    height, width = decoded.rgb.shape[:2]
    left, top = max(int(cx - side / 2), 0), max(int(cy - side / 2), 0)
    right, bottom = min(int(cx + side / 2), width), min(int(cy + side / 2), height)
    if right - left < 2 or bottom - top < 2:
        raise ImageError("the face box lies outside the image")
    face = Image.fromarray(decoded.rgb[top:bottom, left:right])
    face.thumbnail((THUMB_PIXELS, THUMB_PIXELS), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    face.save(out, "JPEG", quality=82, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def example_thumbnails(examples: Sequence[ExampleFace]) -> tuple[dict[str, list[ExampleThumb]], int]:
    """Crop every example face from its image, reading each image once.

    Args:
        examples: the ``AdReportData.examples`` of one ad.

    Returns:
        ``(thumbs, unreadable)``: the thumbnails per emotion (``EMOTIONS`` order, only emotions with
        examples) and how many examples could not be cropped (each thumb says why).
    """
    cache: dict[tuple[Optional[str], str], object] = {}
    thumbs: dict[str, list[ExampleThumb]] = {}
    failed = 0
    for example in sorted(examples, key=lambda x: (EMOTIONS.index(x.emotion), x.rank)):
        key = (example.run_root, example.image_path)
        uri, problem = None, None
        try:
            if key not in cache:
                try:
                    cache[key] = _read(*key)
                except ImageError as exc:
                    cache[key] = exc
            data = cache[key]
            if isinstance(data, ImageError):
                raise data
            uri = _crop(data, example.image_path, example.box)
        except ImageError as exc:
            problem = str(exc).split(": ", 1)[-1] if ": " in str(exc) else str(exc)
            failed += 1
            log.info("No example crop of %s: %s", example.image_path, problem)
        thumbs.setdefault(example.emotion, []).append(
            ExampleThumb(example.emotion, example.rank, example.probability, uri, problem))
    return thumbs, failed
