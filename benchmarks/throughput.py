"""End-to-end throughput of `emotion-batch run` on a generated campaign of real-face photos.

For each detector it builds nothing but the inputs (photos made from scikit-image's public-domain
astronaut portrait), runs the real CLI in a fresh process into a fresh SQLite file, and prints
images/s and faces/s (from the run's own JSON summary: decode + detect + classify + store, reports
excluded) and the peak resident memory of the whole process tree (main + worker processes), sampled
every 20 ms with psutil.

    python benchmarks/throughput.py                      # 300 photos 640x480, one face, every detector
    python benchmarks/throughput.py --images 1000 --size 1920x1080 --faces 5 --detectors blazeface
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from emotion_batch.sample import jpeg_bytes, synthetic_photo  # noqa: E402


def make_campaign(root: Path, images: int, width: int, height: int, faces: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    variants = [synthetic_photo(rng, width, height, faces) for _ in range(min(images, 25))]
    for i in range(images):
        folder = root / "bench" / f"ad_{i % 4}"
        folder.mkdir(parents=True, exist_ok=True)
        photo = variants[i % len(variants)]
        # every file differs (a few pixels of noise), so nothing is deduplicated by hash
        arr = np.asarray(photo).copy()
        arr[0, : 8] = rng.integers(0, 255, (8, 3))
        (folder / f"photo_{i:06d}.jpg").write_bytes(jpeg_bytes(type(photo).fromarray(arr), quality=90))


def peak_rss(proc: psutil.Process, stop: threading.Event, out: list[int]) -> None:
    peak = 0
    while not stop.is_set():
        try:
            total = proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
            peak = max(peak, total)
        except psutil.Error:
            pass
        time.sleep(0.02)
    out.append(peak)


def run_once(root: Path, detector: str, workers: int | None, batch: int, db: Path) -> dict:
    cmd = [sys.executable, "-m", "emotion_batch", "run", str(root), "--db", f"sqlite:///{db}", "--detector", detector,
           "--batch-size", str(batch), "--no-reports", "--json"]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
    started = time.monotonic()
    popen = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    stop, peaks = threading.Event(), []
    watcher = threading.Thread(target=peak_rss, args=(psutil.Process(popen.pid), stop, peaks))
    watcher.start()
    out, err = popen.communicate()
    stop.set()
    watcher.join()
    wall = time.monotonic() - started
    if popen.returncode != 0:
        raise SystemExit(f"{detector}: exit {popen.returncode}\n{err}")
    summary = json.loads(out)
    return {"detector": detector, "images": summary["processed"], "faces": summary["faces"],
            "job_seconds": summary["seconds"], "images_per_s": summary["images_per_second"],
            "faces_per_s": summary["faces_per_second"], "wall_seconds_with_startup": round(wall, 2),
            "peak_rss_mib": round(peaks[0] / 2**20, 1), "device": summary["device"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--faces", type=int, default=1)
    parser.add_argument("--detectors", default="blazeface,haar,mtcnn")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"{psutil.virtual_memory().total / 2**30:.0f} GiB; python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "campaigns"
        t = time.monotonic()
        make_campaign(root, args.images, width, height, args.faces)
        print(f"inputs: {args.images} photos {width}x{height} with {args.faces} face(s) each "
              f"(made in {time.monotonic() - t:.1f} s)")
        print(f"{'detector':<16}{'images':>7}{'faces':>7}{'images/s':>10}{'faces/s':>10}{'peak RSS MiB':>14}{'wall s':>8}")
        for detector in args.detectors.split(","):
            r = run_once(root, detector, args.workers, args.batch_size, Path(tmp) / f"{detector}.sqlite")
            print(f"{r['detector']:<16}{r['images']:>7}{r['faces']:>7}{r['images_per_s']:>10.1f}{r['faces_per_s']:>10.1f}"
                  f"{r['peak_rss_mib']:>14.0f}{r['wall_seconds_with_startup']:>8.1f}", flush=True)


if __name__ == "__main__":
    main()
