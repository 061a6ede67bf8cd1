"""End-to-end throughput of `emotion-batch run` on generated real-face photos, per detector and batch size,
and where the time goes, stage by stage.

Inputs are photos made from scikit-image's public-domain astronaut portrait (benchmarks/common.py). The
job runs as the real CLI in a fresh process into a fresh SQLite file; images/s and faces/s come from the
run's own JSON summary (read + decode + detect + crop + classify + store, worker start-up included,
reports excluded), peak RSS is the whole process tree's (main + workers), sampled every 20 ms.

    python benchmarks/throughput.py                      # 300 photos 640x480, one face, every detector
    python benchmarks/throughput.py --images 1000 --size 1920x1080 --faces 5 --detectors blazeface
    python benchmarks/throughput.py --detectors blazeface --batch-sizes 256,1024,4096   # on a GPU machine
    python benchmarks/throughput.py --stages             # ms per photo of each stage, in one process

`--batch-sizes` runs the job once per batch size and then the classifier alone on 20,000 face crops at
each size (with a GPU also the model alone on faces already on the device, which separates the
host-to-device copy from the model). `--stages` times each stage on one core: read, sha256, decode,
detect, crop, classify (per face, at `--batch-size`) and store (per image, SQLite), and says which stage
bounds the job with its worker layout (stages up to crop on every worker core, classify + store in the
main process).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import HERE, face_crops, machine_line, mirrored_text, run_job, run_measured, write_photos


def end_to_end(args, root: Path, tmp: Path) -> None:
    width, height = args.width, args.height
    print(f"{'detector':<16}{'batch':>6}{'images':>7}{'faces':>7}{'images/s':>10}{'faces/s':>10}{'peak RSS MiB':>14}"
          f"{'wall s':>8}  device")
    for detector in args.detectors.split(","):
        for batch in args.batch_list:
            r = run_job(root, tmp / f"{detector}_{batch}.sqlite", detector=detector, workers=args.workers, batch=batch)
            print(f"{detector:<16}{batch:>6}{r['processed']:>7}{r['faces']:>7}{r['images_per_second']:>10.1f}"
                  f"{r['faces_per_second']:>10.1f}{r['peak_rss'] / 2**20:>14.0f}{r['wall_seconds']:>8.1f}  {r['device']}",
                  flush=True)
    del width, height


def classify_sweep(args, tmp: Path) -> None:
    npy = tmp / "crops.npy"
    np.save(npy, face_crops(args.crops))
    out, _, peak = run_measured([sys.executable, str(HERE / "classify_worker.py"), str(npy), "--batch-sizes",
                                 ",".join(str(b) for b in args.batch_list)])
    result = json.loads(out.strip().splitlines()[-1])
    print(f"\nclassifier alone, {args.crops} crops, {result['model_id']} "
          f"(TF threads intra {result['threads']['intra'] or 'auto'}), peak RSS {peak / 2**20:.0f} MiB")
    for run in result["runs"]:
        for row in run["results"]:
            extra = (f"; model alone, faces on the device: {row['model_only_faces_per_s']:,.0f} faces/s"
                     if "model_only_faces_per_s" in row else "")
            print(f"  {run['backend']:<7} on {run['device']}, batch {row['batch_size']:>5}: "
                  f"{row['faces_per_s']:,.0f} faces/s from host uint8{extra}{mirrored_text(row)}")


def stages(args, root: Path, tmp: Path) -> None:
    """Each stage's time per photo on one core, with the library's own functions."""
    import hashlib

    from sqlalchemy.orm import sessionmaker

    from emotion_batch.classifier import load_classifier
    from emotion_batch.faces import build_detector
    from emotion_batch.imaging import decode_image
    from emotion_batch.preprocess import face_to_tensor
    from emotion_batch.store.models import Run, utcnow
    from emotion_batch.store.repository import ImageRecord, ad_id_for, write_images
    from emotion_batch.store.session import init_db, make_engine

    files = sorted(root.rglob("*.jpg"))
    classifier = load_classifier(batch_size=args.batch_size)  # the backend the job takes here
    detector = build_detector(args.detectors.split(",")[0])
    times = dict.fromkeys(("read", "sha256", "decode", "detect", "crop", "classify", "store"), 0.0)
    tensors, records = [], []
    detector.detect(decode_image(files[0].read_bytes(), name="warm-up").rgb)
    for path in files:
        t0 = time.perf_counter()
        data = path.read_bytes()
        t1 = time.perf_counter()
        sha = hashlib.sha256(data).hexdigest()
        t2 = time.perf_counter()
        decoded = decode_image(data, name=path.name)
        t3 = time.perf_counter()
        faces = detector.detect(decoded.rgb)
        t4 = time.perf_counter()
        crops = [face_to_tensor(decoded.rgb, f.box, size=classifier.size, channels=classifier.channels) for f in faces]
        t5 = time.perf_counter()
        for key, dt in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
            times[key] += dt
        tensors.extend(crops)
        records.append((path, sha, decoded, faces))
    batch = np.stack(tensors)
    classifier.predict(batch[: args.batch_size])
    t0 = time.perf_counter()
    probs = classifier.predict(batch)
    times["classify"] = time.perf_counter() - t0
    engine = make_engine(f"sqlite:///{tmp / 'stages.sqlite'}")
    init_db(engine)
    factory = sessionmaker(bind=engine)
    offset, rows = 0, []
    with factory.begin() as session:
        ad_id = ad_id_for(session, "bench", "stages")
        run = Run(root=str(root), detector=detector.name, model_id=classifier.model_id, host="bench", pid=os.getpid(),
                  status="running", started_at=utcnow())
        session.add(run)
        session.flush()
        run_id = run.id
    for path, sha, decoded, faces in records:
        st = path.stat()
        boxes = [(f.x * decoded.scale, f.y * decoded.scale, f.w * decoded.scale, f.h * decoded.scale, f.score) for f in faces]
        rows.append(ImageRecord(ad_id=ad_id, path=path.name, size_bytes=st.st_size, mtime_ns=st.st_mtime_ns, sha256=sha,
                                status="ok" if faces else "no_face", width=decoded.width, height=decoded.height,
                                faces=boxes, probs=probs[offset : offset + len(faces)] if faces else None))
        offset += len(faces)
    t0 = time.perf_counter()
    for start in range(0, len(rows), 256):
        with factory.begin() as session:
            write_images(session, run_id, rows[start : start + 256], model_id=classifier.model_id)
    times["store"] = time.perf_counter() - t0
    engine.dispose()

    n, n_faces = len(files), len(batch)
    workers = args.workers if args.workers is not None else (os.cpu_count() or 1)
    print(f"\nstages on one core, {n} photos {args.width}x{args.height}, {n_faces} faces, detector {detector.name}, "
          f"{classifier.model_id} on {classifier.device}, batch {args.batch_size}")
    print(f"{'stage':<10}{'ms/photo':>10}{'share':>8}")
    total = sum(times.values())
    for key, value in times.items():
        print(f"{key:<10}{1000 * value / n:>10.2f}{100 * value / total:>7.0f}%")
    worker_side = sum(times[k] for k in ("read", "sha256", "decode", "detect", "crop")) / n
    main_side = (times["classify"] + times["store"]) / n
    print(f"classify: {n_faces / times['classify']:,.0f} faces/s on this process's threads")
    print(f"bound with {workers} worker process(es) sharing {os.cpu_count()} cores with the main process: "
          f"workers at most {workers / worker_side:.0f} photos/s if each had a core, main process at most "
          f"{1 / main_side:.0f} photos/s; all stages on {os.cpu_count()} cores at most "
          f"{(os.cpu_count() or 1) / (worker_side + main_side):.0f} photos/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--faces", type=int, default=1)
    parser.add_argument("--detectors", default="blazeface-dual,blazeface,haar,mtcnn",
                        help="detectors to run, comma-separated (--stages: the first; default: the job's own first)")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--batch-sizes", help="comma-separated batch sizes to sweep, e.g. 256,1024,4096 (GPU)")
    parser.add_argument("--crops", type=int, default=20000, help="face crops for the classifier sweep")
    parser.add_argument("--stages", action="store_true", help="time each stage in one process instead")
    parser.add_argument("--background", choices=["scene", "gradient"], default="scene",
                        help="behind the faces: a real photo without faces (as cluttered as an ad photo) or a smooth gradient")
    args = parser.parse_args()
    args.width, args.height = (int(v) for v in args.size.lower().split("x"))
    args.batch_list = [int(b) for b in (args.batch_sizes or str(args.batch_size)).split(",")]
    print(machine_line())
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root = tmp / "campaigns"
        t = time.monotonic()
        write_photos(root, args.images, args.width, args.height, args.faces, background=args.background)
        print(f"inputs: {args.images} photos {args.width}x{args.height} with {args.faces} face(s) each "
              f"(made in {time.monotonic() - t:.1f} s)")
        if args.stages:
            stages(args, root, tmp)
            return
        end_to_end(args, root, tmp)
        if args.batch_sizes:
            classify_sweep(args, tmp)


if __name__ == "__main__":
    main()
