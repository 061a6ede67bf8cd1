"""A recording's optional sidecar ``<file>.json``: where in the recording the ad starts.

``clip.mp4`` may have ``clip.json`` (or ``clip.mp4.json``) beside it, holding ``{"ad_offset_s": 2.4}``:
the ad starts 2.4 s into the recording. Without a sidecar the recording starts with the ad (offset 0). A
negative offset says the recording started that long after the ad began. Every problem raises
``SidecarError`` naming the file, which the video row records as ``bad_sidecar``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from ..exceptions import SidecarError

#: The keys a sidecar may hold (a misspelt key is an error, never a silent offset of 0).
SIDECAR_KEYS = ("ad_offset_s",)
#: Largest offset magnitude accepted, in seconds (the longest recording accepted is shorter).
MAX_OFFSET_S = 24 * 3600.0


def sidecar_paths(video: str | Path) -> tuple[Path, Path]:
    """The two names a sidecar may have: ``clip.json`` and ``clip.mp4.json`` for ``clip.mp4``."""
    path = Path(video)
    return path.with_suffix(".json"), path.with_name(path.name + ".json")


def find_sidecar(video: str | Path) -> Path | None:
    """The sidecar file of a recording, or None where it has none.

    Raises:
        SidecarError: both names exist (which one is meant cannot be told).
    """
    found = [p for p in dict.fromkeys(sidecar_paths(video)) if p.is_file()]
    if len(found) > 1:
        raise SidecarError(f"{found[0]}: two sidecars for one video; keep one of {[str(p) for p in found]}. "
                           f"Received: video={str(video)!r}")
    return found[0] if found else None


def sidecar_stamp(video: str | Path) -> str | None:
    """What the sidecars beside a recording are now (``name:size:mtime_ns`` of each, ``;``-joined), or None where
    it has none: a run redoes a recording whose stamp differs from the one stored with it."""
    stamps = []
    for path in dict.fromkeys(sidecar_paths(video)):
        try:
            st = path.stat()
        except OSError:
            continue
        stamps.append(f"{path.name}:{st.st_size}:{st.st_mtime_ns}")
    return ";".join(stamps) or None


def parse_sidecar(text: str | bytes, *, name: str) -> float:
    """The ad offset in seconds from a sidecar's content.

    Args:
        text: the file's content: a JSON object with ``ad_offset_s``, a finite number of seconds.
        name: the sidecar's path, for messages.

    Raises:
        SidecarError: not UTF-8 JSON, not an object, unknown keys, no ``ad_offset_s``, or an offset that is
            not a finite number within ``MAX_OFFSET_S``.
    """
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SidecarError(f"{name}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise SidecarError(f"{name}: a sidecar must be a JSON object like {{\"ad_offset_s\": 2.4}}. "
                           f"Received: {type(data).__name__}")
    unknown = sorted(set(data) - set(SIDECAR_KEYS))
    if unknown:
        raise SidecarError(f"{name}: unknown keys {unknown}; a sidecar may hold {list(SIDECAR_KEYS)}. "
                           f"Received: keys={sorted(data)}")
    if "ad_offset_s" not in data:
        raise SidecarError(f"{name}: ad_offset_s is missing. Received: keys={sorted(data)}")
    value = data["ad_offset_s"]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SidecarError(f"{name}: ad_offset_s must be a finite number of seconds. Received: ad_offset_s={value!r}")
    if abs(value) > MAX_OFFSET_S:
        raise SidecarError(f"{name}: ad_offset_s must lie within +-{MAX_OFFSET_S:,.0f} s. "
                           f"Received: ad_offset_s={value!r}")
    return float(value)


def read_sidecar(video: str | Path) -> float:
    """The ad offset of a recording in seconds: its sidecar's ``ad_offset_s``, 0.0 without a sidecar.

    Raises:
        SidecarError: the sidecar cannot be read or is invalid (``parse_sidecar``).
    """
    path = find_sidecar(video)
    if path is None:
        return 0.0
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SidecarError(f"{path}: the sidecar cannot be read ({exc.strerror or exc})") from exc
    return parse_sidecar(data, name=str(path))
