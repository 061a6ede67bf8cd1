"""Load test of `emotion-batch serve` on loopback: single-image requests from a bounded number of clients.

Starts the real server in its own process on 127.0.0.1 (a free port), sends at most --requests
`POST /v1/predict` requests of one photo (real faces from scikit-image's public-domain astronaut portrait)
from --concurrency clients for at most --duration seconds, and prints requests/s and latency percentiles,
plus how many requests shared each model call (from /healthz). --compare runs it with and without
micro-batching. Only 127.0.0.1 is ever contacted; every loop is bounded in count and time.

    python benchmarks/serve_load.py                                   # bundled model, 400 requests, 16 clients
    python benchmarks/serve_load.py --compare --requests 600 --concurrency 32
    python benchmarks/serve_load.py --model path/to/model.keras --detector none --size 48x48
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from emotion_batch.faces import DETECTORS  # noqa: E402
from emotion_batch.sample import jpeg_bytes, synthetic_photo  # noqa: E402

DEFAULT_DETECTOR = DETECTORS[0]

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def start_server(args, port: int, batching: bool, log) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "emotion_batch", "serve", "--host", HOST, "--port", str(port),
           "--detector", args.detector, "--batch-wait-ms", str(args.wait_ms)]
    if args.model:
        cmd += ["--model", args.model]
    if not batching:
        cmd.append("--no-batching")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("EMOTION_BATCH_DB", None)
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}; see {log.name}")
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/healthz", timeout=2):
                return proc
        except OSError:
            time.sleep(0.25)
    proc.kill()
    raise SystemExit("the server did not start in 180 s")


async def load(url: str, image: bytes, *, requests: int, concurrency: int, duration: float) -> dict:
    import httpx

    latencies: list[float] = []
    statuses: dict[int, int] = {}
    issued = 0
    deadline = time.perf_counter() + duration

    async def client(c: httpx.AsyncClient) -> None:
        nonlocal issued
        while issued < requests and time.perf_counter() < deadline:
            issued += 1
            t0 = time.perf_counter()
            try:
                response = await c.post(url + "/v1/predict", files={"file": ("photo.jpg", image, "image/jpeg")})
                code = response.status_code
            except httpx.HTTPError:
                code = 0
            latencies.append(time.perf_counter() - t0)
            statuses[code] = statuses.get(code, 0) + 1

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60) as c:
        started = time.perf_counter()
        await asyncio.gather(*(client(c) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    lat = np.array(latencies) * 1000
    return {"requests": len(latencies), "ok": statuses.get(200, 0), "statuses": statuses, "seconds": round(elapsed, 2),
            "requests_per_s": round(len(latencies) / elapsed, 1), "p50_ms": round(float(np.percentile(lat, 50)), 1),
            "p90_ms": round(float(np.percentile(lat, 90)), 1), "p99_ms": round(float(np.percentile(lat, 99)), 1)}


def one_run(args, image: bytes, batching: bool) -> dict:
    port = free_port()
    url = f"http://{HOST}:{port}"
    with tempfile.NamedTemporaryFile("w", prefix="serve_load_", suffix=".log", delete=False) as log:
        proc = start_server(args, port, batching, log)
        try:
            asyncio.run(load(url, image, requests=args.warmup, concurrency=min(4, args.concurrency), duration=30))
            result = asyncio.run(load(url, image, requests=args.requests, concurrency=args.concurrency,
                                      duration=args.duration))
            with urllib.request.urlopen(url + "/healthz", timeout=5) as response:
                health = json.load(response)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    result["batching"] = health["batching"]
    result["model_id"] = health["model_id"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="most requests measured (after the warm-up)")
    parser.add_argument("--concurrency", type=int, default=16, help="clients sending at the same time")
    parser.add_argument("--duration", type=float, default=60.0, help="most seconds measured")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--size", default="640x480", help="photo size WxH")
    parser.add_argument("--faces", type=int, default=1)
    parser.add_argument("--model", help="bundled model name or .keras file  [default: bundled default]")
    parser.add_argument("--detector", default=DEFAULT_DETECTOR, help=f"[default: {DEFAULT_DETECTOR}, the job's]")
    parser.add_argument("--wait-ms", type=float, default=5.0, help="the micro-batcher's window")
    parser.add_argument("--compare", action="store_true", help="also run without micro-batching")
    args = parser.parse_args()
    if not (0 < args.requests <= 100_000 and 0 < args.concurrency <= 256 and 0 < args.duration <= 600):
        raise SystemExit("--requests 1..100000, --concurrency 1..256 and --duration 1..600 s keep the run bounded")
    width, height = (int(v) for v in args.size.lower().split("x"))
    image = jpeg_bytes(synthetic_photo(np.random.default_rng(0), width, height, args.faces))
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores; {args.requests} requests "
          f"of one {width}x{height} JPEG ({len(image) // 1024} KiB, {args.faces} face(s)), {args.concurrency} clients, "
          f"at most {args.duration:g} s; client and server on the same machine")
    modes = [True, False] if args.compare else [True]
    for batching in modes:
        r = one_run(args, image, batching)
        b = r["batching"]
        shared = f", {b['mean_requests_per_call']} requests per model call" if b.get("enabled") else ""
        print(f"{'micro-batching' if batching else 'no batching   '}: {r['requests']} requests ({r['ok']} ok) in "
              f"{r['seconds']} s = {r['requests_per_s']} requests/s; latency p50 {r['p50_ms']} ms, "
              f"p90 {r['p90_ms']} ms, p99 {r['p99_ms']} ms{shared}  [{r['model_id']}]")
        print(json.dumps(r))


if __name__ == "__main__":
    main()
