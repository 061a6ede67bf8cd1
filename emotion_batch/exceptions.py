"""Errors raised by the emotion_batch library.

The library raises these and never exits; only the command line turns them into exit codes (once, in
``cli_common.Commands``, the group of ``cli.py``).
"""

from __future__ import annotations


class EmotionBatchError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(EmotionBatchError):
    """An option or setting has a value that cannot be used."""


class ModelError(EmotionBatchError):
    """The classifier model is missing, corrupt or does not match its recorded hash."""


class DetectorError(EmotionBatchError):
    """A face detector could not be built (missing package or model file)."""


class DatabaseError(EmotionBatchError):
    """The database cannot be reached or written."""


class RunLockedError(DatabaseError):
    """Another emotion-batch run holds the lock on this database."""


class SchemaError(DatabaseError):
    """The database schema is older (or newer) than this emotion-batch expects; the message says what to run."""


class EngineError(EmotionBatchError):
    """A distributed engine (Ray) is not installed, cannot be reached, or failed during a run."""


class ImageError(EmotionBatchError):
    """One image could not be read; recorded on the image row, never fatal for a batch."""

    def __init__(self, message: str, *, status: str = "unreadable") -> None:
        super().__init__(message)
        self.status = status


class UploadError(EmotionBatchError):
    """An uploaded file or request cannot be used; ``code`` and ``http_status`` say why (the API's 4xx)."""

    def __init__(self, message: str, *, code: str, http_status: int = 422) -> None:
        super().__init__(message)
        self.code = code
        self.http_status = http_status


class DataError(EmotionBatchError):
    """A training or evaluation data source is missing or malformed."""


class ReportError(EmotionBatchError):
    """A report could not be rendered."""


class VideoError(EmotionBatchError):
    """One video could not be read; recorded on the video row, never fatal for a batch.

    ``status`` is what the row records: ``unreadable`` (not a video, truncated or corrupt stream, no video
    stream, no frame), ``unsupported`` (a codec this FFmpeg build cannot decode, frames or a duration
    beyond the limits) or ``bad_sidecar`` (``SidecarError``).
    """

    def __init__(self, message: str, *, status: str = "unreadable") -> None:
        super().__init__(message)
        self.status = status


class SidecarError(VideoError):
    """A video's sidecar ``<file>.json`` is unreadable or says something that cannot be used."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status="bad_sidecar")
