"""How close are the reports' shares to the true shares? Raw (classify and count) against corrected.

Draws samples of FER2013 PrivateTest faces (the split no choice was made on; the statistics the
correction uses come from PublicTest) with known class mixes, as an ad's faces would be, and compares
the shares the reports would state with the sample's true shares:

- mixes: ``dirichlet`` (every mix equally likely: Dirichlet, alpha 1) and ``ads`` (realistic ad mixes,
  mostly neutral and happy: Dirichlet with concentration 20 x ``AD_MIX``);
- ``n`` faces per sample (30, 100, 500), 1,000 samples per setting; faces of each class are drawn with
  replacement from the PrivateTest faces of that class (disgust has only 55);
- printed: the mean absolute error of the shares (mean over samples of |estimate - truth|, per class and
  over the seven classes), raw against each correction method, and the coverage of the corrected 95 %
  intervals (the share of sample x class pairs whose true share lies inside the interval).

PrivateTest is classified once with the classifier the job builds (``load_classifier``: the backend
``auto`` picks here) and its probabilities are cached under ``benchmarks/.cache/``; the samples resample
those probabilities.

    python benchmarks/quantification.py                          # every setting, pacc with intervals
    python benchmarks/quantification.py --samples 200 --methods pacc,acc,em --interval-methods pacc,acc
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from common import machine_line  # noqa: E402

from emotion_batch.aggregate.correction import CORRECTION_MIN_FACES, CORRECTION_METHOD  # noqa: E402
from emotion_batch.aggregate.quantify import correct_shares, estimate_shares  # noqa: E402
from emotion_batch.labels import EMOTIONS, NUM_CLASSES  # noqa: E402

FER = HERE.parent.parent / "shared" / "datasets" / "fer2013"
CACHE = HERE / ".cache"
#: The centre of the realistic ad mixes: mostly neutral and happy.
AD_MIX = {"angry": 0.04, "disgust": 0.01, "fear": 0.03, "happy": 0.32, "neutral": 0.45, "sad": 0.08, "surprise": 0.07}


def private_probabilities(model: str | None, backend: str) -> tuple[np.ndarray, np.ndarray, str]:
    """PrivateTest labels (those the model answers in: the original ones, or the FER+ majority) and the job
    classifier's probabilities, cached by model id."""
    from emotion_batch.classifier import load_classifier, locate_model

    from emotion_batch.aggregate.correction import manifest_temperature
    from emotion_batch.classifier import bundled_models

    ref = locate_model(model, backend=backend)
    temperature = manifest_temperature(ref.model_id, bundled_models())  # probabilities change with it
    cache = CACHE / f"privatetest-{ref.model_id.replace('@', '-')}-t{temperature}.npz"
    if cache.is_file():
        saved = np.load(cache)
        return saved["y"], saved["p"], ref.model_id
    from emotion_batch.training.data import load_fer2013

    classifier = load_classifier(model, backend=backend, batch_size=512)
    # against the labels the model answers in (and its statistics were measured against)
    labels = bundled_models()["models"].get(ref.model_id.partition("@")[0], {}).get("labels", "original")
    faces = load_fer2013(FER, split="test", size=classifier.size, channels=classifier.channels, labels=labels)
    p = classifier.predict(faces.x)
    CACHE.mkdir(exist_ok=True)
    np.savez_compressed(cache, y=faces.y, p=p)
    return faces.y, p, classifier.model_id


def draw_mix(rng: np.random.Generator, kind: str) -> np.ndarray:
    if kind == "dirichlet":
        return rng.dirichlet(np.ones(NUM_CLASSES))
    if kind == "ads":
        return rng.dirichlet(20.0 * np.array([AD_MIX[e] for e in EMOTIONS]))
    raise ValueError(f"mix must be one of ['dirichlet', 'ads']. Received: mix={kind!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="bundled model name (default: the manifest's default)")
    parser.add_argument("--backend", default="auto", choices=["auto", "keras", "litert"])
    parser.add_argument("--samples", type=int, default=1000, help="samples per setting")
    parser.add_argument("--sizes", default="30,100,500")
    parser.add_argument("--mixes", default="dirichlet,ads")
    parser.add_argument("--methods", default=CORRECTION_METHOD, help="correction methods to compare (pacc,acc,em)")
    parser.add_argument("--interval-methods", default=CORRECTION_METHOD,
                        help="methods whose bootstrap intervals are checked (slow for em)")
    parser.add_argument("--draws", type=int, default=400, help="bootstrap draws per interval")
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--note", default="", help="a line about the machine's state, printed with the results")
    args = parser.parse_args()

    from emotion_batch.aggregate.correction import load_share_statistics, statistics_for

    started = time.perf_counter()
    y, p, model_id = private_probabilities(args.model, args.backend)
    found = statistics_for([model_id], load_share_statistics())
    if model_id not in found:
        sys.exit(f"no statistics for {model_id}: run `emotion-batch model-stats` first")
    stats = found[model_id]
    methods = [m for m in args.methods.split(",") if m]
    interval_methods = [m for m in args.interval_methods.split(",") if m]
    by_class = [np.flatnonzero(y == c) for c in range(NUM_CLASSES)]
    print(machine_line())
    if args.note:
        print(f"note: {args.note}")
    print(f"model {model_id}; statistics from PublicTest ({int(stats.counts.sum())} faces); samples from "
          f"PrivateTest ({len(y)} faces, accuracy {(p.argmax(1) == y).mean():.4f}); {args.samples} samples per "
          f"setting, {args.draws} bootstrap draws per interval, seed {args.seed}; the reports fall back to raw "
          f"below {CORRECTION_MIN_FACES} faces")
    rows = []
    for kind in args.mixes.split(","):
        for n in (int(v) for v in args.sizes.split(",")):
            rng = np.random.default_rng([args.seed, n, len(kind)])
            errors = {m: np.zeros((args.samples, NUM_CLASSES)) for m in ["raw", *methods]}
            inside = {m: np.zeros((args.samples, NUM_CLASSES), dtype=bool) for m in interval_methods}
            widths = {m: np.zeros((args.samples, NUM_CLASSES)) for m in interval_methods}
            t0 = time.perf_counter()
            for s in range(args.samples):
                counts = rng.multinomial(n, draw_mix(rng, kind))
                index = np.concatenate([rng.choice(by_class[c], size=k) for c, k in enumerate(counts) if k])
                truth = counts / n
                probs = p[index]
                raw = np.bincount(probs.argmax(axis=1), minlength=NUM_CLASSES) / n
                errors["raw"][s] = np.abs(raw - truth)
                for m in methods:
                    if m in interval_methods:
                        est = estimate_shares([(probs, stats)], method=m, draws=args.draws, seed=int(rng.integers(2**31)))
                        errors[m][s] = np.abs(est.shares - truth)
                        inside[m][s] = (est.lower <= truth + 1e-12) & (truth <= est.upper + 1e-12)
                        widths[m][s] = est.upper - est.lower
                    else:
                        errors[m][s] = np.abs(correct_shares(probs, stats, method=m) - truth)
            rows.append((kind, n, errors, inside, widths, time.perf_counter() - t0))

    print()
    print("MAE of the shares (mean |estimate - true share|), overall (the mean over the seven classes) and per class;")
    print("coverage: share of sample x class pairs whose true share is inside the 95 % interval (target 0.93-0.97)")
    print()
    header = f"| mix | n | method | MAE | {' | '.join(EMOTIONS)} | coverage | mean width |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for kind, n, errors, inside, widths, seconds in rows:
        for m, err in errors.items():
            cover = f"{inside[m].mean():.3f}" if m in inside else ""
            width = f"{widths[m].mean():.3f}" if m in widths else ""
            per_class = " | ".join(f"{v:.3f}" for v in err.mean(axis=0))
            print(f"| {kind} | {n} | {m} | **{err.mean():.4f}** | {per_class} | {cover} | {width} |")
    print()
    print("| mix | n | raw MAE | " + " | ".join(f"{m} MAE" for m in methods) + " | corrected / raw | "
          + " | ".join(f"{m} coverage" for m in interval_methods) + " | s |")
    print("|" + "---|" * (5 + len(methods) + len(interval_methods)))
    for kind, n, errors, inside, widths, seconds in rows:
        raw = errors["raw"].mean()
        first = errors[methods[0]].mean() if methods else float("nan")
        print(f"| {kind} | {n} | {raw:.4f} | " + " | ".join(f"{errors[m].mean():.4f}" for m in methods)
              + f" | {first / raw:.2f} | " + " | ".join(f"{inside[m].mean():.3f}" for m in interval_methods)
              + f" | {seconds:.0f} |")
    print(f"\ntotal {time.perf_counter() - started:.0f} s; load average after the run "
          + ", ".join(f"{v:.2f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main()
