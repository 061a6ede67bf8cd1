"""Follow faces across a recording's sampled frames and pick the viewer's.

Faces of consecutive sampled frames are linked by the overlap of their boxes (IoU, best pairs first); a
track survives up to ``max_gap`` frames without a face (a turned head, a blink of the detector). The
viewer is the track with the largest sum of face sides over its frames (large and there most of the
time); tracks that never share a frame with it and sit where it sits (a viewer who leaves and comes back)
join it. Every other face is counted, never traced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..exceptions import ConfigError
from ..faces.base import Face, iou_matrix

#: Smallest IoU between a track's last box and a face that continues it.
DEFAULT_LINK_IOU = 0.3
#: Sampled frames a track may miss before it ends (1 s at 5 frames a second).
DEFAULT_MAX_GAP = 5
#: Smallest IoU between the median boxes of the viewer's track and a later or earlier track that joins it.
DEFAULT_MERGE_IOU = 0.3


@dataclass
class Track:
    """One face followed across sampled frames.

    Attributes:
        id: the order in which tracks started (0, 1, ...).
        members: ``(frame position, face index)`` pairs, in frame order: the face ``faces[frame][index]``.
        boxes: the ``(x, y, w, h)`` of each member.
    """

    id: int
    members: list[tuple[int, int]] = field(default_factory=list)
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)

    @property
    def last_frame(self) -> int:
        return self.members[-1][0]

    @property
    def weight(self) -> float:
        """The sum of the face sides (``sqrt(w * h)``) over the track: large and long-lived weighs most."""
        b = np.asarray(self.boxes, dtype=np.float64)
        return float(np.sqrt(np.clip(b[:, 2] * b[:, 3], 0, None)).sum())

    def median_box(self) -> np.ndarray:
        return np.median(np.asarray(self.boxes, dtype=np.float64), axis=0)


@dataclass(frozen=True)
class ViewerTrack:
    """The viewer's faces in a recording and what else was seen.

    Attributes:
        faces: frame position -> index of the viewer's face in that frame's face list.
        tracks: the number of face tracks found (the viewer's pieces count once each).
        other_faces: faces that are not the viewer's, over all frames.
    """

    faces: dict[int, int]
    tracks: int
    other_faces: int


def link_tracks(frames: Sequence[Sequence[Face]], *, min_iou: float = DEFAULT_LINK_IOU,
                max_gap: int = DEFAULT_MAX_GAP) -> list[Track]:
    """Link the faces of consecutive sampled frames into tracks.

    Args:
        frames: the faces of every sampled frame, in time order (an empty list where none was found).
        min_iou: the smallest overlap that continues a track, in (0, 1].
        max_gap: frames a track may miss and still continue (0: it must continue in the next frame).

    Returns:
        Every track, in the order they started.
    """
    if not 0 < min_iou <= 1:
        raise ConfigError(f"min_iou must be in (0, 1]. Received: min_iou={min_iou!r}")
    if isinstance(max_gap, bool) or not isinstance(max_gap, int) or max_gap < 0:
        raise ConfigError(f"max_gap must be an integer >= 0. Received: max_gap={max_gap!r}")
    tracks: list[Track] = []
    active: list[Track] = []
    for position, faces in enumerate(frames):
        active = [t for t in active if position - t.last_frame <= max_gap + 1]
        boxes = np.asarray([f.box for f in faces], dtype=np.float64).reshape(-1, 4)
        taken: set[int] = set()
        if active and len(boxes):
            last = np.asarray([t.boxes[-1] for t in active], dtype=np.float64)
            overlap = iou_matrix(last, boxes)
            # best pairs first; a track takes one face, a face joins one track
            for flat in np.argsort(-overlap, axis=None, kind="stable"):
                ti, fi = divmod(int(flat), len(boxes))
                if overlap[ti, fi] < min_iou:
                    break
                track = active[ti]
                if fi in taken or track.last_frame == position:
                    continue
                track.members.append((position, fi))
                track.boxes.append(tuple(float(v) for v in boxes[fi]))
                taken.add(fi)
        for fi in range(len(boxes)):
            if fi not in taken:
                track = Track(id=len(tracks), members=[(position, fi)], boxes=[tuple(float(v) for v in boxes[fi])])
                tracks.append(track)
                active.append(track)
    return tracks


def viewer_track(frames: Sequence[Sequence[Face]], *, min_iou: float = DEFAULT_LINK_IOU,
                 max_gap: int = DEFAULT_MAX_GAP, merge_iou: float = DEFAULT_MERGE_IOU) -> ViewerTrack:
    """Pick the viewer's face in every sampled frame where it is seen.

    The heaviest track (``Track.weight``) is the viewer; then, heaviest first, every track that shares no
    frame with the viewer's and whose median box overlaps the viewer's median box by at least
    ``merge_iou`` joins it (the viewer left the picture for longer than ``max_gap`` and came back).

    Args:
        frames: the faces of every sampled frame, in time order.
        min_iou, max_gap: as in ``link_tracks``.
        merge_iou: the overlap of median boxes that joins a separate track to the viewer's, in (0, 1].

    Returns:
        The viewer's face per frame position, the number of tracks and the number of other faces.
    """
    if not 0 < merge_iou <= 1:
        raise ConfigError(f"merge_iou must be in (0, 1]. Received: merge_iou={merge_iou!r}")
    tracks = link_tracks(frames, min_iou=min_iou, max_gap=max_gap)
    total = sum(len(f) for f in frames)
    if not tracks:
        return ViewerTrack(faces={}, tracks=0, other_faces=total)
    ranked = sorted(tracks, key=lambda t: (-t.weight, t.id))
    main = ranked[0]
    chosen = dict(main.members)
    anchor = main.median_box()[None]
    for track in ranked[1:]:
        if any(position in chosen for position, _ in track.members):
            continue
        if iou_matrix(anchor, track.median_box()[None])[0, 0] >= merge_iou:
            chosen.update(track.members)
    return ViewerTrack(faces=dict(sorted(chosen.items())), tracks=len(tracks), other_faces=total - len(chosen))
