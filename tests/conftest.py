"""Small real data built at test time: a campaign tree of real face photos and bad files, a tiny
seeded Keras model, SQLite databases in tmp_path."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from .db_engines import ENGINES, db_url, postgres_server  # noqa: E402,F401  (fixtures: both database engines)

ROOT = Path(__file__).resolve().parent.parent
FER_DIR = ROOT.parent / "shared" / "datasets" / "fer2013"


FER_SPLITS = ("Training", "PublicTest", "PrivateTest")

# Modules whose every test depends on a system package that .ci/run installs only for its second pass:
# the browser test (chromium) and the report PDFs (pdftoppm/pdftotext, and libharfbuzz-subset0, which Chromium
# pulls in and which changes how WeasyPrint embeds fonts).
SYSTEM_PACKAGE_MODULES = frozenset({"test_serve_browser.py", "test_reports.py", "test_report_outputs.py"})


def needs_system_packages(item) -> bool:
    """Whether installing PostgreSQL, Chromium or poppler-utils changes what this test runs or checks."""
    callspec = getattr(item, "callspec", None)
    on_postgresql = callspec is not None and "postgresql" in callspec.params.values()
    return on_postgresql or item.path.name in SYSTEM_PACKAGE_MODULES


def pytest_collection_modifyitems(config, items):
    """Mark ``system_packages`` (see setup.cfg) so that .ci/run's second pass runs what those packages change."""
    for item in items:
        if needs_system_packages(item):
            item.add_marker(pytest.mark.system_packages)


def write_fer_csv(folder: Path, rows) -> Path:
    """``folder/fer2013.csv`` in FER2013's layout from ``(label, 48x48 uint8 face, usage)`` rows; returns ``folder``."""
    lines = ["emotion,pixels,Usage"]
    lines += [f"{label},{' '.join(str(v) for v in face.ravel())},{usage}" for label, face, usage in rows]
    (folder / "fer2013.csv").write_text("\n".join(lines) + "\n")
    return folder


def fake_fer(folder: Path, n_per_split: int = 60, seed: int = 0) -> Path:
    """A small FER2013 folder: ``n_per_split`` faces in each split, row i labelled ``i % 7``, each face's
    brightness following its label (so that even a tiny model learns something); returns ``folder``."""
    rng = np.random.default_rng(seed)
    rows = []
    for usage in FER_SPLITS:
        for i in range(n_per_split):
            label = i % 7
            rows.append((label, np.clip(rng.normal(30 + label * 30, 20, (48, 48)), 0, 255).astype(np.uint8), usage))
    return write_fer_csv(folder, rows)


def tiny_ferplus_run(folder: Path, n_per_split: int = 28) -> tuple[Path, dict]:
    """``fake_fer`` with ``fake_ferplus`` votes, and one epoch of the ``tiny_test`` spec trained on it under
    ``folder/runs``: the data and the run's state (``run_dir``), for tests that bundle a run."""
    from emotion_batch.training.fit import TrainConfig, train

    data = fake_ferplus(fake_fer(folder, n_per_split=n_per_split), n_per_split=n_per_split)
    state = train(TrainConfig(data=str(data), model="tiny_test", epochs=1, batch_size=32, augment=False),
                  runs_dir=folder / "runs", verbose=0)
    return data, state


def fake_ferplus(folder, n_per_split=60, seed=0):
    """FER+ vote files for ``fake_fer``'s rows: row i of a split gets 6 votes for its label and 4 for
    neutral, except every 10th row, whose votes all go to "unknown" (no vote on our classes)."""
    import gzip

    index = ["orig_row,Usage"]
    votes = ["Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"]
    fer_names = ["anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"]  # FER2013 label order
    columns = votes[0].split(",")[2:]
    row = 0
    for usage in ("Training", "PublicTest", "PrivateTest"):
        for i in range(n_per_split):
            counts = dict.fromkeys(columns, 0)
            if i % 10 == 0:
                counts["unknown"] = 10
            else:
                counts[fer_names[i % 7]] += 6
                counts["neutral"] += 4
            index.append(f"{row},{usage}")
            votes.append(f"{usage},fer{row:07d}.png," + ",".join(str(counts[c]) for c in columns))
            row += 1
    with gzip.open(folder / "row_index.csv.gz", "wt") as f:
        f.write("\n".join(index) + "\n")
    with gzip.open(folder / "fer2013new.csv.gz", "wt") as f:
        f.write("\n".join(votes) + "\n")
    return folder


def write_photo(path: Path, image: Image.Image, **save) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **save)
    return path


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory) -> Path:
    """A tiny seeded model of the shipped ``tiny_test`` spec, saved as a .keras file."""
    import keras

    from emotion_batch.training.architectures import build_from_spec, load_spec

    keras.utils.set_random_seed(0)
    model = build_from_spec(load_spec("tiny_test"))
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    model.save(path)
    return path


@pytest.fixture(scope="session")
def tiny_classifier(tiny_model_file):
    from emotion_batch.classifier import Classifier

    return Classifier.load(str(tiny_model_file), batch_size=8)


@pytest.fixture(scope="session")
def blazeface():
    """The BlazeFace detector (full-range model), built once for the session."""
    from emotion_batch.faces import build_detector

    return build_detector("blazeface")


@pytest.fixture()
def campaign_tree(tmp_path) -> dict:
    """ROOT/<campaign>/<ad>/... with every kind of input the job meets, and what each should give."""
    from emotion_batch.sample import jpeg_bytes, no_face_photo, synthetic_photo

    rng = np.random.default_rng(3)
    root = tmp_path / "campaigns"
    ad1 = root / "summer" / "ad_one"
    ad2 = root / "summer" / "ad two"
    ad3 = root / "winter" / "teaser"
    expected: dict[str, tuple[str, int]] = {}  # path -> (status, faces)

    for i in range(3):
        write_photo(ad1 / f"single_{i}.jpg", synthetic_photo(rng, 640, 480, 1), quality=90)
        expected[f"summer/ad_one/single_{i}.jpg"] = ("ok", 1)
    write_photo(ad1 / "nested" / "deeper" / "GROUP.JPG", synthetic_photo(rng, 1280, 720, 3), quality=90)
    expected["summer/ad_one/nested/deeper/GROUP.JPG"] = ("ok", 3)
    (ad1 / "rotated.jpg").write_bytes(jpeg_bytes(synthetic_photo(rng, 640, 480, 1), orientation=6))
    expected["summer/ad_one/rotated.jpg"] = ("ok", 1)
    write_photo(ad1 / "cmyk.jpg", synthetic_photo(rng, 640, 480, 1).convert("CMYK"), quality=90)
    expected["summer/ad_one/cmyk.jpg"] = ("ok", 1)
    gray16 = np.asarray(synthetic_photo(rng, 640, 480, 1).convert("L"), dtype=np.uint16) * 257
    write_photo(ad1 / "sixteen_bit.png", Image.fromarray(gray16))
    expected["summer/ad_one/sixteen_bit.png"] = ("ok", 1)
    write_photo(ad1 / "palette.png", synthetic_photo(rng, 640, 480, 1).convert("P"))
    expected["summer/ad_one/palette.png"] = ("ok", 1)
    write_photo(ad1 / "transparent.webp", synthetic_photo(rng, 640, 480, 1).convert("RGBA"))
    expected["summer/ad_one/transparent.webp"] = ("ok", 1)

    write_photo(ad2 / "no_face.jpg", no_face_photo(rng, 640, 480), quality=90)
    expected["summer/ad two/no_face.jpg"] = ("no_face", 0)
    good = jpeg_bytes(synthetic_photo(rng, 640, 480, 1))
    (ad2 / "truncated.jpg").write_bytes(good[: len(good) // 3])
    expected["summer/ad two/truncated.jpg"] = ("unreadable", 0)
    (ad2 / "empty.png").write_bytes(b"")
    expected["summer/ad two/empty.png"] = ("unreadable", 0)
    (ad2 / "not_really.jpg").write_text("this is text with an image extension\n")
    expected["summer/ad two/not_really.jpg"] = ("unreadable", 0)
    (ad2 / "garbage.bmp").write_bytes(os.urandom(3000))
    expected["summer/ad two/garbage.bmp"] = ("unreadable", 0)
    write_photo(ad2 / "bmp_face.bmp", synthetic_photo(rng, 640, 480, 1))
    expected["summer/ad two/bmp_face.bmp"] = ("ok", 1)

    write_photo(ad3 / "tiff_face.TIFF", synthetic_photo(rng, 480, 640, 2))
    expected["winter/teaser/tiff_face.TIFF"] = ("ok", 2)
    # skipped, never rows: hidden files and folders, non-image extensions, files outside an ad folder
    write_photo(ad3 / ".hidden.jpg", synthetic_photo(rng, 320, 240, 1))
    write_photo(ad3 / ".cache" / "thumb.jpg", synthetic_photo(rng, 320, 240, 1))
    (ad3 / "notes.txt").write_text("brief\n")
    (ad3 / "clip.mp4").write_bytes(b"\x00" * 64)  # a run records it as an unreadable video; discovery alone skips it
    write_photo(root / "summer" / "stray.jpg", synthetic_photo(rng, 320, 240, 1))
    return {"root": root, "expected": expected, "hidden": 2, "not_image": 2, "videos": {"winter/teaser/clip.mp4": "unreadable"}}


def png_bytes(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


_ENGINE_RESULTS: dict[str, dict[str, int]] = {}


def pytest_runtest_logreport(report):
    """Count the database tests' outcomes per engine (``[sqlite]``/``[postgresql]`` in the test id)."""
    if report.when != "call" and not (report.when == "setup" and report.outcome != "passed"):
        return
    params = report.nodeid.rpartition("[")[2].rstrip("]").split("-") if report.nodeid.endswith("]") else []
    for engine in ENGINES:
        if engine in params:
            counts = _ENGINE_RESULTS.setdefault(engine, {})
            counts[report.outcome] = counts.get(report.outcome, 0) + 1


def pytest_terminal_summary(terminalreporter):
    """Say which engines the database tests ran on (CI must show both)."""
    if not _ENGINE_RESULTS:
        return
    parts = []
    for engine in ENGINES:
        counts = _ENGINE_RESULTS.get(engine, {})
        text = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items())) or "not run"
        parts.append(f"{engine}: {text}")
    ran = [e for e in ENGINES if _ENGINE_RESULTS.get(e, {}).get("passed")]
    terminalreporter.write_line(f"database tests ran on {' and '.join(ran) or 'no engine'} ({'; '.join(parts)})")
