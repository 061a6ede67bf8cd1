"""Throughput of the results store and speed of the analyst views, on SQLite and PostgreSQL.

Writes synthetic results straight through the job's write path (``store.repository.write_images``, bulk
``INSERT``s in chunked transactions of 256 images, as ``emotion-batch run`` commits them; no images are
decoded), then times every analyst view and every query file in ``sql/queries`` (median of 3 runs, rows
fetched). PostgreSQL: ``--pg-url URL`` of an empty database, or a throwaway server is started from
``/usr/lib/postgresql/*/bin`` with its default (durable) settings, as tests/db_engines.py does.

    python benchmarks/store.py                              # 1,000,000 faces on both engines
    python benchmarks/store.py --faces 200000 --engines sqlite --json out.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from sqlalchemy import text  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from emotion_batch.assets import asset_dir  # noqa: E402
from emotion_batch.labels import EMOTIONS  # noqa: E402
from emotion_batch.store.models import Run  # noqa: E402
from emotion_batch.store.repository import ImageRecord, ad_id_for, write_images  # noqa: E402
from emotion_batch.store.session import init_db, make_engine  # noqa: E402

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
CHUNK_IMAGES = 256


def synthetic_chunks(faces_wanted: int, *, ads: list[int], seed: int = 0):
    """Chunks of ImageRecords: 85 % ok with 1-3 faces, 10 % no_face, 5 % unreadable, over 90 days."""
    rng = np.random.default_rng(seed)
    faces_done, n = 0, 0
    while faces_done < faces_wanted:
        chunk = []
        for _ in range(CHUNK_IMAGES):
            if faces_done >= faces_wanted:
                break
            kind = rng.random()
            ad = ads[n % len(ads)]
            path = f"c/a/{n:08d}.jpg"
            when = T0 + dt.timedelta(minutes=int(rng.integers(0, 90 * 24 * 60)))
            if kind < 0.05:
                record = ImageRecord(ad, path, 1000, n, f"{n:064x}", "unreadable", error=f"{path}: truncated")
            elif kind < 0.15:
                record = ImageRecord(ad, path, 1000, n, f"{n:064x}", "no_face", width=640, height=480)
            else:
                k = min(int(rng.integers(1, 4)), faces_wanted - faces_done)
                probs = rng.dirichlet(np.ones(len(EMOTIONS)) * 0.5, size=k)
                boxes = [(10.0 + 60 * j, 20.0, 48.0, 52.0, 0.9) for j in range(k)]
                record = ImageRecord(ad, path, 1000, n, f"{n:064x}", "ok", width=640, height=480, faces=boxes, probs=probs)
                faces_done += k
            record.captured_at = when  # carried into processed_at below
            chunk.append(record)
            n += 1
        yield chunk


def load(factory: sessionmaker, faces: int) -> dict:
    with factory.begin() as session:
        ads = [ad_id_for(session, f"campaign_{c:02d}", f"ad_{a:02d}") for c in range(20) for a in range(10)]
        run = Run(root="/bench", detector="none", model_id="bench@0", status="running", started_at=T0)
        session.add(run)
        session.flush()
        run_id = run.id
    images = written = 0
    seconds = 0.0  # writing and committing only, not making the synthetic records
    for chunk in synthetic_chunks(faces, ads=ads):
        started = time.perf_counter()
        with factory.begin() as session:
            written += write_images(session, run_id, chunk, model_id="bench@0123456789ab")
        seconds += time.perf_counter() - started
        images += len(chunk)
    # spread processed_at over 90 days (write_images stamps "now"), outside the timed part
    with factory.begin() as session:
        session.execute(text("UPDATE images SET processed_at = captured_at, captured_at = NULL"))
    return {"images": images, "faces": written, "seconds": round(seconds, 2),
            "faces_per_s": round(written / seconds), "rows_per_s": round((written + images) / seconds)}


def analyze(engine) -> None:
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    else:
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")


def timed(engine, sql: str, params=None, repeat: int = 3) -> tuple[float, int]:
    times, rows = [], 0
    for _ in range(repeat):
        with engine.connect() as conn:
            started = time.perf_counter()
            rows = len(conn.execute(text(sql), params or {}).all())
            times.append(time.perf_counter() - started)
    return statistics.median(times), rows


def view_times(engine) -> list[dict]:
    one_ad = {"c": "campaign_07", "a": "ad_03"}
    queries = [
        ("ad_emotion_summary (all rows)", "SELECT * FROM ad_emotion_summary", None),
        ("ad_emotion_summary (one campaign)", "SELECT * FROM ad_emotion_summary WHERE campaign = :c", one_ad),
        ("campaign_emotion_summary (all rows)", "SELECT * FROM campaign_emotion_summary", None),
        ("daily_emotion_trend (all rows)", "SELECT * FROM daily_emotion_trend", None),
        ("failed_images (all rows)", "SELECT * FROM failed_images", None),
        ("face_results (one ad's faces)", "SELECT * FROM face_results WHERE campaign = :c AND ad = :a", one_ad),
        ("face_results (count of all)", "SELECT count(*) FROM face_results", None),
        ("image_results (one ad's images)", "SELECT * FROM image_results WHERE campaign = :c AND ad = :a", one_ad),
    ]
    for path in sorted((asset_dir("sql") / "queries").glob("*.sql")):
        queries.append((f"sql/queries/{path.name}", path.read_text(encoding="utf-8"), None))
    out = []
    for name, sql, params in queries:
        seconds, rows = timed(engine, sql, params)
        out.append({"query": name, "seconds": round(seconds, 3), "rows": rows})
    # every face fetched into Python: what an export pays before writing a byte (not a view time)
    seconds, rows = timed(engine, "SELECT * FROM face_results", repeat=1)
    out.append({"query": "face_results (every row fetched into Python)", "seconds": round(seconds, 3), "rows": rows})
    return out


def bench(url: str, faces: int) -> dict:
    engine = make_engine(url)
    init_db(engine)
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    result = {"engine": engine.dialect.name, "insert": load(factory, faces)}
    analyze(engine)
    result["views"] = view_times(engine)
    engine.dispose()
    return result


def print_result(result: dict) -> None:
    ins = result["insert"]
    print(f"\n{result['engine']}: wrote {ins['images']:,} images + {ins['faces']:,} faces in {ins['seconds']} s: "
          f"{ins['faces_per_s']:,} faces/s, {ins['rows_per_s']:,} rows/s (images + faces)")
    for v in result["views"]:
        print(f"  {v['seconds']:>7.3f} s  {v['rows']:>9,} rows  {v['query']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faces", type=int, default=1_000_000)
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--pg-url", help="URL of an empty PostgreSQL database [default: start a throwaway server]")
    parser.add_argument("--json", help="Also write the results to this JSON file.")
    args = parser.parse_args()
    results = []
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    for engine in args.engines.split(","):
        if engine == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                results.append(bench(f"sqlite:///{tmp}/bench.sqlite", args.faces))
        elif engine == "postgresql":
            if args.pg_url:
                results.append(bench(args.pg_url, args.faces))
                continue
            from tests.db_engines import PostgresServer

            server = PostgresServer(durable=True)
            server.start()
            try:
                results.append(bench(server.create_database(), args.faces))
                results[-1]["server"] = f"PostgreSQL {server.version}, default settings, local disk"
            finally:
                server.stop()
        else:
            raise SystemExit(f"engines must be among ['sqlite', 'postgresql']. Received: {engine!r}")
        print_result(results[-1])
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
