"""Decode a viewer's recording into RGB frames sampled at a fixed rate, with PyAV (FFmpeg inside its wheels).

Frames are chosen by presentation time: for every point ``start_s + k / fps`` of the sample grid the
decoded frame nearest to it (within half a sample interval) is converted to RGB, turned upright by the
stream's rotation (display matrix) and yielded; every other frame is decoded only (the codec needs it)
and dropped unconverted. Where the recording has more than twice the sampled rate, frames that no other
frame refers to (B-frames, mostly) are not decoded at all. Nothing keeps more than the current and the
previous frame, so memory does not grow with the video's length; ``prefetch`` decodes in a thread ahead
of the consumer through a bounded queue.

``av`` is imported when a video is opened, so the package imports without it. Failures raise
``VideoError`` whose ``status`` is what the video row records (see ``VIDEO_STATUSES``).
"""

from __future__ import annotations

import logging
import math
import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from ..exceptions import ConfigError, VideoError
from ..imaging import DEFAULT_WORK_SIDE

log = logging.getLogger(__name__)

#: Values of a video row's status: ``ok`` (the viewer's face was found), ``no_face`` and the failures.
VIDEO_STATUSES = ("ok", "no_face", "unreadable", "unsupported", "bad_sidecar")
#: Sampled frames per second of video by default (``--video-fps``).
DEFAULT_SAMPLE_FPS = 5.0
#: Largest frame accepted, in pixels: 8K UHD (7680 x 4320); larger ones are ``unsupported``. (Images
#: allow 120 megapixels; no camera records video frames anywhere near that.)
DEFAULT_MAX_FRAME_PIXELS = 7680 * 4320
#: Longest recording accepted, in seconds (3 hours); longer ones are ``unsupported``.
DEFAULT_MAX_DURATION_S = 3 * 3600.0
#: Highest sample rate accepted (frames per second).
MAX_SAMPLE_FPS = 60.0

T = TypeVar("T")


@dataclass(frozen=True)
class VideoInfo:
    """What a recording's header says, checked against the limits.

    Attributes:
        name: the file's name, for messages.
        codec: the video codec's FFmpeg name (``h264``, ``vp9``, ...).
        width, height: the frame size as displayed (after ``rotation``).
        rotation: degrees the stored frames are turned counter-clockwise to be displayed (0, 90, 180, 270).
        fps: the stream's average frame rate, or None where the container does not say.
        duration_s: the declared duration in seconds, or None (browser recordings often have none).
        frames: the declared number of frames, or None.
    """

    name: str
    codec: str
    width: int
    height: int
    rotation: int
    fps: float | None
    duration_s: float | None
    frames: int | None


@dataclass(frozen=True)
class SampledFrame:
    """One sampled frame.

    Attributes:
        index: ``k`` of the sample grid point ``start_s + k / fps`` this frame stands for.
        time_s: the frame's presentation time in seconds from the start of the recording.
        rgb: upright ``uint8`` array ``(h, w, 3)``, at most ``work_side`` on its long side.
        scale: ``displayed pixels / rgb pixels`` (1.0 when not reduced): multiply boxes found in ``rgb``.
    """

    index: int
    time_s: float
    rgb: np.ndarray
    scale: float


def _av():
    try:
        import av
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ConfigError("Reading videos needs PyAV, a dependency of emotion-batch: pip install 'av>=14'") from exc
    return av


def _rotation(stream: Any, first_frame: Any | None) -> int:
    """Counter-clockwise degrees to display the stream upright: the frame's display matrix, else the legacy
    ``rotate`` tag (clockwise degrees), rounded to a quarter turn."""
    degrees = 0.0
    if first_frame is not None:
        try:
            degrees = float(first_frame.rotation or 0)
        except (AttributeError, TypeError, ValueError):
            degrees = 0.0
    if not degrees:
        tag = (stream.metadata or {}).get("rotate")
        try:
            degrees = -float(tag) if tag else 0.0
        except ValueError:
            degrees = 0.0
    quarter = int(round(degrees / 90.0)) % 4
    if abs(degrees - round(degrees / 90.0) * 90.0) > 1.0:
        log.warning("rotation of %.1f degrees is not a quarter turn: turned by %d", degrees, quarter * 90)
    return quarter * 90


class VideoReader:
    """An open recording: ``info`` from its header, ``sample()`` for the frames, then the decoding counts.

    Use it as a context manager (``open_video``); the file is closed on exit.

    Attributes:
        info: the header's ``VideoInfo``; its ``rotation`` and displayed size are final once ``sample()`` has
            yielded a frame (FFmpeg hands the display matrix over with the decoded frames).
        frames_decoded: frames the codec decoded during ``sample()``.
        last_time_s: the presentation time of the last decoded frame (from the recording's start), or None.
    """

    def __init__(self, path: str | Path, *, max_pixels: int = DEFAULT_MAX_FRAME_PIXELS,
                 max_duration_s: float = DEFAULT_MAX_DURATION_S) -> None:
        self.path = Path(path)
        self.name = str(path)
        self.max_pixels = max_pixels
        self.max_duration_s = max_duration_s
        self.frames_decoded = 0
        self.last_time_s: float | None = None
        av = _av()
        self._av = av
        if not self.path.is_file():
            raise VideoError(f"{self.name}: no such file")
        if self.path.stat().st_size == 0:
            raise VideoError(f"{self.name}: empty file (0 bytes)")
        try:
            self._container = av.open(str(self.path), mode="r")
        except av.FFmpegError as exc:
            raise VideoError(f"{self.name}: not a readable video ({_ffmpeg_reason(exc)})") from exc
        try:
            self.info = self._check_header()
        except BaseException:
            self._container.close()
            raise

    def _check_header(self) -> VideoInfo:
        streams = self._container.streams.video
        if not streams:
            kinds = sorted({s.type for s in self._container.streams}) or ["none"]
            raise VideoError(f"{self.name}: no video stream (streams: {', '.join(kinds)})")
        stream = streams[0]
        self._stream = stream
        context = stream.codec_context
        if context is None:
            tag = getattr(stream, "codec_tag", None) or "unknown"
            raise VideoError(f"{self.name}: the video codec ({tag!s}) cannot be decoded by this FFmpeg build",
                             status="unsupported")
        width, height = int(context.width or 0), int(context.height or 0)
        if width * height > self.max_pixels:
            raise VideoError(f"{self.name}: frames of {width}x{height} = {width * height:,} pixels are above the "
                             f"limit of {self.max_pixels:,}", status="unsupported")
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else None
        duration = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif self._container.duration is not None:
            duration = self._container.duration / 1_000_000.0
        if duration is not None and duration > self.max_duration_s:
            raise VideoError(f"{self.name}: a duration of {duration:,.1f} s is above the limit of "
                             f"{self.max_duration_s:,.0f} s", status="unsupported")
        frames = int(stream.frames) if stream.frames else None
        rotation = _rotation(stream, None)
        if rotation in (90, 270):
            width, height = height, width
        return VideoInfo(name=self.name, codec=context.name, width=width, height=height, rotation=rotation,
                         fps=fps, duration_s=duration, frames=frames)

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._container.close()

    def sample(self, fps: float = DEFAULT_SAMPLE_FPS, *, start_s: float = 0.0, work_side: int = DEFAULT_WORK_SIDE,
               skip_nonref: bool = True) -> Iterator[SampledFrame]:
        """Yield the frames nearest to ``start_s + k / fps`` (k = 0, 1, ...), each at most once.

        Args:
            fps: the sample rate, in (0, 60] frames per second.
            start_s: the first grid point, in seconds from the recording's start (the ad's offset); frames
                before it are decoded (the codec needs them) but never converted.
            work_side: the long side frames are reduced to (an area-averaging scale in the conversion);
                0 keeps full resolution.
            skip_nonref: where the stream has at least twice ``fps`` frames a second, leave frames that no
                other frame refers to undecoded; the sampled frame is then at most one source frame farther
                from its grid point.

        Raises:
            VideoError: the stream is corrupt, ends well before its declared duration (truncated), gives no
                frame at all, or runs past the duration limit.
        """
        if not (isinstance(fps, (int, float)) and not isinstance(fps, bool) and 0 < fps <= MAX_SAMPLE_FPS):
            raise ConfigError(f"fps must be a number in (0, {MAX_SAMPLE_FPS:g}]. Received: fps={fps!r}")
        if not math.isfinite(start_s):
            raise ConfigError(f"start_s must be a finite number of seconds. Received: start_s={start_s!r}")
        av = self._av
        stream = self._stream
        stream.thread_type = "AUTO"
        info = self.info
        if skip_nonref and info.fps and info.fps >= 2 * fps:
            stream.codec_context.skip_frame = "NONREF"
        for other in self._container.streams:
            if other.index != stream.index:  # the demuxer drops their packets: no audio is read into memory
                try:
                    other.discard = av.stream.Discard.all
                except (AttributeError, TypeError, ValueError):  # an older PyAV
                    pass
        interval = 1.0 / fps
        tolerance = interval / 2.0
        origin: float | None = None
        k = max(0, math.ceil(-start_s * fps - 1e-9))  # a negative offset: the recording starts inside the ad
        target = start_s + k * interval
        previous: tuple[float, Any] | None = None  # (time, frame) of the last decoded frame at or after start_s
        emitted_time: float | None = None
        rotation: int | None = None
        step = 1.0 / info.fps if info.fps else interval

        def emit(time_s: float, frame: Any, index: int) -> SampledFrame:
            nonlocal rotation
            if rotation is None:  # the display matrix comes with the frames: the header's size is settled here
                rotation = _rotation(stream, frame)
                if rotation != self.info.rotation:
                    turned = (rotation - self.info.rotation) % 180 == 90
                    width, height = (self.info.height, self.info.width) if turned else (self.info.width,
                                                                                          self.info.height)
                    self.info = replace(self.info, rotation=rotation, width=width, height=height)
            return _convert(frame, index, time_s, rotation, work_side)

        try:
            for frame in self._container.decode(stream):
                self.frames_decoded += 1
                if frame.time is not None:
                    if origin is None:
                        start = stream.start_time
                        origin = float(start * stream.time_base) if start is not None else float(frame.time)
                        origin = min(origin, float(frame.time))
                    time_s = float(frame.time) - origin
                else:  # no timestamp: one frame interval after the last one
                    time_s = 0.0 if self.last_time_s is None else self.last_time_s + step
                self.last_time_s = time_s
                if time_s > self.max_duration_s:
                    raise VideoError(f"{self.name}: the stream runs past the limit of {self.max_duration_s:,.0f} s",
                                     status="unsupported")
                if time_s < start_s - 1e-9:
                    continue
                while time_s >= target:
                    candidate = (time_s, frame)
                    if previous is not None and target - previous[0] < time_s - target:
                        candidate = previous
                    if abs(candidate[0] - target) <= tolerance + 1e-9 and candidate[0] != emitted_time:
                        emitted_time = candidate[0]
                        yield emit(candidate[0], candidate[1], k)
                    k += 1
                    target = start_s + k * interval
                previous = (time_s, frame)
        except av.FFmpegError as exc:
            where = f" after {self.last_time_s:.2f} s" if self.last_time_s is not None else ""
            if isinstance(exc, getattr(av, "DecoderNotFoundError", ())):
                raise VideoError(f"{self.name}: the video codec ({info.codec}) cannot be decoded by this FFmpeg "
                                 "build", status="unsupported") from exc
            raise VideoError(f"{self.name}: corrupt video stream{where} ({_ffmpeg_reason(exc)})") from exc
        if (previous is not None and abs(previous[0] - target) <= tolerance + 1e-9 and previous[0] != emitted_time
                and target <= previous[0] + step / 2):  # the last frame is still the nearest one
            yield emit(previous[0], previous[1], k)
        if self.frames_decoded == 0:
            raise VideoError(f"{self.name}: no frame could be decoded (zero frames)")
        declared = info.duration_s
        if declared is not None and self.last_time_s is not None:
            missing = declared - (self.last_time_s + step)
            if missing > max(0.5, 0.02 * declared):
                raise VideoError(f"{self.name}: truncated: frames end at {self.last_time_s:.2f} s of a declared "
                                 f"{declared:.2f} s")


def _convert(frame: Any, index: int, time_s: float, rotation: int, work_side: int) -> SampledFrame:
    """Only sampled frames reach RGB: one swscale pass converts and, for large frames, reduces."""
    width, height = frame.width, frame.height
    scale = 1.0
    if work_side and max(width, height) > work_side:
        factor = work_side / max(width, height)
        new_w, new_h = max(1, round(width * factor)), max(1, round(height * factor))
        rgb = frame.reformat(width=new_w, height=new_h, format="rgb24", interpolation="AREA").to_ndarray()
        scale = width / new_w
    else:
        rgb = frame.to_ndarray(format="rgb24")
    if rotation:
        rgb = np.ascontiguousarray(np.rot90(rgb, k=rotation // 90))
    return SampledFrame(index=index, time_s=time_s, rgb=rgb, scale=scale)


def _ffmpeg_reason(exc: Exception) -> str:
    """FFmpeg's reason without the path it repeats (the message names the file once, first)."""
    text = getattr(exc, "strerror", None) or str(exc)
    return f"{type(exc).__name__}: {text}"


def open_video(path: str | Path, *, max_pixels: int = DEFAULT_MAX_FRAME_PIXELS,
               max_duration_s: float = DEFAULT_MAX_DURATION_S) -> VideoReader:
    """Open a recording and check its header: ``with open_video(path) as video: for f in video.sample(5): ...``.

    Raises:
        VideoError: ``unreadable`` (missing, empty, not a video, no video stream) or ``unsupported`` (a codec
            this FFmpeg build cannot decode, frames above ``max_pixels``, a declared duration above
            ``max_duration_s``).
        ConfigError: PyAV is not installed.
    """
    return VideoReader(path, max_pixels=max_pixels, max_duration_s=max_duration_s)


def probe_video(path: str | Path, **limits: Any) -> VideoInfo:
    """The checked header of a recording (``open_video``'s ``info``), without decoding a frame."""
    with open_video(path, **limits) as video:
        return video.info


_DONE = object()


def prefetch(items: Iterable[T], *, maxsize: int = 8) -> Iterator[T]:
    """Run an iterator in a thread ahead of its consumer, through a queue of at most ``maxsize`` items.

    Decoding (FFmpeg releases the GIL) then overlaps detection. An exception in the producer is raised in
    the consumer; closing the consumer early stops the producer at its next item.
    """
    if maxsize < 1:
        raise ConfigError(f"maxsize must be 1 or more. Received: maxsize={maxsize!r}")
    buffer: queue.Queue = queue.Queue(maxsize=maxsize)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                buffer.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer
            put(exc)
        finally:
            close = getattr(items, "close", None)
            if close is not None and stop.is_set():
                close()

    worker = threading.Thread(target=produce, name="video-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item = buffer.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()
