"""Train teachers and distilled students on a lent GPU machine that has JAX (or PyTorch) but no TensorFlow,
inside one command of at most ten minutes, with the project's own ``emotion_batch.training.fit.train``.

Why: the CPU path trains one model in 5-10 hours over several sessions; a lent H200 does the same epochs in
seconds, but it has no TensorFlow, nothing can be fetched there, and at most 64 MiB travel with the command.
``train`` runs under any Keras 3 backend (tf.data under TensorFlow, a NumPy ``PyDataset`` elsewhere), so the
run folders that come back are the ones ``emotion-batch bundle`` takes here.

Here (once):
    python benchmarks/train_on_gpu.py pack --data ../shared/datasets/fer2013 --out .devdata
    (FER2013's Training and PublicTest rows as one lossless PNG, plus the few PrivateTest rows that repeat a
    Training face, so that the cleaning step drops exactly what it drops here; the FER+ vote files as they are)
    and download the Keras wheels into .devdata/wheels (see the README of the device tool).

There (one call):
    python3 benchmarks/train_on_gpu.py run --pack .devdata --work /tmp/gpu --out "$OUT" --budget 500 [--labels ferplus-soft]

``run`` rebuilds the CSV (checking each split's pixel digest), then trains in two phases, four runs at a time
on the one GPU: phase A the teachers (and a plain student), phase B students distilled from phase A's
teachers. Each run first trains two epochs on its own ("probe", thrown away) to time an epoch with the other
three running, then gets as many epochs as fit in its phase (the cosine schedule needs the count up front).
A run still going at its phase's end is stopped; its best (weight-averaged) epoch so far is kept.
``--labels ferplus-soft`` trains every run on the FER+ annotators' vote shares (the faces with a clear majority;
the epoch chosen on PublicTest's FER+ majority), the convention the bundled model answers in since
``vgg_gap_small_v5``; without it the teachers learn FER2013's original labels and the students mix 30 % of the
votes into them.
What comes back: each run folder without ``last.keras`` (``best.weights.h5``, ``history.json``,
``config.json``, ``spec.json``, ``state.json``), in tar files of at most 16 MB, and ``train_on_gpu.log``.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SPLITS = ("Training", "PublicTest", "PrivateTest")

#: Shared by every run: the recipe of the CPU runs (SGD with Nesterov momentum, cosine, EMA of the weights).
BASE = {"optimizer": "sgd", "learning_rate": 0.05, "batch_size": 128, "label_smoothing": 0.1, "ema": 0.999,
        "patience": 1000}
#: What ``--labels ferplus-soft`` changes in every run: the vote shares are the targets, already soft.
FERPLUS_SOFT = {"labels": "ferplus-soft", "label_smoothing": 0.0, "ferplus_weight": 0.0}
TEACHERS = [
    {"name": "gpu_teacher_wide_s1", "model": "vgg_gap_wide", "seed": 1},
    {"name": "gpu_teacher_wide_s2", "model": "vgg_gap_wide", "seed": 2},
    {"name": "gpu_teacher_wide_s3", "model": "vgg_gap_wide", "seed": 3},
    {"name": "gpu_small_fp03", "model": "vgg_gap_small", "seed": 4, "ferplus_weight": 0.3},
]
STUDENTS = [
    {"name": "gpu_student_tw05_t2_s1", "teacher_weight": 0.5, "teacher_temperature": 2.0, "seed": 11},
    {"name": "gpu_student_tw05_t2_s2", "teacher_weight": 0.5, "teacher_temperature": 2.0, "seed": 12},
    {"name": "gpu_student_tw07_t2", "teacher_weight": 0.7, "teacher_temperature": 2.0, "seed": 13},
    {"name": "gpu_student_tw05_t1", "teacher_weight": 0.5, "teacher_temperature": 1.0, "seed": 14},
]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def _pixels_digest(rows: list[np.ndarray]) -> str:
    h = hashlib.sha256()
    for r in rows:
        h.update(r.tobytes())
    return h.hexdigest()


def pack(data: Path, out: Path) -> None:
    """FER2013 as travels: ``pixels.png`` (one 48-px-wide column of faces), ``rows.csv.gz`` (emotion, Usage),
    ``digests.json``, and the FER+ files copied."""
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    with gzip.open(data / "fer2013.csv.gz", "rt", newline="") as f:
        rows = list(csv.DictReader(f))
    pixels = [np.array(r["pixels"].split(), dtype=np.uint8) for r in rows]
    training = {p.tobytes() for p, r in zip(pixels, rows) if r["Usage"] == "Training"}
    keep = [i for i, r in enumerate(rows) if r["Usage"] != "PrivateTest" or pixels[i].tobytes() in training]
    Image.fromarray(np.stack([pixels[i] for i in keep]).reshape(-1, 48)).save(out / "pixels.png", optimize=True)
    with gzip.open(out / "rows.csv.gz", "wt", newline="") as f:
        w = csv.writer(f)
        w.writerow(["emotion", "Usage"])
        w.writerows([rows[i]["emotion"], rows[i]["Usage"]] for i in keep)
    digests = {u: _pixels_digest([pixels[i] for i in keep if rows[i]["Usage"] == u]) for u in SPLITS}
    (out / "digests.json").write_text(json.dumps(digests, indent=1))
    for name in ("fer2013new.csv.gz", "row_index.csv.gz"):
        shutil.copy(data / name, out / name)
    sizes = {p.name: p.stat().st_size for p in out.iterdir() if p.is_file()}
    log(f"packed {len(keep)} of {len(rows)} rows ({sum(r['Usage'] == 'PrivateTest' for r in (rows[i] for i in keep))} "
        f"PrivateTest rows that repeat a Training face): {sizes}")


def unpack(pack_dir: Path, folder: Path) -> None:
    """The pack back into a ``fer2013.csv`` folder that ``load_fer2013`` reads; every split's digest checked."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    faces = np.asarray(Image.open(pack_dir / "pixels.png")).reshape(-1, 48 * 48)
    with gzip.open(pack_dir / "rows.csv.gz", "rt", newline="") as f:
        rows = list(csv.DictReader(f))
    if len(rows) != len(faces):
        raise SystemExit(f"pack: {len(rows)} rows but {len(faces)} faces")
    expected = json.loads((pack_dir / "digests.json").read_text())
    for u in SPLITS:
        got = _pixels_digest([faces[i] for i, r in enumerate(rows) if r["Usage"] == u])
        if got != expected[u]:
            raise SystemExit(f"pack: the {u} pixels do not match their digest")
    buf = io.StringIO()
    buf.write("emotion,pixels,Usage\n")
    for r, p in zip(rows, faces):
        buf.write(f"{r['emotion']},{' '.join(map(str, p.tolist()))},{r['Usage']}\n")
    (folder / "fer2013.csv").write_text(buf.getvalue())
    for name in ("fer2013new.csv.gz", "row_index.csv.gz"):
        shutil.copy(pack_dir / name, folder / name)
    log(f"unpacked {len(rows)} rows into {folder} (digests match)")


def worker(args: argparse.Namespace) -> None:
    """One run: a two-epoch probe to time an epoch, then the run itself with the epochs that fit."""
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    sys.path.insert(0, str(ROOT))
    from emotion_batch.training.fit import TrainConfig, train

    options = json.loads(args.config)
    deadline = float(args.deadline)
    probe = TrainConfig(data=args.data, **{**options, "epochs": 2, "name": options["name"] + "_probe"})
    started = time.time()
    train(probe, runs_dir=args.probe_runs, verbose=0)
    history = json.loads((Path(args.probe_runs) / probe.name / "history.json").read_text())
    # an epoch's seconds include its validation and the weight average's; the checkpoint saves after it and
    # the other runs' start-ups slowing this one down are not in them: 15 % on top (on the first lease, taking
    # the seconds without the weight average's validation, half of the epoch, stopped most runs before the end)
    epoch = max(history[-1]["seconds"], 0.5) * 1.15
    setup = max(time.time() - started - sum(h["seconds"] for h in history), 0.0)  # loading, compiling
    left = deadline - time.time() - setup - 5.0
    epochs = int(min(max(left // epoch, 2), args.max_epochs))
    log(f"{options['name']}: probe epoch {epoch:.1f} s, set-up {setup:.0f} s, {left:.0f} s left: {epochs} epochs")
    config = TrainConfig(data=args.data, **{**options, "epochs": epochs})
    train(config, runs_dir=args.runs, verbose=0)
    log(f"{options['name']}: done")


def _phase(name: str, runs: list[dict], *, args: argparse.Namespace, deadline: float, env: dict) -> None:
    log(f"phase {name}: {len(runs)} runs until {time.strftime('%H:%M:%S', time.localtime(deadline))}")
    procs = []
    for options in runs:
        logf = open(Path(args.work) / f"{options['name']}.log", "w")
        cmd = [sys.executable, str(Path(__file__).resolve()), "worker", "--config", json.dumps(options),
               "--data", str(Path(args.work) / "fer"), "--runs", str(Path(args.work) / "runs"),
               "--probe-runs", str(Path(args.work) / "probes"), "--deadline", str(deadline),
               "--max-epochs", str(args.max_epochs)]
        procs.append((options["name"], subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env), logf))
    while any(p.poll() is None for _, p, _ in procs) and time.time() < deadline + 10:
        time.sleep(20)
        for run, _, _ in procs:
            h = Path(args.work) / "runs" / run / "history.json"
            if h.is_file():
                last = json.loads(h.read_text())[-1]
                log(f"  {run}: epoch {last['epoch']} ema_val {last.get('ema_val_accuracy', float('nan')):.4f} "
                    f"({last['seconds']:.1f} s)")
    for run, p, logf in procs:
        if p.poll() is None:
            log(f"  {run}: still going at the phase's end: stopped (its best epoch so far is kept)")
            p.terminate()
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        logf.close()
        if p.returncode not in (0, None, -15):
            log(f"  {run}: exited {p.returncode}; its log ends:\n" + (Path(args.work) / f"{run}.log").read_text()[-3000:])


def _without_optimizer(path: Path) -> None:
    """Drop the optimizer's variables (momentum, weight average: twice the model's size) from a weights file:
    ``load_best`` builds an uncompiled model, which reads the layers' weights alone."""
    import h5py

    tmp = path.with_suffix(".tmp.h5")
    with h5py.File(path, "r") as src, h5py.File(tmp, "w") as dst:
        for key, value in src.attrs.items():
            dst.attrs[key] = value
        for key in src:
            if key != "optimizer":
                src.copy(src[key], dst, name=key)
    os.replace(tmp, path)


def run(args: argparse.Namespace) -> None:
    t0 = time.time()
    work, out = Path(args.work), Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    unpack(Path(args.pack), work / "fer")
    env = {**os.environ, "KERAS_BACKEND": args.backend, "XLA_PYTHON_CLIENT_MEM_FRACTION": "0.15",
           "JAX_COMPILATION_CACHE_DIR": str(work / "jax_cache"), "PYTHONUNBUFFERED": "1",
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    end = t0 + args.budget
    split = time.time() + (end - time.time()) * args.teacher_share
    extra = {"limit": args.limit} if args.limit else {}  # a rehearsal on the CPU
    votes = FERPLUS_SOFT if args.labels == "ferplus-soft" else {}
    teachers = [{**BASE, **extra, **t, **({"model": args.teacher_model} if args.teacher_model and t["model"] == "vgg_gap_wide" else {}),
                 **votes} for t in TEACHERS][: args.runs_per_phase]
    _phase("A (teachers)", teachers, args=args, deadline=split, env=env)
    ready = [str(work / "runs" / t["name"]) for t in teachers
             if t["name"].startswith("gpu_teacher") and (work / "runs" / t["name"] / "best.weights.h5").is_file()]
    if ready:
        students = [{**BASE, **extra, "model": "vgg_gap_small", "ferplus_weight": 0.3, "teachers": ready, **s, **votes}
                    for s in STUDENTS][: args.runs_per_phase]
        _phase("B (distilled students)", students, args=args, deadline=end, env=env)
    else:
        log("phase B skipped: no teacher finished an epoch")
    # what comes back: each run folder without last.keras (and the teachers' cached targets), <= 16 MB a file
    bundle, size, k = None, 0, 0
    for folder in sorted((work / "runs").iterdir()) if (work / "runs").is_dir() else []:
        if (folder / "best.weights.h5").is_file():
            _without_optimizer(folder / "best.weights.h5")
        files = [p for p in folder.iterdir() if p.name not in ("last.keras", "teacher_targets.npz", "ema.weights.h5")]
        need = sum(p.stat().st_size for p in files)
        if bundle is None or size + need > 15_000_000:
            if bundle is not None:
                bundle.close()
            k += 1
            bundle, size = tarfile.open(out / f"runs_{k}.tar.gz", "w:gz"), 0
        for p in files:
            bundle.add(p, arcname=f"{folder.name}/{p.name}")
        log(f"  {folder.name}: {need / 1e6:.1f} MB into {Path(bundle.name).name}")
        size += need
        state = json.loads((folder / "state.json").read_text()) if (folder / "state.json").is_file() else {}
        log(f"{folder.name}: best ema PublicTest {state.get('best_val_accuracy', float('nan')):.4f} at epoch "
            f"{state.get('best_epoch')} of {state.get('epoch')}")
    if bundle is not None:
        bundle.close()
    log(f"all done in {time.time() - t0:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    r = sub.add_parser("run")
    r.add_argument("--pack", required=True)
    r.add_argument("--work", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--budget", type=float, default=500.0, help="seconds for both phases (default 500)")
    r.add_argument("--teacher-share", type=float, default=0.5, help="share of the budget for phase A")
    r.add_argument("--runs-per-phase", type=int, default=4)
    r.add_argument("--max-epochs", type=int, default=120)
    r.add_argument("--backend", default="jax")
    r.add_argument("--labels", choices=["original", "ferplus-soft"], default="original",
                   help="the runs' targets: FER2013's labels (with 30 %% of the FER+ votes for the students), or the votes")
    r.add_argument("--teacher-model", default=None, help="another spec for the teachers (a rehearsal on the CPU)")
    r.add_argument("--limit", type=int, default=None, help="rows per split (a rehearsal on the CPU)")
    w = sub.add_parser("worker")
    for name in ("--config", "--data", "--runs", "--probe-runs", "--deadline"):
        w.add_argument(name, required=True)
    w.add_argument("--max-epochs", type=int, default=120)
    args = parser.parse_args()
    {"pack": lambda: pack(args.data, args.out), "run": lambda: run(args), "worker": lambda: worker(args)}[args.command]()


if __name__ == "__main__":
    main()
