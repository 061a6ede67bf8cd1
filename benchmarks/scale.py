"""Memory flat in the number of images, and the cost of a re-run over unchanged images.

For each size (default 1,000 and 100,000) the script writes that many 64x64 JPEG face crops
(benchmarks/common.py; 1,000 files per ad folder) into a temporary folder, runs `emotion-batch run
--detector none` into a fresh SQLite file and records the peak RSS of the whole process tree (main +
workers, sampled every 20 ms), then runs it again over the unchanged files and records its time (wall
clock, process start included) and peak RSS.

    python benchmarks/scale.py                       # 1,000 and 100,000 images (about 10 minutes on 2 cores)
    python benchmarks/scale.py --sizes 200,2000      # a quick check
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import face_crops, machine_line, run_job, write_crops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,100000")
    parser.add_argument("--side", type=int, default=64, help="side of the face crops in pixels")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--tmp", help="folder for the images and databases [default: the system's temp folder]")
    args = parser.parse_args()
    print(machine_line())
    print(f"{'images':>8}{'first run s':>12}{'images/s':>10}{'peak RSS MiB':>14}{'re-run s':>10}{'re-run job s':>13}"
          f"{'re-run RSS MiB':>15}{'unchanged':>10}")
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
            tmp = Path(tmp)
            made = time.monotonic()
            for start in range(0, size, 10000):  # in slices: the generator's own memory stays small too
                crops = face_crops(min(10000, size - start), args.side, seed=start)
                write_crops(tmp / f"slice_{start // 10000:03d}", crops)
            made = time.monotonic() - made
            root = tmp / "root"
            root.mkdir()
            for part in sorted(tmp.glob("slice_*")):  # one ROOT: campaign per slice, 1,000 files per ad
                (part / "crops" / "faces").rename(root / part.name)
            db = tmp / "scale.sqlite"
            first = run_job(root, db, detector="none", workers=args.workers, batch=args.batch_size)
            again = run_job(root, db, detector="none", workers=args.workers, batch=args.batch_size)
            assert first["processed"] == size and again["unchanged"] == size and again["processed"] == 0, (first, again)
            rows.append((size, first, again))
            print(f"{size:>8,}{first['wall_seconds']:>12.1f}{first['images_per_second']:>10.0f}"
                  f"{first['peak_rss'] / 2**20:>14.0f}{again['wall_seconds']:>10.1f}{again['seconds']:>13.1f}"
                  f"{again['peak_rss'] / 2**20:>15.0f}{again['unchanged']:>10,}   (inputs made in {made:.0f} s)",
                  flush=True)
    if len(rows) > 1:
        small, big = rows[0], rows[-1]
        print(f"peak RSS {big[0]:,} images / {small[0]:,} images: first run "
              f"{big[1]['peak_rss'] / small[1]['peak_rss']:.2f}x, re-run {big[2]['peak_rss'] / small[2]['peak_rss']:.2f}x")


if __name__ == "__main__":
    main()
