"""Where the shipped assets (templates, models, sql) live, in a source tree and in an installed package."""

from __future__ import annotations

from pathlib import Path

from .exceptions import ConfigError

ASSET_KINDS = ("templates", "models", "sql")


def asset_dir(kind: str) -> Path:
    """Return the folder of one kind of asset.

    In a source tree (or an editable install) the top-level folder is used; a wheel carries the same
    files in ``emotion_batch/_assets/<kind>``.
    """
    if kind not in ASSET_KINDS:
        raise ConfigError(f"kind must be one of {list(ASSET_KINDS)}. Received: kind={kind!r}")
    here = Path(__file__).resolve().parent
    tried = [here.parent / kind, here / "_assets" / kind]
    for path in tried:
        if path.is_dir():
            return path
    raise ConfigError(f"The {kind!r} assets are missing; looked in {[str(p) for p in tried]}")
