"""Videos made at run time: the encoder the tests and benchmarks use, and the sample viewer recording."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..exceptions import ConfigError
from .decode import _av

#: Encoders tried for ``codec="auto"``: H.264 where the wheel has it, else MPEG-4 part 2.
AUTO_CODECS = ("libx264", "mpeg4")


def _pick_codec(codec: str) -> str:
    av = _av()
    names = AUTO_CODECS if codec == "auto" else (codec,)
    for name in names:
        try:
            av.codec.Codec(name, "w")
            return name
        except (av.FFmpegError, ValueError):
            continue
    raise ConfigError(f"codec must be an encoder of this FFmpeg build (for 'auto': one of {list(AUTO_CODECS)}). "
                      f"Received: codec={codec!r}")


def write_video(path: str | Path, frames: Iterable[np.ndarray], *, fps: int = 30, codec: str = "auto",
                rotation: int | None = None, faststart: bool = False, options: dict[str, str] | None = None,
                keyframe_interval: int | None = None, pix_fmt: str = "yuv420p") -> Path:
    """Encode RGB frames into a video file, one frame at a time (memory flat in the length).

    Args:
        path: the file to write; its suffix picks the container (``.mp4``, ``.mkv``, ``.webm``, ...).
        frames: ``uint8`` arrays ``(h, w, 3)`` of one even-sided size.
        fps: frames per second (constant rate).
        codec: an FFmpeg encoder name, or ``auto`` (``AUTO_CODECS``).
        rotation: a display rotation in counter-clockwise degrees written to the container (phones write
            one for portrait recordings); the frames are stored as given.
        faststart: put the MP4 index before the frames (as streaming encoders do).
        options: encoder options (for libx264 e.g. ``{"preset": "veryfast", "crf": "23"}``).
        keyframe_interval: frames between key frames (the encoder's default when None).
        pix_fmt: the stored pixel format (``yuvj420p`` for MJPEG).

    Returns:
        The path written.
    """
    av = _av()
    name = _pick_codec(codec)
    out = Path(path)
    container_options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(out), mode="w", options=container_options) as container:
        stream = None
        for rgb in frames:
            rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
            if stream is None:
                height, width = rgb.shape[:2]
                if width % 2 or height % 2:
                    raise ConfigError(f"frames need an even width and height. Received: size={width}x{height}")
                stream = container.add_stream(name, rate=fps)
                stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
                if options:
                    stream.options = dict(options)
                if keyframe_interval:
                    stream.codec_context.gop_size = int(keyframe_interval)
                if rotation:
                    stream.set_display_rotation(rotation)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        if stream is None:
            raise ConfigError(f"write_video needs at least one frame. Received: frames for {str(out)!r}")
        for packet in stream.encode():
            container.mux(packet)
    return out


# ---- the sample viewer recording: a real public-domain face, morphed between expression-like poses ----

#: Expression-like poses of the sample viewer, made from the astronaut portrait (who smiles): ``smile`` is
#: the photo, ``neutral`` closes the lips, ``surprise`` raises the brows and opens the mouth in an "O".
POSES = ("neutral", "smile", "surprise")
#: The order poses are shown in, repeated to fill the video.
POSE_CYCLE = ("neutral", "smile", "neutral", "surprise", "smile")

# where the features lie in ``sample.head("astronaut")`` (220 x 250 pixels)
_CORNERS = ((86.0, 122.0), (121.0, 122.0))
_BROWS = ((82.0, 70.0), (127.0, 70.0))


@dataclass(frozen=True)
class Shown:
    """One pose held on screen from ``start_s`` to ``end_s``; between two of them the video cross-fades."""

    start_s: float
    end_s: float
    pose: str


def _bump(shape: tuple[int, int], centre: tuple[float, float], sigma: float) -> np.ndarray:
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    return np.exp(-((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2) / (2 * sigma**2))


def _warp(rgb: np.ndarray, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """``out(y, x) = in(y - dy, x - dx)``: features move by ``(dx, dy)``."""
    from scipy import ndimage

    yy, xx = np.mgrid[0 : rgb.shape[0], 0 : rgb.shape[1]].astype(np.float64)
    coords = [yy - dy, xx - dx]
    return np.stack([ndimage.map_coordinates(rgb[:, :, c].astype(np.float64), coords, order=1, mode="nearest")
                     for c in range(3)], axis=-1).clip(0, 255).astype(np.uint8)


def _paint_mouth(rgb: np.ndarray, *, open_o: bool) -> np.ndarray:
    """Paint the smile over with skin and draw closed lips (or a dark open "O"), blended into the face."""
    from PIL import Image, ImageDraw, ImageFilter

    image = Image.fromarray(rgb)
    lip = tuple(int(v) for v in rgb[132, 103])  # the lower lip's colour
    skin = tuple(int(v) for v in rgb[112, 103])  # between the nose and the mouth
    draw = ImageDraw.Draw(image)
    draw.ellipse((84, 115, 123, 133), fill=skin)
    if open_o:
        draw.ellipse((95, 116, 112, 140), fill=(60, 25, 30), outline=lip, width=3)
    else:
        draw.line((88, 124, 119, 124), fill=lip, width=4)
    mask = Image.new("L", image.size, 0)
    ImageDraw.Draw(mask).ellipse((80, 110, 127, 145), fill=255)
    image.paste(image.filter(ImageFilter.GaussianBlur(2)), (0, 0), mask.filter(ImageFilter.GaussianBlur(3)))
    return np.asarray(image)


def pose_images() -> dict[str, np.ndarray]:
    """The sample viewer's poses (``POSES``) as ``uint8`` RGB arrays of one size, from the public-domain
    astronaut portrait that scikit-image ships (nothing is downloaded).

    What the bundled model makes of them (measured): ``smile`` happy 0.92; ``surprise`` surprise 0.52,
    happy 0.37; ``neutral`` is still read as happy (0.89): her cheeks keep the smile.
    """
    from ..portraits import head

    smile = np.asarray(head("astronaut").convert("RGB"))
    shape = smile.shape[:2]
    zero = np.zeros(shape)
    corners = sum(_bump(shape, c, 7.0) for c in _CORNERS)
    neutral = _paint_mouth(_warp(smile, zero, 4.0 * corners), open_o=False)  # corners down, lips closed
    brows = sum(_bump(shape, b, 10.0) for b in _BROWS)
    surprise = _paint_mouth(_warp(smile, zero, -7.0 * brows), open_o=True)  # brows up, mouth open
    return {"neutral": neutral, "smile": smile, "surprise": surprise}


def viewer_schedule(seconds: float, *, hold_s: float = 1.6, fade_s: float = 0.4) -> list[Shown]:
    """When each pose is held in ``make_viewer_video``: ``POSE_CYCLE`` repeated, each held ``hold_s`` then
    cross-faded into the next over ``fade_s``."""
    if not seconds > 0 or not hold_s > 0 or fade_s < 0:
        raise ConfigError("seconds and hold_s must be positive and fade_s >= 0. "
                          f"Received: seconds={seconds!r}, hold_s={hold_s!r}, fade_s={fade_s!r}")
    shown, start, i = [], 0.0, 0
    while start < seconds:
        shown.append(Shown(start, min(seconds, start + hold_s), POSE_CYCLE[i % len(POSE_CYCLE)]))
        start += hold_s + fade_s
        i += 1
    return shown


def make_viewer_video(path: str | Path, *, seconds: float = 10.0, fps: int = 15, seed: int = 7,
                      size: tuple[int, int] = (320, 240), codec: str = "auto") -> list[Shown]:
    """Write a short webcam-like recording of one viewer and return what it shows when.

    The viewer (the astronaut portrait, ``pose_images``) sits in the middle of a plain room, sways a
    little and changes pose on ``viewer_schedule``, cross-fading between poses; light noise and a slow
    change of light make every frame differ. Frames are made one at a time.

    Args:
        path: the ``.mp4`` (or other container) to write.
        seconds: the length.
        fps: frames per second.
        seed: the sway's and the noise's seed.
        size: ``(width, height)``, both even.
        codec: an encoder, or ``auto`` (H.264 where the wheel has it, else MPEG-4 part 2).

    Returns:
        The schedule: which pose is held from when to when.
    """
    from PIL import Image

    width, height = size
    schedule = viewer_schedule(seconds)
    rng = np.random.default_rng(seed)
    poses = pose_images()
    side = int(height * 0.75)
    scaled = {name: np.asarray(Image.fromarray(img).resize((int(side * img.shape[1] / img.shape[0]), side),
                                                           Image.Resampling.BILINEAR)).astype(np.float32)
              for name, img in poses.items()}
    face_h, face_w = next(iter(scaled.values())).shape[:2]
    ramp = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    room = (np.array([200, 196, 188], np.float32) * (1 - ramp) + np.array([150, 146, 140], np.float32) * ramp)
    room = np.broadcast_to(room, (height, width, 3)).copy()
    phase = float(rng.uniform(0, 2 * np.pi))

    def pose_at(t: float) -> np.ndarray:
        for k, shown in enumerate(schedule):
            if t < shown.end_s:
                return scaled[shown.pose]
            following = schedule[k + 1] if k + 1 < len(schedule) else None
            if following is not None and t < following.start_s:
                a = (t - shown.end_s) / (following.start_s - shown.end_s)
                return (1 - a) * scaled[shown.pose] + a * scaled[following.pose]
        return scaled[schedule[-1].pose]

    def frames():
        for i in range(int(round(seconds * fps))):
            t = i / fps
            frame = room.copy()
            x = (width - face_w) // 2 + int(round(6 * np.sin(0.9 * t + phase)))
            y = height - face_h + int(round(3 * np.sin(1.7 * t + phase)))
            x0, y0 = max(0, x), max(0, y)
            cut = pose_at(t)[y0 - y : y0 - y + height - y0, x0 - x : x0 - x + width - x0]
            frame[y0 : y0 + cut.shape[0], x0 : x0 + cut.shape[1]] = cut
            frame *= 1.0 + 0.05 * np.sin(0.3 * t)
            frame += rng.normal(0.0, 2.0, frame.shape).astype(np.float32)
            yield frame.clip(0, 255).astype(np.uint8)

    name = _pick_codec(codec)
    write_video(path, frames(), fps=fps, codec=name, options={"preset": "veryfast"} if name == "libx264" else None)
    return schedule
