"""Shared pieces of the serving tests (tests/test_serve*.py): photos with known faces, a free port (the built
detector, ``blazeface``, is a fixture of conftest.py)."""

from __future__ import annotations

import socket

import numpy as np

from emotion_batch.sample import jpeg_bytes, no_face_photo, synthetic_photo

from .conftest import png_bytes  # noqa: F401  (the serving tests import it from here)


def group_photo(seed: int = 1, faces: int = 2, size: tuple[int, int] = (640, 480)) -> tuple[bytes, list]:
    """JPEG bytes of a photo with ``faces`` real faces, and their true boxes ``(x, y, w, h, profile)``."""
    boxes: list = []
    photo = synthetic_photo(np.random.default_rng(seed), size[0], size[1], faces, boxes=boxes)
    return jpeg_bytes(photo), boxes


def packshot() -> bytes:
    return jpeg_bytes(no_face_photo(np.random.default_rng(0), 640, 480))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
