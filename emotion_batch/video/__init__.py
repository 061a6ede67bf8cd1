"""Viewer videos: a consenting viewer's webcam recording of an ad -> the viewer's expression second by second.

- ``decode``: PyAV decoding, frames sampled by presentation time, rotation, limits, the bounded prefetch;
- ``sidecar``: ``<file>.json`` with ``ad_offset_s`` (where the ad starts in the recording);
- ``tracking``: faces followed across sampled frames, the viewer's track;
- ``analysis``: one recording -> ``video_frames`` rows and a ``videos`` row (``analyze_video``);
- ``trace``: the viewers' frames of one ad -> the second-by-second trace and its strongest moments;
- ``synthetic``: videos made at run time (tests, benchmarks, the sample campaign).

Names are imported on first use, so importing this package imports neither PyAV nor polars.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DEFAULT_SAMPLE_FPS": "decode",
    "VIDEO_STATUSES": "decode",
    "SampledFrame": "decode",
    "VideoInfo": "decode",
    "VideoReader": "decode",
    "open_video": "decode",
    "prefetch": "decode",
    "probe_video": "decode",
    "find_sidecar": "sidecar",
    "parse_sidecar": "sidecar",
    "read_sidecar": "sidecar",
    "Track": "tracking",
    "ViewerTrack": "tracking",
    "link_tracks": "tracking",
    "viewer_track": "tracking",
    "FrameResult": "analysis",
    "VideoAnalysis": "analysis",
    "VideoStats": "analysis",
    "analyze_video": "analysis",
    "Moment": "trace",
    "second_trace": "trace",
    "strongest_moments": "trace",
    "viewer_seconds": "trace",
    "Shown": "synthetic",
    "make_viewer_video": "synthetic",
    "viewer_schedule": "synthetic",
    "write_video": "synthetic",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'emotion_batch.video' has no attribute {name!r}")
