"""Walk ``ROOT/<campaign>/<ad>/**/<image>`` and list candidate image files, cheaply (no decoding).

Hidden files and folders (a leading ``.``) and files whose extension is not an image's are skipped
and counted; folders that cannot be read are recorded, never fatal.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .exceptions import ConfigError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})


@dataclass(frozen=True)
class Candidate:
    """An image file found under ROOT; ``path`` is relative to ROOT with forward slashes."""

    campaign: str
    ad: str
    path: str
    size: int
    mtime_ns: int


@dataclass
class WalkStats:
    hidden: int = 0
    not_image: int = 0
    outside_ad: int = 0
    unreadable_dirs: list[tuple[str, str]] = field(default_factory=list)


def _scandir(path: Path, stats: WalkStats, root: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(path) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError as exc:
        rel = path.relative_to(root).as_posix()
        stats.unreadable_dirs.append((rel, exc.strerror or str(exc)))
        log.warning("cannot read folder %s: %s", path, exc.strerror or exc)
        return []


def _files_under(folder: Path, root: Path, stats: WalkStats) -> Iterator[tuple[Path, os.stat_result]]:
    for entry in _scandir(folder, stats, root):
        if entry.name.startswith("."):
            stats.hidden += 1
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                yield from _files_under(Path(entry.path), root, stats)
            elif entry.is_file():
                if Path(entry.name).suffix.lower() not in IMAGE_EXTENSIONS:
                    stats.not_image += 1
                    continue
                yield Path(entry.path), entry.stat()
        except OSError as exc:
            stats.unreadable_dirs.append((Path(entry.path).relative_to(root).as_posix(), exc.strerror or str(exc)))


def walk_ads(root: str | Path, stats: WalkStats | None = None) -> Iterator[tuple[str, str, list[Candidate]]]:
    """Yield ``(campaign, ad, candidates)`` for every ad folder under ``root``, in name order.

    Raises:
        ConfigError: ``root`` is not a readable folder.
    """
    base = Path(root)
    if not base.is_dir():
        raise ConfigError(f"ROOT must be a folder of campaigns. Received: root={str(root)!r}")
    try:
        os.listdir(base)
    except OSError as exc:
        raise ConfigError(f"ROOT cannot be read ({exc.strerror}). Received: root={str(root)!r}") from exc
    stats = stats if stats is not None else WalkStats()
    for campaign in _scandir(base, stats, base):
        if campaign.name.startswith("."):
            stats.hidden += 1
            continue
        if not campaign.is_dir(follow_symlinks=False):
            stats.outside_ad += 1
            continue
        for ad in _scandir(Path(campaign.path), stats, base):
            if ad.name.startswith("."):
                stats.hidden += 1
                continue
            if not ad.is_dir(follow_symlinks=False):
                stats.outside_ad += 1
                continue
            found = [
                Candidate(campaign.name, ad.name, p.relative_to(base).as_posix(), st.st_size, st.st_mtime_ns)
                for p, st in _files_under(Path(ad.path), base, stats)
            ]
            yield campaign.name, ad.name, found
