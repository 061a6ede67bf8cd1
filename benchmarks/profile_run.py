"""Where the time of an end-to-end run goes: py-spy samples of `emotion-batch run`, main process and workers.

Runs the real CLI under `py-spy record --subprocesses --format raw` (pip install py-spy; needs ptrace, as
root or with CAP_SYS_PTRACE) on generated real-face photos, then prints the busiest functions by self
time (where the samples' innermost Python frame is) and by inclusive time for the stages of the job,
separately for the main process and the workers. Idle samples (waiting on a queue or a lock) are left
out by py-spy, so the shares are of busy CPU time.

    python benchmarks/profile_run.py                                  # 300 photos 640x480, one face
    python benchmarks/profile_run.py --images 100 --size 1920x1080 --faces 5 --top 15
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import DEFAULT_DETECTOR, REPO, machine_line, write_photos

#: Inclusive time of these functions is reported: the job's stages, from reading to storing.
STAGES = {
    "read + sha256": ("read_bytes (pathlib.py", "hexdigest"),
    "decode": ("decode_image (emotion_batch/imaging.py",),
    "detect": ("detect (emotion_batch/faces/",),
    "crop": ("face_to_tensor (emotion_batch/preprocess.py",),
    "classify": ("predict (emotion_batch/classifier.py",),
    "store": ("write_images (emotion_batch/store/repository.py",),
    "discovery": ("walk_ads (emotion_batch/discover.py",),
    "start-up (imports, model and detector loading)": ("_find_and_load (<frozen", "load (emotion_batch/classifier.py",
                                                      "__init__ (emotion_batch/faces/"),
}


def parse(raw: Path) -> dict[str, tuple[collections.Counter, collections.Counter, int]]:
    """Per role ('main'/'worker'): self-time counter, stage counter, total samples."""
    out: dict[str, list] = {}
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        if any("resource_tracker" in f for f in frames):
            continue
        role = ("worker" if any(f.startswith("spawn_main (") or "--multiprocessing-fork" in f for f in frames)
                else "main")  # the workers are spawned interpreters
        self_c, stage_c, total = out.setdefault(role, [collections.Counter(), collections.Counter(), 0])
        out[role][2] = total + n
        self_c[_short(frames[-1])] += n
        for name, needles in STAGES.items():
            if any(needle in f for f in frames for needle in needles):
                stage_c[name] += n
    return {k: (v[0], v[1], v[2]) for k, v in out.items()}


def _short(frame: str) -> str:
    if frame.startswith("process ") or "--multiprocessing-fork" in frame:  # a thread with no Python frame: TensorFlow's or LiteRT's own threads
        return "(native thread, no Python frame: TensorFlow/oneDNN thread pool)"
    frame = re.sub(r"/[^ ]*/site-packages/", "", frame)
    frame = re.sub(r"/[^ ]*/lib/python3\.\d+/", "", frame)
    return frame.replace(str(REPO) + "/", "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--faces", type=int, default=1)
    parser.add_argument("--detector", default=DEFAULT_DETECTOR, help=f"[default: {DEFAULT_DETECTOR}, the job's]")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--rate", type=int, default=200, help="samples per second")
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--keep", help="copy the raw py-spy output (collapsed stacks) to this file")
    args = parser.parse_args()
    py_spy = shutil.which("py-spy")
    if py_spy is None:
        raise SystemExit("py-spy is not installed: pip install py-spy")
    width, height = (int(v) for v in args.size.lower().split("x"))
    print(machine_line())
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_photos(tmp / "root", args.images, width, height, args.faces)
        raw = tmp / "profile.txt"
        cmd = [py_spy, "record", "--subprocesses", "--format", "raw", "--rate", str(args.rate), "-o", str(raw), "--",
               sys.executable, "-m", "emotion_batch", "run", str(tmp / "root"), "--db", f"sqlite:///{tmp / 'p.sqlite'}",
               "--detector", args.detector, "--no-reports", "-q"]
        if args.workers is not None:
            cmd += ["--workers", str(args.workers)]
        started = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"})
        wall = time.monotonic() - started
        if proc.returncode != 0 or not raw.is_file():
            raise SystemExit(f"py-spy run failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        if args.keep:
            shutil.copy(raw, args.keep)
        roles = parse(raw)
    print(f"{args.images} photos {width}x{height}, {args.faces} face(s), detector {args.detector}: "
          f"{wall:.1f} s under py-spy at {args.rate} samples/s (start-up included)")
    for role in ("main", "worker"):
        if role not in roles:
            continue
        self_c, stage_c, total = roles[role]
        label = "main process" if role == "main" else "worker processes (all together)"
        print(f"\n{label}: {total} busy samples = {total / args.rate:.1f} CPU-seconds")
        print("  by stage (inclusive):")
        for name, n in stage_c.most_common():
            print(f"    {100 * n / total:5.1f}%  {name}")
        print(f"  top {args.top} by self time (innermost Python frame):")
        for name, n in self_c.most_common(args.top):
            print(f"    {100 * n / total:5.1f}%  {name}")


if __name__ == "__main__":
    main()
