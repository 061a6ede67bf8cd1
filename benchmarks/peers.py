"""Side by side with the `fer` package, on the same generated inputs, in one run, as ratios.

1. End to end, photos of real faces at 640x480 and 1920x1080 with 1 and 5 faces: our job
   (`emotion-batch run`: read + decode + detect + crop + classify + store in SQLite, worker processes on
   every core) against `fer` as its users run it (one process: `cv2.imread` + `FER(mtcnn=False).detect_emotions`
   per photo, Haar + its TFLite classifier, nothing stored).
2. Classification of pre-cropped 48x48 faces: our bundled model (`Classifier.predict`, batches of
   `--batch-size`) against fer's classifier alone on faces already resized and scaled (its fastest path) and
   through its public per-face path (`detect_emotions` with the box given); plus our whole job on the same
   crops as files (`--detector none`: decode + classify + store).
3. The model's arithmetic: multiply-accumulates per face x faces/s against this CPU's fp32 peak.

Each side runs in a fresh process; peak RSS is that process tree's (main + workers), sampled every 20 ms.
`fer` runs only where `--fer-python` names the Python of a virtualenv that has it:

    python3 -m venv /work/fer-venv && /work/fer-venv/bin/pip install 'fer==25.10.3' 'setuptools<81'
    python benchmarks/peers.py --fer-python /work/fer-venv/bin/python
    python benchmarks/peers.py --photos 20 --crops 500 --settings 640x480x1      # a quick check
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import (HERE, PHOTO_SETTINGS, cpu_peak, face_crops, machine_line, run_job, run_measured, write_crops,
                    write_photos)


def _settings(text: str) -> list[tuple[int, int, int]]:
    out = []
    for item in text.split(","):
        w, h, n = (int(v) for v in item.lower().split("x"))
        out.append((w, h, n))
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
    parser.add_argument("--photos", type=int, default=200, help="photos per setting")
    parser.add_argument("--crops", type=int, default=20000, help="48x48 face crops for the classification test")
    parser.add_argument("--crop-files", type=int, default=5000, help="crops written as files for our job")
    parser.add_argument("--settings", default=",".join(f"{w}x{h}x{n}" for w, h, n in PHOTO_SETTINGS),
                        help="WIDTHxHEIGHTxFACES,... [default: the four of the issue]")
    parser.add_argument("--detector", default="blazeface")
    parser.add_argument("--min-face-size", dest="min_face", type=float, help="our --min-face-size (pixels) [default: the detector's own]")
    parser.add_argument("--workers", type=int, default=None, help="our worker processes [default: one per core]")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--fer-python", help="Python of a virtualenv with fer installed; without it only our side runs")
    parser.add_argument("--background", choices=["scene", "gradient"], default="scene",
                        help="behind the faces: a real photo without faces (as cluttered as an ad photo) or a smooth gradient")
    args = parser.parse_args()

    print(machine_line())
    if args.fer_python:
        version = subprocess.run([args.fer_python, "-c", "import importlib.metadata as m; print(m.version('fer'))"],
                                 capture_output=True, text=True).stdout.strip()
        print(f"fer {version} from {args.fer_python}")
    else:
        print("fer: not run (give --fer-python)")
    mib = 2**20
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        print(f"\n1. end to end, {args.photos} photos per setting; ours: detector {args.detector}"
              f"{f' --min-face-size {args.min_face:g}' if args.min_face else ''}, "
              f"workers {args.workers or 'one per core'}, batch {args.batch_size}")
        print("photos/s: ours from the job's own clock, worker start-up included; 'steady' leaves out the fixed\n"
              "cost of a run (start-up, discovery, pool end), measured by a second run over the same, unchanged files;\n"
              "fer's clock starts after its warm-up on the first photo. Ratios: steady (as run).")
        print(f"{'setting':<22}{'side':<6}{'photos/s':>9}{'steady':>8}{'faces/s':>9}{'faces':>7}{'peak RSS MiB':>13}"
              f"{'wall s':>8}{'ratio photos/s':>18}")
        for w, h, n in _settings(args.settings):
            root = tmp / f"photos_{w}x{h}x{n}"
            write_photos(root, args.photos, w, h, n, background=args.background)
            db = tmp / f"ours_{w}x{h}x{n}.sqlite"
            extra = ["--min-face-size", str(args.min_face)] if args.min_face else []
            ours = run_job(root, db, detector=args.detector, workers=args.workers, batch=args.batch_size, extra=extra)
            fixed = run_job(root, db, detector=args.detector, workers=args.workers, batch=args.batch_size,
                            extra=extra)["seconds"]
            steady = ours["processed"] / max(1e-9, ours["seconds"] - fixed)
            label = f"{w}x{h}, {n} face{'s' if n > 1 else ''}"
            print(f"{label:<22}{'ours':<6}{ours['images_per_second']:>9.1f}{steady:>8.1f}{ours['faces_per_second']:>9.1f}"
                  f"{ours['faces']:>7}{ours['peak_rss'] / mib:>13.0f}{ours['wall_seconds']:>8.1f}", flush=True)
            if args.fer_python:
                fer = fer_side(args.fer_python, "photos", root)
                fps = fer["photos"] / fer["seconds"]
                both = f"{ratio(steady, fps)} ({ratio(ours['images_per_second'], fps)})"
                print(f"{'':<22}{'fer':<6}{fps:>9.1f}{fps:>8.1f}{fer['faces'] / fer['seconds']:>9.1f}{fer['faces']:>7}"
                      f"{fer['peak_rss'] / mib:>13.0f}{fer['wall_seconds']:>8.1f}{both:>18}", flush=True)

        print(f"\n2. classification of {args.crops} pre-cropped 48x48 faces")
        crops = face_crops(args.crops)
        npy = tmp / "crops.npy"
        np.save(npy, crops)
        out, _, ours_rss = run_measured([sys.executable, str(HERE / "classify_worker.py"), str(npy),
                                         "--batch-sizes", str(args.batch_size)])
        ours = json.loads(out.strip().splitlines()[-1])
        for run in ours["runs"]:
            print(f"ours  {run['model_id']} ({run['backend']} on {run['device']}), batch {args.batch_size}: "
                  f"{run['results'][0]['faces_per_s']:,.0f} faces/s")
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
