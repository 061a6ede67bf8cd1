"""Viewer videos: seconds of video analysed per wall second, and memory, for a short and a long recording.

The recording is the sample viewer (``emotion_batch.video.synthetic``: the public-domain astronaut portrait,
one face, swaying and changing pose), 640x480 H.264 at 30 fps (libx264 ``veryfast``, key frame every 2 s),
written once per length. Each measurement runs ``analyze_video`` in a fresh process with the job's default
stages (``blazeface-dual``, the bundled model on LiteRT), sampled at 5 fps, once with the detector's
default tiles and once with ``min_face=64`` (a webcam viewer's face is large: no tiles at 640x480). The
issue's targets: at least 10 s of video per wall second on 2 cores, the same peak memory for 10 s and
10 min. Peak RSS is the process's high-water mark (model loading included), "RSS at end" its size after
the analysis.

    python benchmarks/video.py                       # 10 s and 10 min
    python benchmarks/video.py --lengths 10,60 --repeat 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


from common import REPO, machine_line

CHILD = r"""
import json, os, resource, sys, time
sys.path.insert(0, {repo!r})
from emotion_batch.classifier import load_classifier
from emotion_batch.faces import build_detector
from emotion_batch.video import analyze_video
detector = build_detector("blazeface-dual", min_face={min_face})
classifier = load_classifier(threads={threads})
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
cpu0, t0 = time.process_time(), time.perf_counter()
result = analyze_video({path!r}, detector, classifier, fps={fps}, queue_frames={queue})
wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
now = int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
s = result.stats
print(json.dumps({{"wall": wall, "cpu": cpu, "rss_before_kib": before, "rss_peak_kib": peak, "rss_end_kib": now,
                  "duration": s.duration_s, "sampled": s.frames_sampled, "decoded": s.frames_decoded,
                  "with_face": s.frames_with_face, "tracks": s.tracks}}))
"""


def make_recording(path: Path, seconds: int, *, fps: int = 30) -> float:
    """A 640x480 H.264 recording of the sample viewer: its 10 s made once, then looped (no two of its frames
    are alike, and the encoder never refers 10 s back, so a loop costs the decoder what new frames would)."""
    from emotion_batch.video.synthetic import make_viewer_video, write_video
    from emotion_batch.video import open_video

    started = time.perf_counter()
    loop = path.with_name("loop.mp4")
    make_viewer_video(loop, seconds=10.0, fps=fps, size=(640, 480))
    with open_video(loop) as video:  # the 10 s sample decoded once: 300 frames to loop
        frames = [f.rgb for f in video.sample(fps, work_side=0, skip_nonref=False)]
    def stream():
        for i in range(seconds * fps):
            yield frames[i % len(frames)]

    write_video(path, stream(), fps=fps, codec="libx264", options={"preset": "veryfast"}, keyframe_interval=2 * fps)
    return time.perf_counter() - started


def measure(path: Path, *, fps: float, threads: int, queue: int, min_face: int | None) -> dict:
    code = CHILD.format(repo=str(REPO), path=str(path), fps=fps, threads=threads, queue=queue, min_face=min_face)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="10,600", help="recording lengths in seconds, comma-separated")
    parser.add_argument("--fps", type=float, default=5.0, help="sampled frames per second")
    parser.add_argument("--threads", type=int, default=2, help="LiteRT threads of the classifier")
    parser.add_argument("--queue", type=int, default=4, help="decoded frames waiting (0: decode in the same thread)")
    parser.add_argument("--min-faces", default="default,64",
                        help="the detector's min_face per measurement: 'default' (faces of ~1/30 of the long side, "
                             "tiles) or pixels (a webcam viewer's face is large: 64 needs no tiles at 640x480)")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    print(machine_line())
    print(f"conditions: 640x480 H.264 (libx264 veryfast, key frame every 2 s) at 30 fps, one face; sampled at "
          f"{args.fps:g} fps; detector blazeface-dual, bundled model on LiteRT with {args.threads} threads; "
          f"prefetch queue {args.queue}; one process per measurement; os.cpu_count()={os.cpu_count()}")
    print("note: other processes shared these cores while it ran (a model training run and two other "
          "engineers' tests); the load average above says how much; figures are lower bounds of an idle machine")
    with tempfile.TemporaryDirectory() as tmp:
        for seconds in (int(v) for v in args.lengths.split(",")):
            path = Path(tmp) / f"viewer_{seconds}s.mp4"
            made = make_recording(path, seconds)
            print(f"\n{seconds} s recording: {path.stat().st_size / 2**20:.1f} MiB, written in {made:.1f} s", flush=True)
            print(f"{'min_face':>9}{'wall s':>8}{'cpu s':>8}{'video s/wall s':>16}{'sampled':>9}{'decoded':>9}"
                  f"{'with face':>10}{'tracks':>7}{'RSS before MiB':>16}{'peak RSS MiB':>14}{'growth MiB':>12}{'RSS at end MiB':>16}  load")
            for setting in args.min_faces.split(","):
                min_face = None if setting == "default" else int(setting)
                for _ in range(args.repeat):
                    r = measure(path, fps=args.fps, threads=args.threads, queue=args.queue, min_face=min_face)
                    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
                    print(f"{setting:>9}{r['wall']:>8.2f}{r['cpu']:>8.2f}{r['duration'] / r['wall']:>16.1f}"
                          f"{r['sampled']:>9}{r['decoded']:>9}{r['with_face']:>10}{r['tracks']:>7}"
                          f"{r['rss_before_kib'] / 1024:>16.0f}{r['rss_peak_kib'] / 1024:>14.0f}"
                          f"{(r['rss_peak_kib'] - r['rss_before_kib']) / 1024:>12.1f}"
                          f"{r['rss_end_kib'] / 1024:>16.0f}  {load}", flush=True)
            path.unlink()


if __name__ == "__main__":
    main()
