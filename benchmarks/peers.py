"""Side by side with the `fer` package, on the same generated inputs, in one run, as ratios.

1. End to end, photos of real faces at 640x480 (2,000) and 1920x1080 (300), one face each, on a plain and on
   a cluttered background, from 60 distinct base photos per setting: our job (`emotion-batch run`: read +
   decode + detect + crop + classify + store in SQLite, worker processes on every core) against `fer` as its
   users run it (one process: `cv2.imread` + `FER(mtcnn=False).detect_emotions` per photo, Haar + its TFLite
   classifier, nothing stored). Each side runs 3 times in a fresh process; the median is printed as photos per
   wall second of the whole process (start-up included) and as the steady rate (start-up left out).
2. Classification of pre-cropped 48x48 faces: our bundled model (`Classifier.predict`, batches of
   `--batch-size`) against fer's classifier alone on faces already resized and scaled (its fastest path) and
   through its public per-face path (`detect_emotions` with the box given); plus our whole job on the same
   crops as files (`--detector none`: decode + classify + store).
3. The model's arithmetic: multiply-accumulates per face x faces/s against this CPU's peak (needs part 2).

Peak RSS is that of each process tree (main + workers), sampled every 20 ms. `fer` runs only where
`--fer-python` names the Python of a virtualenv that has it:

    python3 -m venv /work/fer-venv && /work/fer-venv/bin/pip install 'fer==25.10.3' 'setuptools<81'
    python benchmarks/peers.py --fer-python /work/fer-venv/bin/python
    python benchmarks/peers.py --photos 20 --repeats 1 --parts 1 --settings 640x480x1      # a quick check
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import (DEFAULT_DETECTOR, HERE, cpu_peak, face_crops, machine_line, mirrored_text, run_job, run_measured,
                    write_crops, write_photos)


#: the issue's settings: (width, height, faces, photos); 2,000 photos of 640x480, fewer at 1920x1080 (fer's
#: Haar cascade takes a third of a second on each)
DEFAULT_SETTINGS = "640x480x1:2000,1920x1080x1:300"
#: what ``--backgrounds`` calls each background in the table
BACKGROUND_NAMES = {"gradient": "plain", "scene": "cluttered"}


def _settings(text: str, photos: int | None) -> list[tuple[int, int, int, int]]:
    """``WIDTHxHEIGHTxFACES[:PHOTOS],...`` -> ``(w, h, faces, photos)``; ``photos`` overrides every count."""
    out = []
    for item in text.split(","):
        shape, _, count = item.partition(":")
        w, h, n = (int(v) for v in shape.lower().split("x"))
        out.append((w, h, n, photos or int(count or 200)))
    return out


def fer_side(fer_python: str, mode: str, target: Path) -> dict:
    out, wall, peak = run_measured([fer_python, str(HERE / "fer_worker.py"), mode, str(target)])
    result = json.loads(out.strip().splitlines()[-1])
    result.update(wall_seconds=wall, peak_rss=peak)
    return result


def ratio(ours: float, theirs: float | None) -> str:
    return f"{ours / theirs:.1f}x" if theirs else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=None,
                        help="photos per setting [default: as in --settings, 200 where it gives none]")
    parser.add_argument("--crops", type=int, default=20000, help="48x48 face crops for the classification test")
    parser.add_argument("--crop-files", type=int, default=5000, help="crops written as files for our job")
    parser.add_argument("--settings", default=DEFAULT_SETTINGS,
                        help=f"WIDTHxHEIGHTxFACES[:PHOTOS],... [default: {DEFAULT_SETTINGS}]")
    parser.add_argument("--backgrounds", default="gradient,scene",
                        help="behind the faces, comma-separated: gradient (plain: a smooth two-colour ramp) and/or "
                             "scene (cluttered: a real photo without faces) [default: both]")
    parser.add_argument("--distinct", type=int, default=60, help="distinct base photos per setting [default: 60]")
    parser.add_argument("--repeats", type=int, default=3, help="whole-process runs of each side; the median is shown")
    parser.add_argument("--parts", default="1,2,3", help="which parts to run: 1 end to end, 2 classification, 3 arithmetic")
    parser.add_argument("--detector", default=DEFAULT_DETECTOR, help=f"[default: {DEFAULT_DETECTOR}, the job's]")
    parser.add_argument("--min-face-size", dest="min_face", type=float, help="our --min-face-size (pixels) [default: the detector's own]")
    parser.add_argument("--workers", type=int, default=None, help="our worker processes [default: one per core]")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--fer-python", help="Python of a virtualenv with fer installed; without it only our side runs")
    args = parser.parse_args()

    print(machine_line())
    if args.fer_python:
        version = subprocess.run([args.fer_python, "-c", "import importlib.metadata as m; print(m.version('fer'))"],
                                 capture_output=True, text=True).stdout.strip()
        print(f"fer {version} from {args.fer_python}")
    else:
        print("fer: not run (give --fer-python)")
    parts = {int(v) for v in args.parts.split(",")}
    backgrounds = [b.strip() for b in args.backgrounds.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if 1 in parts:
            end_to_end(args, tmp, backgrounds)
        if parts & {2, 3}:
            classification(args, tmp, parts)


def _median(values: list[float]) -> float:
    return float(np.median(values))


def end_to_end(args: argparse.Namespace, tmp: Path, backgrounds: list[str]) -> None:
    """Part 1: both sides over the same photos, each run ``--repeats`` times in a fresh process."""
    mib = 2**20
    print(f"\n1. end to end; ours: detector {args.detector}"
          f"{f' --min-face-size {args.min_face:g}' if args.min_face else ''}, "
          f"workers {args.workers or 'one per core'}, batch {args.batch_size}, every row stored in SQLite; "
          f"fer: FER(mtcnn=False).detect_emotions per photo (its defaults), nothing stored")
    print(f"inputs: {args.distinct} distinct base photos per setting and background (real faces pasted on a plain "
          f"gradient or on a cluttered real photo), cycled to the photo count, every file unique by a few pixels")
    print(f"photos/s 'whole': photos / wall time of the whole process (Python start-up, imports, model loading and "
          f"worker start-up included), median of {args.repeats} runs, each ours into a fresh database;\n"
          f"'steady': ours leaves out the fixed cost of a run (start-up, discovery, pool end; measured by a run "
          f"over the same, unchanged files), fer's clock starts after its warm-up on the first photo (median of "
          f"{args.repeats}). Ratio = ours / fer, whole and steady.")
    print(f"{'setting':<31}{'background':<11}{'side':<6}{'photos/s whole':>15}{'steady':>8}{'faces':>7}"
          f"{'peak RSS MiB':>13}{'wall s':>8}{'ratio whole':>12}{'steady':>8}", flush=True)
    extra = ["--min-face-size", str(args.min_face)] if args.min_face else []
    rows = []
    for w, h, n, count in _settings(args.settings, args.photos):
        for background in backgrounds:
            root = tmp / f"photos_{w}x{h}x{n}_{background}"
            write_photos(root, count, w, h, n, background=background, distinct=args.distinct)
            label = f"{w}x{h}, {n} face{'s' if n > 1 else ''}, {count} photos"
            whole, steady, runs, fixed = [], [], [], 0.0
            for k in range(args.repeats):
                db = tmp / f"ours_{w}x{h}x{n}_{background}_{k}.sqlite"
                ours = run_job(root, db, detector=args.detector, workers=args.workers, batch=args.batch_size,
                               extra=extra)
                if k == 0:
                    fixed = run_job(root, db, detector=args.detector, workers=args.workers, batch=args.batch_size,
                                    extra=extra)["seconds"]
                whole.append(ours["processed"] / ours["wall_seconds"])
                steady.append(ours["processed"] / max(1e-9, ours["seconds"] - fixed))
                runs.append(ours)
                db.unlink()
            ours = runs[0]
            ours_whole, ours_steady = _median(whole), _median(steady)
            peak = max(r["peak_rss"] for r in runs)
            wall = _median([r["wall_seconds"] for r in runs])
            print(f"{label:<31}{BACKGROUND_NAMES.get(background, background):<11}{'ours':<6}{ours_whole:>15.1f}"
                  f"{ours_steady:>8.1f}{ours['faces']:>7}{peak / mib:>13.0f}{wall:>8.1f}", flush=True)
            row = {"setting": label, "background": background, "ours_whole": ours_whole, "ours_steady": ours_steady,
                   "ours_faces": ours["faces"]}
            if args.fer_python:
                fers = [fer_side(args.fer_python, "photos", root) for _ in range(args.repeats)]
                fer_whole = _median([f["photos"] / f["wall_seconds"] for f in fers])
                fer_steady = _median([f["photos"] / f["seconds"] for f in fers])
                print(f"{'':<31}{'':<11}{'fer':<6}{fer_whole:>15.1f}{fer_steady:>8.1f}{fers[0]['faces']:>7}"
                      f"{max(f['peak_rss'] for f in fers) / mib:>13.0f}"
                      f"{_median([f['wall_seconds'] for f in fers]):>8.1f}"
                      f"{ratio(ours_whole, fer_whole):>12}{ratio(ours_steady, fer_steady):>8}", flush=True)
                row.update(fer_whole=fer_whole, fer_steady=fer_steady, fer_faces=fers[0]["faces"])
            rows.append(row)
            shutil.rmtree(root)
    print("json: " + json.dumps(rows))


def classification(args: argparse.Namespace, tmp: Path, parts: set[int]) -> None:
    """Parts 2 and 3: pre-cropped faces through our classifier and fer's, and the model's arithmetic."""
    mib = 2**20
    print(f"\n2. classification of {args.crops} pre-cropped 48x48 faces")
    crops = face_crops(args.crops)
    npy = tmp / "crops.npy"
    np.save(npy, crops)
    out, _, ours_rss = run_measured([sys.executable, str(HERE / "classify_worker.py"), str(npy),
                                     "--batch-sizes", str(args.batch_size)])
    ours = json.loads(out.strip().splitlines()[-1])
    for run in ours["runs"]:
        print(f"ours  {run['model_id']} ({run['backend']} on {run['device']}), batch {args.batch_size}: "
              f"{run['results'][0]['faces_per_s']:,.0f} faces/s{mirrored_text(run['results'][0])}")
    job_run = next(r for r in ours["runs"] if r["backend"] == ours["job_backend"])
    ours_fps = job_run["results"][0]["faces_per_s"]
    print(f"      (peak RSS of both {ours_rss / mib:.0f} MiB; the job runs {job_run['backend']} here)")
    write_crops(tmp, crops[: args.crop_files])
    job = run_job(tmp / "crops", tmp / "crops.sqlite", detector="none", workers=args.workers, batch=args.batch_size)
    print(f"ours  whole job on {job['processed']} crop files (--detector none: read + decode + classify + store): "
          f"{job['faces_per_second']:,.0f} faces/s (peak RSS {job['peak_rss'] / mib:.0f} MiB)")
    fer_model = None
    if args.fer_python:
        fer = fer_side(args.fer_python, "crops", npy)
        fer_model = fer["faces"] / fer["model_seconds"]
        fer_public = fer["faces"] / fer["public_seconds"]
        print(f"fer   classifier alone (resized to 64x64 and scaled beforehand): {fer_model:,.0f} faces/s; "
              f"with its resize + scaling {fer['faces'] / (fer['model_seconds'] + fer['prep_seconds']):,.0f}; "
              f"detect_emotions per crop: {fer_public:,.0f} faces/s (peak RSS {fer['peak_rss'] / mib:.0f} MiB)")
        print(f"ratio ours / fer classifier alone: {ratio(ours_fps, fer_model)}; "
              f"our whole job / fer per crop: {ratio(job['faces_per_second'], fer_public)}")

    if 3 not in parts:
        return
    print("\n3. arithmetic")
    peak = cpu_peak()
    macs = ours["macs_per_face"]
    achieved = 2 * macs * ours_fps / 1e9
    print(f"model {ours['model_id']}: {macs / 1e6:.1f} M multiply-accumulates = {2 * macs / 1e6:.1f} MFLOP per face")
    print(f"CPU peak: {peak['cores']} cores x {peak['ghz']:.2f} GHz x {peak['flops_per_cycle']} FLOP/cycle "
          f"({peak['isa']}) = {peak['peak_gflops']:.0f} GFLOP/s fp32")
    if job_run["backend"] == "litert" and peak["peak_int8_gops"]:
        print(f"int8 peak (AVX-512 VNNI, {peak['int8_ops_per_cycle']} ops/cycle/core): {peak['peak_int8_gops']:.0f} GOP/s")
        print(f"achieved: {achieved:.1f} GOP/s = {100 * achieved / peak['peak_int8_gops']:.1f}% of the int8 peak "
              f"at {ours_fps:,.0f} faces/s (litert, int8 kernels)")
    else:
        print(f"achieved: {achieved:.1f} GFLOP/s = {100 * achieved / peak['peak_gflops']:.1f}% of the fp32 peak "
              f"at {ours_fps:,.0f} faces/s ({job_run['backend']})")
    keras_run = next((r for r in ours["runs"] if r["backend"] == "keras"), None)
    if keras_run is not None and keras_run is not job_run:
        keras_fps = keras_run["results"][0]["faces_per_s"]
        print(f"keras (float32): {2 * macs * keras_fps / 1e9:.1f} GFLOP/s = "
              f"{100 * 2 * macs * keras_fps / 1e9 / peak['peak_gflops']:.1f}% of the fp32 peak at {keras_fps:,.0f} faces/s")


if __name__ == "__main__":
    started = time.monotonic()
    main()
    print(f"\n(benchmark took {time.monotonic() - started:.0f} s)")
