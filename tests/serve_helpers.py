"""Shared pieces of the serving tests (tests/test_serve*.py): photos with known faces, a built detector, an app."""

from __future__ import annotations

import io
import socket

import numpy as np
import pytest
from PIL import Image

from emotion_batch.sample import jpeg_bytes, no_face_photo, synthetic_photo


def group_photo(seed: int = 1, faces: int = 2, size: tuple[int, int] = (640, 480)) -> tuple[bytes, list]:
    """JPEG bytes of a photo with ``faces`` real faces, and their true boxes ``(x, y, w, h, profile)``."""
    boxes: list = []
    photo = synthetic_photo(np.random.default_rng(seed), size[0], size[1], faces, boxes=boxes)
    return jpeg_bytes(photo), boxes


def packshot() -> bytes:
    return jpeg_bytes(no_face_photo(np.random.default_rng(0), 640, 480))


def png_bytes(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def blazeface():
    from emotion_batch.faces import build_detector

    return build_detector("blazeface")
