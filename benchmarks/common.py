"""What the benchmark scripts share: inputs made from public-domain faces, the CLI run with its peak
memory, the model's arithmetic and this CPU's peak.

Inputs come from scikit-image's public-domain astronaut portrait (``emotion_batch.sample``), pasted into
photos of a given size with a given number of faces, or cut into face crops; every file differs by a few
noisy pixels, so nothing is deduplicated by hash.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil
from PIL import Image, ImageEnhance, ImageOps

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from emotion_batch.faces import DETECTORS  # noqa: E402
from emotion_batch.sample import head, jpeg_bytes, synthetic_photo  # noqa: E402

#: the job's default detector
DEFAULT_DETECTOR = DETECTORS[0]

#: The photo settings of the issue: (width, height, faces per photo).
PHOTO_SETTINGS = ((640, 480, 1), (640, 480, 5), (1920, 1080, 1), (1920, 1080, 5))


def machine_line() -> str:
    """One line naming this machine: CPU model, cores, memory, Python, load while it ran."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    return (f"machine: {model}, {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB; "
            f"python {platform.python_version()}; load average before the run {load}")


def write_photos(folder: Path, count: int, width: int, height: int, faces: int, *, seed: int = 0,
                 ads: int = 4, quality: int = 90, background: str = "gradient", distinct: int = 25) -> list[Path]:
    """``count`` distinct JPEG photos with ``faces`` real faces each under ``folder/bench/ad_<k>/``,
    pasted on a smooth ``gradient`` or on a real ``scene`` (see ``emotion_batch.sample.synthetic_photo``).

    ``distinct`` base photos differ in face size, place, mirror, light and background; the ``count`` files
    cycle through them, each with a few noisy pixels so that no two files share a hash."""
    rng = np.random.default_rng(seed)
    variants = [np.asarray(synthetic_photo(rng, width, height, faces, background=background))
                for _ in range(min(count, distinct))]
    paths = []
    for i in range(count):
        target = folder / "bench" / f"ad_{i % ads}" / f"photo_{i:06d}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        arr = variants[i % len(variants)].copy()
        arr[0, :8] = rng.integers(0, 255, (8, 3))
        target.write_bytes(jpeg_bytes(Image.fromarray(arr), quality=quality))
        paths.append(target)
    return paths


def face_crops(count: int, side: int = 48, *, seed: int = 0, gray: bool = True) -> np.ndarray:
    """``count`` distinct face crops ``(count, side, side)`` (or ``(..., 3)``), ``uint8``: the astronaut's face,
    shifted, scaled, mirrored and relit a little, as a detector's crops vary."""
    rng = np.random.default_rng(seed)
    src = head("astronaut").crop((44, 40, 169, 170))  # the face and a little context (FER2013-like framing)
    base = []
    for _ in range(min(count, 64)):
        dx, dy = rng.integers(-6, 7, 2)
        grow = int(rng.integers(-8, 9))
        box = (max(0, dx - grow), max(0, dy - grow), src.width + dx + grow, src.height + dy + grow)
        face = src.crop(box).resize((side, side), Image.Resampling.BILINEAR)
        if rng.random() < 0.5:
            face = ImageOps.mirror(face)
        face = ImageEnhance.Brightness(face).enhance(rng.uniform(0.8, 1.2))
        base.append(np.asarray(face.convert("L") if gray else face))
    out = np.stack([base[i % len(base)] for i in range(count)]).copy()
    noise = rng.integers(0, 255, (count, 2), dtype=np.uint8)
    out[:, 0, 0], out[:, 0, 1] = (noise[:, 0], noise[:, 1]) if gray else (noise[:, :1], noise[:, 1:])
    return out


def write_crops(folder: Path, crops: np.ndarray, *, per_ad: int = 1000, ext: str = ".jpg") -> None:
    """One image file per crop under ``folder/crops/faces/ad_<k>/`` (campaign ``faces``, ``per_ad`` files per ad)."""
    for i, crop in enumerate(crops):
        target = folder / "crops" / "faces" / f"ad_{i // per_ad:04d}" / f"face_{i:07d}{ext}"
        if i % per_ad == 0:
            target.parent.mkdir(parents=True, exist_ok=True)
        if ext == ".jpg":
            target.write_bytes(jpeg_bytes(Image.fromarray(crop), quality=92))
        else:
            Image.fromarray(crop).save(target)


class PeakRSS:
    """Samples the resident memory of a process and all its children every 20 ms; ``peak`` in bytes."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                total = self.proc.memory_info().rss
                for child in self.proc.children(recursive=True):
                    try:
                        total += child.memory_info().rss
                    except psutil.Error:
                        pass
                self.peak = max(self.peak, total)
            except psutil.Error:
                pass
            time.sleep(0.02)

    def __enter__(self) -> "PeakRSS":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def run_measured(cmd: list[str], *, env: dict | None = None) -> tuple[str, float, int]:
    """Run ``cmd``; return its stdout, wall seconds and the peak RSS of its process tree (bytes).

    Raises:
        SystemExit: the command failed (its stderr is shown).
    """
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    started = time.monotonic()
    popen = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    with PeakRSS(popen.pid) as rss:
        out, err = popen.communicate()
    wall = time.monotonic() - started
    if popen.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} ...: exit {popen.returncode}\n{err[-3000:]}")
    return out, wall, rss.peak


def run_job(root: Path, db: Path, *, detector: str = DEFAULT_DETECTOR, workers: int | None = None, batch: int = 256,
            engine: str = "local", extra: list[str] | None = None) -> dict:
    """``emotion-batch run`` in a fresh process: its JSON summary plus ``wall_seconds`` and ``peak_rss``."""
    cmd = [sys.executable, "-m", "emotion_batch", "run", str(root), "--db", f"sqlite:///{db}", "--detector", detector,
           "--batch-size", str(batch), "--no-reports", "--json", "--engine", engine, *(extra or [])]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    out, wall, peak = run_measured(cmd)
    summary = json.loads(out)
    summary.update(wall_seconds=wall, peak_rss=peak)
    return summary


# ---- arithmetic --------------------------------------------------------------------------------------


def mirrored_text(row: dict) -> str:
    """What a ``classify_worker.py`` result row says about its model's flip gate ("" for a model without one):
    its figure holds only for faces as uncertain as the ones timed."""
    if "mirrored_share" not in row:
        return ""
    return f" (flip gate {row['flip_gate']:g}: {100 * row['mirrored_share']:.1f} % of these faces mirrored)"


def model_macs(model) -> int:
    """Multiply-accumulates per input of a Keras model: convolutions (plain, depthwise, separable) and
    dense layers; batch norm, activations, pooling and adds are left out (a few percent at most). A nested
    model counts once per call (flip averaging calls the network twice)."""
    import keras

    total = 0
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            total += max(1, len(getattr(layer, "_inbound_nodes", []))) * model_macs(layer)
            continue
        if isinstance(layer, keras.layers.Dense):
            total += int(np.prod(layer.kernel.shape))
            continue
        if not isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)):
            continue
        out_h, out_w, out_c = layer.output.shape[1:4]
        in_c = layer.input.shape[-1]
        kh, kw = layer.kernel_size
        if isinstance(layer, keras.layers.SeparableConv2D):
            mult = layer.depth_multiplier
            # depthwise at the output resolution (stride 1 in our specs), then the 1x1 pointwise
            total += out_h * out_w * in_c * mult * kh * kw + out_h * out_w * in_c * mult * out_c
        elif isinstance(layer, keras.layers.DepthwiseConv2D):
            total += out_h * out_w * in_c * layer.depth_multiplier * kh * kw
        else:
            total += out_h * out_w * out_c * kh * kw * in_c // layer.groups
    return int(total)


def cpu_peak() -> dict:
    """This CPU's fp32 peak from ``lscpu``: cores x GHz x FLOPs per cycle (SIMD lanes x 2 for FMA x FMA
    units). AVX-512 server cores are counted with two FMA units, AVX2 cores with two, SSE with one;
    the clock is the nominal one (BogoMIPS / 2 under a hypervisor that hides it)."""
    text = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    flags = set(re.search(r"Flags:\s*(.*)", text).group(1).split()) if "Flags:" in text else set()
    mhz = None
    for key in ("CPU max MHz", "CPU MHz"):
        m = re.search(rf"{key}:\s*([\d.]+)", text)
        if m:
            mhz = float(m.group(1))
            break
    if mhz is None:
        m = re.search(r"BogoMIPS:\s*([\d.]+)", text)
        mhz = float(m.group(1)) / 2 if m else 2000.0
    if "avx512f" in flags:
        isa, lanes, units = "AVX-512 + FMA", 16, 2
    elif "avx2" in flags and "fma" in flags:
        isa, lanes, units = "AVX2 + FMA", 8, 2
    else:
        isa, lanes, units = "SSE", 4, 1
    per_cycle = lanes * 2 * units if "fma" in flags else lanes * units
    cores = os.cpu_count() or 1
    # int8: AVX-512 VNNI's VPDPBUSD does 64 multiply-accumulates per instruction, two units a core
    int8_per_cycle = 64 * 2 * 2 if "avx512_vnni" in flags else (32 * 2 * 2 if "avx_vnni" in flags else 0)
    return {"isa": isa, "ghz": mhz / 1000, "flops_per_cycle": per_cycle, "cores": cores,
            "amx": "amx_tile" in flags, "peak_gflops": cores * mhz / 1000 * per_cycle,
            "int8_ops_per_cycle": int8_per_cycle, "peak_int8_gops": cores * mhz / 1000 * int8_per_cycle}
