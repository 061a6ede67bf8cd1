"""Videos made at run time: the encoder the tests and benchmarks use, and the sample viewer recording."""

from __future__ import annotations

from collections.abc import Iterable
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
