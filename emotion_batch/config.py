"""One settings object built from command-line options and the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass

from .store.session import DEFAULT_DB

ENV_DB = "EMOTION_BATCH_DB"
ENV_REPORTS = "EMOTION_BATCH_REPORTS"


@dataclass
class Settings:
    """Where results go and how reports are made."""

    db: str = DEFAULT_DB
    reports: str = "reports"
    min_faces: int = 10
    paper: str = "a4"
    examples: bool = False
    report_workers: int | None = None
    model: str | None = None
    model_sha256: str | None = None
    backend: str = "auto"  # classifier backend: auto | keras | litert (classifier.choose_backend)

    @classmethod
    def from_options(cls, *, db: str | None = None, reports: str | None = None, **kwargs) -> "Settings":
        """Options win over the environment (``EMOTION_BATCH_DB``, ``EMOTION_BATCH_REPORTS``), which wins over defaults."""
        return cls(
            db=db or os.environ.get(ENV_DB) or DEFAULT_DB,
            reports=reports or os.environ.get(ENV_REPORTS) or "reports",
            **{k: v for k, v in kwargs.items() if v is not None},
        )
