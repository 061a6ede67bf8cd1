"""Training and evaluation data: the shared FER2013 CSV (+ FER+ votes) and class-per-folder trees.

Every source returns a ``FaceSet`` of model-ready ``uint8`` tensors made by
``preprocess.face_to_tensor``, the same function the batch job uses.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..exceptions import DataError
from ..labels import EMOTIONS, FER2013_TO_INDEX, FERPLUS_COLUMNS, NUM_CLASSES, emotion_index
from ..preprocess import face_to_tensor

log = logging.getLogger(__name__)

#: FER2013 ``Usage`` value of each split name we use.
FER_SPLITS = {"train": "Training", "valid": "PublicTest", "test": "PrivateTest"}
LABEL_MODES = ("original", "ferplus-majority", "ferplus-soft")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


@dataclass
class FaceSet:
    """Faces and their labels.

    Attributes:
        x: ``uint8`` tensors, shape ``(n, size, size, channels)``.
        y: hard labels (our class index), shape ``(n,)``.
        soft: label distributions, shape ``(n, 7)``; one-hot of ``y`` when no votes exist.
        source: where the faces came from, for model cards.
    """

    x: np.ndarray
    y: np.ndarray
    soft: np.ndarray
    source: str

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def subset(self, index: np.ndarray) -> "FaceSet":
        return FaceSet(self.x[index], self.y[index], self.soft[index], self.source)

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.y, minlength=NUM_CLASSES)
        return {name: int(c) for name, c in zip(EMOTIONS, counts)}


def _one_hot(y: np.ndarray) -> np.ndarray:
    soft = np.zeros((y.shape[0], NUM_CLASSES), dtype=np.float32)
    soft[np.arange(y.shape[0]), y] = 1.0
    return soft


def _read_csv_rows(path: Path) -> list[dict[str, str]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="") as handle:
        return list(csv.DictReader(handle))


def fer2013_dir(root: str | Path) -> Path:
    """Return the FER2013 folder, raising ``DataError`` naming what is missing."""
    folder = Path(root)
    if not (folder / "fer2013.csv.gz").is_file() and not (folder / "fer2013.csv").is_file():
        raise DataError(f"No fer2013.csv(.gz) in the data folder. Received: root={str(folder)!r}")
    return folder


def load_fer2013(
    root: str | Path,
    *,
    split: str,
    size: int = 48,
    channels: int = 1,
    labels: str = "original",
    limit: int | None = None,
) -> FaceSet:
    """Load one split of the FER2013 CSV.

    Args:
        root: folder holding ``fer2013.csv.gz`` (and ``fer2013new.csv.gz``, ``row_index.csv.gz`` for FER+).
        split: ``train`` (Training), ``valid`` (PublicTest) or ``test`` (PrivateTest).
        size: model input side; 48 leaves the pixels untouched.
        channels: 1 or 3.
        labels: ``original`` FER2013 labels, ``ferplus-majority`` (rows without a clear FER+ majority among
            the seven classes are dropped) or ``ferplus-soft`` (vote distributions, hard label = majority).
        limit: keep only the first ``limit`` rows of the split (tests and smoke runs).

    Returns:
        The split as a ``FaceSet``.
    """
    if split not in FER_SPLITS:
        raise DataError(f"split must be one of {sorted(FER_SPLITS)}. Received: split={split!r}")
    if labels not in LABEL_MODES:
        raise DataError(f"labels must be one of {list(LABEL_MODES)}. Received: labels={labels!r}")
    folder = fer2013_dir(root)
    main = folder / "fer2013.csv.gz"
    if not main.is_file():
        main = folder / "fer2013.csv"
    usage = FER_SPLITS[split]
    rows = [r for r in _read_csv_rows(main) if r["Usage"] == usage]
    orig_rows = _ferplus_rows(folder, usage, len(rows)) if labels != "original" else None
    if limit is not None:
        rows = rows[:limit]
        orig_rows = orig_rows[:limit] if orig_rows is not None else None

    n = len(rows)
    x = np.empty((n, size, size, channels), dtype=np.uint8)
    y = np.empty((n,), dtype=np.int64)
    for i, row in enumerate(rows):
        pixels = np.array(row["pixels"].split(), dtype=np.uint8)
        if pixels.size != 48 * 48:
            raise DataError(f"FER2013 row {i} of {split!r} has {pixels.size} pixels, expected 2304")
        x[i] = face_to_tensor(pixels.reshape(48, 48), None, size=size, channels=channels)
        y[i] = FER2013_TO_INDEX[int(row["emotion"])]
    soft = _one_hot(y)
    source = f"FER2013 {usage} ({labels} labels)"

    if orig_rows is not None:
        votes = _ferplus_votes(folder, orig_rows)
        totals = votes.sum(axis=1)
        keep = _majority(votes) >= 0
        x, votes, totals = x[keep], votes[keep], totals[keep]
        y = votes.argmax(axis=1).astype(np.int64)
        soft = votes / totals[:, None] if labels == "ferplus-soft" else _one_hot(y)
        log.info("FER+ %s: kept %d of %d rows with a clear majority", split, int(keep.sum()), n)
    return FaceSet(x=x, y=y, soft=soft.astype(np.float32), source=source)


def _ferplus_rows(folder: Path, usage: str, expected: int) -> list[int]:
    """Rows of the FER+ vote file for the FER2013 rows of one split, in their order."""
    index_path = folder / "row_index.csv.gz"
    votes_path = folder / "fer2013new.csv.gz"
    if not index_path.is_file() or not votes_path.is_file():
        raise DataError(f"FER+ labels need row_index.csv.gz and fer2013new.csv.gz. Received: root={str(folder)!r}")
    orig_rows = [int(r["orig_row"]) for r in _read_csv_rows(index_path) if r["Usage"] == usage]
    if len(orig_rows) != expected:
        raise DataError(f"row_index.csv.gz does not line up with fer2013.csv for split {usage!r}")
    return orig_rows


def _majority(votes: np.ndarray) -> np.ndarray:
    """The class with a clear majority of each row's votes, -1 where none has one: the top class must hold
    more than half of the votes cast on the seven classes, alone."""
    totals = votes.sum(axis=1)
    top = votes.max(axis=1)
    clear = (totals > 0) & (top > totals / 2.0) & ((votes == top[:, None]).sum(axis=1) == 1)
    return np.where(clear, votes.argmax(axis=1), -1).astype(np.int64)


def ferplus_majority(root: str | Path, *, split: str, limit: int | None = None) -> np.ndarray:
    """The FER+ majority label of every row of a FER2013 split, in the CSV's order (the rows
    ``load_fer2013(..., labels="original")`` returns), ``-1`` where the annotators gave no clear majority
    among our seven classes (the rows ``labels="ferplus-majority"`` drops); ``limit`` keeps the first rows only,
    as ``load_fer2013``'s does.

    Raises:
        DataError: an unknown split, or a folder without the FER+ files (``row_index.csv.gz``,
            ``fer2013new.csv.gz``).
    """
    if split not in FER_SPLITS:
        raise DataError(f"split must be one of {sorted(FER_SPLITS)}. Received: split={split!r}")
    folder = fer2013_dir(root)
    usage = FER_SPLITS[split]
    orig_rows = _ferplus_rows(folder, usage, _count_rows(folder, usage))
    return _majority(_ferplus_votes(folder, orig_rows[:limit] if limit is not None else orig_rows))


def _ferplus_votes(folder: Path, orig_rows: list[int]) -> np.ndarray:
    """FER+ votes on our seven classes, shape ``(len(orig_rows), 7)`` (contempt, unknown and NF left out)."""
    vote_rows = _read_csv_rows(folder / "fer2013new.csv.gz")
    votes = np.zeros((len(orig_rows), NUM_CLASSES), dtype=np.float32)
    for i, orig in enumerate(orig_rows):
        vr = vote_rows[orig]
        for column, name in FERPLUS_COLUMNS.items():
            votes[i, EMOTIONS.index(name)] = float(vr[column] or 0)
    return votes


def ferplus_soft_mix(root: str | Path, faces: FaceSet, *, split: str, weight: float,
                     limit: int | None = None) -> FaceSet:
    """Mix FER+ vote shares into the (original-label) targets of a FER2013 split: ``(1 - w) * soft + w * votes``.

    A second, soft target beside the original labels: cross-entropy against the mix equals the original
    loss plus ``w`` times the KL divergence to the votes (up to a constant). Rows without FER+ votes on
    our seven classes keep their original target. ``faces`` must be the split as ``load_fer2013`` returned
    it with the original labels, before any cleaning.
    """
    if not 0.0 <= weight <= 1.0:
        raise DataError(f"The FER+ weight must be within 0..1. Received: weight={weight!r}")
    folder = fer2013_dir(root)
    orig_rows = _ferplus_rows(folder, FER_SPLITS[split], _count_rows(folder, FER_SPLITS[split]))
    if limit is not None:
        orig_rows = orig_rows[:limit]
    if len(orig_rows) != len(faces):
        raise DataError(f"The faces do not line up with the FER+ rows of {split!r}: {len(faces)} vs {len(orig_rows)}")
    votes = _ferplus_votes(folder, orig_rows)
    totals = votes.sum(axis=1, keepdims=True)
    has = totals[:, 0] > 0
    shares = np.where(has[:, None], votes / np.maximum(totals, 1.0), faces.soft)
    soft = ((1.0 - weight) * faces.soft + weight * shares).astype(np.float32)
    return FaceSet(faces.x, faces.y, soft, f"{faces.source} + FER+ votes (weight {weight:g})")


def _count_rows(folder: Path, usage: str) -> int:
    main = folder / "fer2013.csv.gz"
    if not main.is_file():
        main = folder / "fer2013.csv"
    return sum(1 for r in _read_csv_rows(main) if r["Usage"] == usage)


def load_folder_tree(
    root: str | Path, *, split: str, size: int = 48, channels: int = 1, min_side: int = 16
) -> FaceSet:
    """Load ``root/<split>/<emotion>/*`` (the MMAFEDB layout): every image is one face crop.

    Images smaller than ``min_side`` or unreadable are skipped with a log line.
    """
    from ..imaging import ImageError, decode_image  # local: imaging pulls Pillow plugins only when needed

    base = Path(root) / split
    if not base.is_dir():
        raise DataError(f"No {split!r} folder under the data root. Received: root={str(root)!r}")
    xs: list[np.ndarray] = []
    ys: list[int] = []
    for class_dir in sorted(p for p in base.iterdir() if p.is_dir()):
        try:
            label = emotion_index(class_dir.name)
        except KeyError:
            log.warning("skipping folder %s: not an emotion name", class_dir)
            continue
        for path in sorted(class_dir.rglob("*")):
            if path.suffix.lower() not in IMAGE_SUFFIXES or path.name.startswith("."):
                continue
            try:
                decoded = decode_image(path.read_bytes(), name=str(path))
            except (ImageError, OSError) as exc:
                log.warning("skipping %s: %s", path, exc)
                continue
            if min(decoded.rgb.shape[:2]) < min_side:
                log.warning("skipping %s: smaller than %d px", path, min_side)
                continue
            xs.append(face_to_tensor(decoded.rgb, None, size=size, channels=channels))
            ys.append(label)
    if not xs:
        raise DataError(f"No readable face images under {str(base)!r}")
    y = np.asarray(ys, dtype=np.int64)
    return FaceSet(x=np.stack(xs), y=y, soft=_one_hot(y), source=f"folder tree {str(base)!r}")


def clean(train: FaceSet, *others: FaceSet, min_std: float = 3.0) -> tuple[FaceSet, dict[str, int]]:
    """Drop unusable training faces: blank (pixel std below ``min_std``), duplicates, and exact copies of
    faces in ``others`` (validation/test), which would leak evaluation data into training.

    Returns:
        The cleaned training set and the number dropped for each reason.
    """
    flat = train.x.reshape(len(train), -1)
    blank = flat.std(axis=1) < min_std
    digests = [hashlib.blake2b(row.tobytes(), digest_size=12).digest() for row in flat]
    held_out = {
        hashlib.blake2b(row.tobytes(), digest_size=12).digest()
        for other in others
        for row in other.x.reshape(len(other), -1)
    }
    seen: set[bytes] = set()
    duplicate = np.zeros(len(train), dtype=bool)
    leaked = np.zeros(len(train), dtype=bool)
    for i, d in enumerate(digests):
        if d in held_out:
            leaked[i] = True
        elif d in seen:
            duplicate[i] = True
        seen.add(d)
    keep = ~(blank | duplicate | leaked)
    report = {"blank": int(blank.sum()), "duplicate": int((duplicate & ~blank).sum()),
              "in_eval_split": int((leaked & ~blank).sum()), "kept": int(keep.sum())}
    return train.subset(np.flatnonzero(keep)), report
