"""One uploaded file -> faces and model tensors, with the batch job's own functions: ``decode_image``,
the detectors and ``faces_to_tensors``. Nothing here knows about HTTP beyond ``UploadError``'s status."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np

from ..assets import asset_dir
from ..classifier import bundled_models, manifest_entry
from ..exceptions import EmotionBatchError, ImageError, UploadError
from ..faces import Detector, Face
from ..imaging import decode_image
from ..labels import EMOTIONS
from ..preprocess import faces_to_tensors
from .settings import MIB, ServeSettings

#: Image types accepted, recognised by their first bytes (the file name and the client's type are ignored).
#: Pillow opens more formats (EPS, PSD, ICO, ...); an allow-list keeps the service to ordinary photos.
MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
)
ACCEPTED_TYPES = ("image/jpeg", "image/png", "image/webp", "image/gif", "image/bmp", "image/tiff")


def sniff_image_type(data: bytes) -> str | None:
    """The media type of an accepted image format, from the file's first bytes; ``None`` for anything else."""
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    for magic, media_type in MAGIC:
        if data.startswith(magic):
            return media_type
    return None


def safe_filename(name: str | None) -> str:
    """The last path component of a client's file name, without control characters, at most 200 characters."""
    base = PurePosixPath((name or "").replace("\\", "/")).name
    base = "".join(ch for ch in base if ch.isprintable())[:200]
    return base if base not in ("", ".", "..") else "upload"


@dataclass
class Analysed:
    """One decoded upload with its faces (boxes in original pixels) and their model tensors."""

    filename: str
    media_type: str
    sha256: str
    size_bytes: int
    width: int
    height: int
    faces: list[Face]
    tensors: np.ndarray


def analyse_upload(data: bytes, *, filename: str, detector: Detector, size: int, channels: int,
                   settings: ServeSettings) -> Analysed:
    """Check, decode and search one uploaded file, and crop its faces into model tensors.

    Args:
        data: the file's bytes.
        filename: the (already safe) file name, for messages.
        detector: a built face detector, used by this thread alone for the call (detectors are not thread-safe).
        size, channels: the classifier's input.
        settings: the upload limits and the eye levelling.

    Raises:
        UploadError: 413 ``too_large``, 415 ``unsupported_media_type``, 422 ``unreadable_image`` or
            ``unsupported_image`` (too many pixels, or pixels that cannot be converted).
    """
    if len(data) > settings.max_image_bytes:
        raise UploadError(
            f"{filename}: the file is larger than the limit of {settings.max_image_bytes / MIB:g} MiB. "
            f"Received: size={len(data):,} bytes", code="too_large", http_status=413)
    if not data:
        raise UploadError(f"{filename}: empty file (0 bytes)", code="unreadable_image", http_status=422)
    media_type = sniff_image_type(data)
    if media_type is None:
        raise UploadError(
            f"{filename}: not an image of an accepted type; expected one of {list(ACCEPTED_TYPES)} "
            f"(recognised by content, not by name). Received: first bytes={data[:8].hex()}",
            code="unsupported_media_type", http_status=415)
    try:
        decoded = decode_image(data, name=filename, max_pixels=settings.max_pixels, work_side=settings.work_side)
    except ImageError as exc:
        raise UploadError(str(exc), code=f"{exc.status}_image", http_status=422) from exc
    found = detector.detect(decoded.rgb)
    tensors = faces_to_tensors(decoded.rgb, found, detector=detector.name, size=size, channels=channels,
                               level=settings.level_eyes)
    return Analysed(filename=filename, media_type=media_type, sha256=hashlib.sha256(data).hexdigest(),
                    size_bytes=len(data), width=decoded.width, height=decoded.height,
                    faces=[face.scaled(decoded.scale) for face in found], tensors=tensors)


def face_results(faces: list[Face], probs: np.ndarray) -> list[dict]:
    """The API's face objects: box in original pixels, detection score, the seven probabilities, the top class."""
    out = []
    for index, (face, p) in enumerate(zip(faces, np.asarray(probs, dtype=np.float64))):
        out.append({
            "index": index,
            "box": {"x": round(face.x, 1), "y": round(face.y, 1), "w": round(face.w, 1), "h": round(face.h, 1)},
            "detection_score": round(float(face.score), 4),
            "probabilities": {name: round(float(v), 5) for name, v in zip(EMOTIONS, p)},
            "top_emotion": EMOTIONS[int(np.argmax(p))],
        })
    return out


def model_card(classifier, detector_name: str) -> dict:
    """What ``GET /v1/model`` says: the model id, its input and classes, and, for a bundled model whose hash
    matches the manifest, the manifest's test metrics and the model card's text."""
    name = classifier.model_id.partition("@")[0]
    card = {
        "model_id": classifier.model_id,
        "name": name,
        "classes": list(EMOTIONS),
        "input": {"size": classifier.size, "channels": classifier.channels},
        "device": getattr(classifier, "device", "CPU"),
        "detector": detector_name,
        "bundled": False,
        "test_accuracy": None,
        "test_macro_f1": None,
        "test_labels": None,
        "per_class": None,
        "flip_gate": None if getattr(classifier, "flip_gate", None) is None else classifier.flip_gate.below,
        "card": None,
        "note": "Scores describe apparent facial expressions, not what anyone feels.",
    }
    try:
        found = manifest_entry(classifier.model_id, bundled_models())
    except (EmotionBatchError, OSError, ValueError):
        found = None
    if found is not None:
        entry, measured = found
        card.update(bundled=True, test_accuracy=measured.get("test_accuracy"),
                    test_macro_f1=measured.get("test_macro_f1"), per_class=measured.get("per_class"),
                    test_labels=str(entry.get("labels", "original")))
        if entry.get("card"):
            path = asset_dir("models") / entry["card"]
            card["card"] = path.read_text(encoding="utf-8") if path.is_file() else None
    return card
