"""emotion_batch: apparent facial expressions in ad-campaign photos, in batches, stored in SQL, reported per ad.

The public API is re-exported here and imported on first use, so ``import emotion_batch`` (and the
CLI's ``--help``) stays fast and never imports TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "EMOTIONS": "labels",
    "EmotionBatchError": "exceptions",
    "Classifier": "classifier",
    "RunOptions": "pipeline",
    "RunSummary": "pipeline",
    "run_batch": "pipeline",
    "run_job": "jobs",
    "report_job": "jobs",
    "Settings": "config",
    "build_detector": "faces",
    "decode_image": "imaging",
    "face_to_tensor": "preprocess",
    "render_ad_reports": "reports",
    "render_reports": "reports",
    "ReportOptions": "reports",
    "ad_summary": "aggregate",
    "make_engine": "store.session",
    "init_db": "store.session",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'emotion_batch' has no attribute {name!r}")
