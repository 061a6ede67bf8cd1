"""Walk ``ROOT/<campaign>/<ad>/**/<image>`` and list candidate image files, cheaply (no decoding), and, with
``videos=True``, the viewer recordings beside them (``VIDEO_EXTENSIONS``; ``Candidate.kind``).

Hidden files and folders (a leading ``.``) and files whose extension is not an image's are skipped
and counted; folders that cannot be read are recorded, never fatal. Special files (FIFOs, sockets,
devices) and dangling symbolic links are skipped and counted. Symbolic links to files inside ROOT are
followed; links to files outside ROOT are skipped and counted unless ``follow_symlinks`` is set (a
nightly job over a shared folder should not read what a link points it to elsewhere); links to folders
are never followed (no loops). The walk is iterative: any depth of nested folders works.
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
#: File suffixes read as viewer recordings (lower case).
VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".m4v", ".webm", ".mkv", ".avi"})
#: Values of ``Candidate.kind``.
KINDS = ("image", "video")


@dataclass(frozen=True, slots=True)
class Candidate:
    """An image (or, ``kind="video"``, a recording) found under ROOT; ``path`` is relative to ROOT with forward
    slashes. (Slots: a run holds one per file of ROOT, ``Walk``.)"""

    campaign: str
    ad: str
    path: str
    size: int
    mtime_ns: int
    kind: str = "image"


@dataclass
class WalkStats:
    """What a walk skipped, by cause, and the folders it could not read (``(path, reason)``)."""

    hidden: int = 0
    not_image: int = 0  # neither an image nor, when videos are walked, a video
    outside_ad: int = 0
    special: int = 0  # FIFOs, sockets, devices, dangling links, links to folders
    links_outside: int = 0  # links to files outside ROOT, not followed
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


def _files_under(folder: Path, root: Path, stats: WalkStats, follow_symlinks: bool = False,
                 suffixes: frozenset[str] = IMAGE_EXTENSIONS) -> Iterator[tuple[Path, os.stat_result]]:
    """Files below ``folder`` with one of ``suffixes``, depth first in name order, with an explicit stack (no
    recursion limit)."""
    real_root = root.resolve()
    stack = [iter(_scandir(folder, stats, root))]
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            continue
        if entry.name.startswith("."):
            stats.hidden += 1
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                stack.append(iter(_scandir(Path(entry.path), stats, root)))
            elif entry.is_symlink() and not entry.is_file():  # dangling, or a link to a folder or a FIFO
                stats.special += 1
            elif entry.is_file():
                if Path(entry.name).suffix.lower() not in suffixes:
                    stats.not_image += 1
                    continue
                if entry.is_symlink() and not follow_symlinks and not Path(entry.path).resolve().is_relative_to(real_root):
                    stats.links_outside += 1
                    log.info("not following %s: it links outside ROOT (--follow-symlinks allows it)", entry.path)
                    continue
                yield Path(entry.path), entry.stat()
            else:
                stats.special += 1  # FIFO, socket, device: reading one could block the run
        except OSError as exc:
            stats.unreadable_dirs.append((Path(entry.path).relative_to(root).as_posix(), exc.strerror or str(exc)))


def walk_ads(root: str | Path, stats: WalkStats | None = None, *, follow_symlinks: bool = False,
             videos: bool = False) -> Iterator[tuple[str, str, list[Candidate]]]:
    """Yield ``(campaign, ad, candidates)`` for every ad folder under ``root``, in name order.

    ``follow_symlinks`` also takes files that symbolic links point to outside ``root``. ``videos`` also
    yields the ad's recordings (``kind="video"``, after its images); without it they count as ``not_image``.

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
            suffixes = IMAGE_EXTENSIONS | VIDEO_EXTENSIONS if videos else IMAGE_EXTENSIONS
            found = [
                Candidate(campaign.name, ad.name, p.relative_to(base).as_posix(), st.st_size, st.st_mtime_ns,
                          "video" if p.suffix.lower() in VIDEO_EXTENSIONS else "image")
                for p, st in _files_under(Path(ad.path), base, stats, follow_symlinks, suffixes)
            ]
            found.sort(key=lambda c: c.kind != "image")  # images first, each kind in walk order
            yield campaign.name, ad.name, found


@dataclass
class Walk:
    """One walk of ROOT, held whole: a run walks once (``walk_root``), sizes its progress bar from
    ``candidates`` and makes its tasks from ``ads`` (about 220 bytes a file: 21 MiB for 100,000).

    Attributes:
        ads: ``(campaign, ad, candidates)`` for every ad folder, as ``walk_ads`` yields them.
        stats: what the walk skipped.
    """

    ads: list[tuple[str, str, list[Candidate]]]
    stats: WalkStats

    @property
    def candidates(self) -> int:
        """The files found: images, and recordings where the walk took them."""
        return sum(len(found) for _, _, found in self.ads)


def walk_root(root: str | Path, *, follow_symlinks: bool = False, videos: bool = False) -> Walk:
    """Walk ROOT once, whole (``walk_ads`` with the same options).

    Raises:
        ConfigError: ``root`` is not a readable folder.
    """
    stats = WalkStats()
    return Walk(list(walk_ads(root, stats, follow_symlinks=follow_symlinks, videos=videos)), stats)
