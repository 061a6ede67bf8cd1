"""The serving options: upload limits, micro-batching, and where (if anywhere) results are stored."""

from __future__ import annotations

from dataclasses import dataclass

from ..exceptions import ConfigError
from ..imaging import DEFAULT_WORK_SIDE

MIB = 1024 * 1024


@dataclass
class ServeSettings:
    """Options of ``emotion-batch serve``.

    Attributes:
        max_image_bytes: largest single image file accepted (HTTP 413 above).
        max_request_bytes: largest request body; checked on ``Content-Length`` and while the body streams in.
        max_files: most images in one ``/v1/predict/batch`` request.
        max_pixels: images with more pixels are refused before their pixels are decoded (decompression bombs).
        work_side: long side of the working copy faces are searched in (boxes come back in original pixels).
        level_eyes: turn each face crop so that its eyes are level, as in the batch job.
        batching: put concurrent requests' faces into one model call (``False``: one model call per request).
        batch_wait_ms: how long the first request of a batch waits for others.
        max_batch: most faces in one model call.
        db: SQLAlchemy URL of the batch job's database; requests naming a campaign and an ad are stored there.
            ``None`` stores nothing.
    """

    max_image_bytes: int = 20 * MIB
    max_request_bytes: int = 64 * MIB
    max_files: int = 16
    max_pixels: int = 50_000_000
    work_side: int = DEFAULT_WORK_SIDE
    level_eyes: bool = True
    batching: bool = True
    batch_wait_ms: float = 5.0
    max_batch: int = 256
    db: str | None = None

    def validate(self) -> None:
        for name in ("max_image_bytes", "max_request_bytes", "max_files", "max_pixels", "max_batch"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer. Received: {name}={value!r}")
        if self.max_request_bytes < self.max_image_bytes:
            raise ConfigError(
                "max_request_bytes must be at least max_image_bytes. "
                f"Received: max_request_bytes={self.max_request_bytes!r}, max_image_bytes={self.max_image_bytes!r}"
            )
        if self.batch_wait_ms < 0:
            raise ConfigError(f"batch_wait_ms must be 0 or more. Received: batch_wait_ms={self.batch_wait_ms!r}")
        if self.work_side < 0:
            raise ConfigError(f"work_side must be 0 or more. Received: work_side={self.work_side!r}")
