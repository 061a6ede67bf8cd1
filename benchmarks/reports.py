"""How long rendering the reports takes: N ads of synthetic results, every report (HTML + PDF), the index and
the summaries, in a process pool.

Rows are inserted straight into a fresh SQLite database (as tests/store_data.py does; no TensorFlow, no
images): 20 ads per campaign, 4-60 faces per ad (some below the minimum group size of 10) over 1-6 days.
First a few ad and campaign reports are rendered in this process to give the time of one report of each
kind, then everything is rendered with ``--workers`` processes (default: one per core).

    python benchmarks/reports.py                   # 1,000 ads
    python benchmarks/reports.py --ads 50 --workers 2 --json out.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from sqlalchemy import insert  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from emotion_batch.labels import EMOTIONS  # noqa: E402
from emotion_batch.reports import ReportOptions, render_reports  # noqa: E402
from emotion_batch.store.models import Ad, Campaign, FaceRow, ImageRow, Run  # noqa: E402
from emotion_batch.store.session import init_db, make_engine  # noqa: E402

T0 = dt.datetime(2024, 3, 1, 9, tzinfo=dt.timezone.utc)
ADS_PER_CAMPAIGN = 20
#: A plausible mix of apparent expressions for ad-test photos.
MIX = np.array([0.05, 0.02, 0.04, 0.38, 0.36, 0.08, 0.07])


def build_database(url: str, ads: int, *, seed: int = 0) -> dict:
    """Write ``ads`` ads of synthetic images and faces; return the row counts."""
    rng = np.random.default_rng(seed)
    engine = make_engine(url)
    init_db(engine)
    counts = {"campaigns": 0, "ads": ads, "images": 0, "faces": 0}
    with Session(engine) as session, session.begin():
        run_id = session.execute(insert(Run).values(root="/srv/campaigns", detector="blazeface",
                                                    model_id="bench@0123456789ab", started_at=T0, status="ok")
                                 .returning(Run.id)).scalar_one()
        campaign_id = None
        for a in range(ads):
            if a % ADS_PER_CAMPAIGN == 0:
                campaign_id = session.execute(insert(Campaign).values(name=f"Campaign {a // ADS_PER_CAMPAIGN:03d}",
                                                                      created_at=T0).returning(Campaign.id)).scalar_one()
                counts["campaigns"] += 1
            ad_id = session.execute(insert(Ad).values(campaign_id=campaign_id, name=f"Ad {a:04d} – spring cut",
                                                      created_at=T0).returning(Ad.id)).scalar_one()
            days = int(rng.integers(1, 7))
            faces_wanted = int(rng.integers(4, 61))
            images, faces, n = [], [], 0
            while faces_wanted > 0:
                in_image = min(faces_wanted, int(rng.integers(0, 5)))
                faces_wanted -= in_image
                when = T0 + dt.timedelta(days=int(rng.integers(0, days)), minutes=int(rng.integers(0, 600)))
                images.append({"ad_id": ad_id, "run_id": run_id, "path": f"c/a{a}/{n:04d}.jpg", "size_bytes": 1000,
                               "mtime_ns": int(when.timestamp() * 1e9), "width": 1280, "height": 720,
                               "status": "ok" if in_image else "no_face", "faces_count": in_image,
                               "captured_at": when if n % 3 else None, "processed_at": T0 + dt.timedelta(days=10)})
                faces.append(in_image)
                n += 1
            ids = session.execute(insert(ImageRow).returning(ImageRow.id), images).scalars().all()
            rows = []
            for image_id, k in zip(ids, faces):
                for j in range(k):
                    p = rng.dirichlet(MIX * 8 + 0.2)
                    top = EMOTIONS[int(p.argmax())]
                    rows.append({"image_id": image_id, "face_index": j, "x": 10.0, "y": 10.0, "w": 60.0, "h": 60.0,
                                 "detection_score": 0.9, "top_emotion": top, "model_id": "bench@0123456789ab",
                                 **{f"p_{e}": float(v) for e, v in zip(EMOTIONS, p)}})
            if rows:
                session.execute(insert(FaceRow), rows)
            counts["images"] += len(images)
            counts["faces"] += len(rows)
    engine.dispose()
    return counts


class PeakRss:
    """Samples the resident memory of this process and its children (the workers) every 0.2 s."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            import psutil
        except ImportError:
            return
        me = psutil.Process()
        while not self._stop.is_set():
            try:
                total = me.memory_info().rss + sum(c.memory_info().rss for c in me.children(recursive=True))
            except psutil.Error:
                total = 0
            self.peak = max(self.peak, total)
            self._stop.wait(0.2)

    def __enter__(self) -> "PeakRss":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        if not self.peak:  # no psutil: the largest single process
            self.peak = 1024 * max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                                   resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ads", type=int, default=1000, help="ads in the synthetic database")
    parser.add_argument("--workers", type=int, default=None, help="rendering processes  [default: one per core]")
    parser.add_argument("--sample", type=int, default=4, help="ad reports timed one by one in this process")
    parser.add_argument("--paper", choices=["a4", "letter"], default="a4")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench_reports_") as tmp:
        url = f"sqlite:///{tmp}/results.sqlite"
        started = time.perf_counter()
        counts = build_database(url, args.ads)
        print(f"database: {counts} in {time.perf_counter() - started:.1f} s", flush=True)
        engine = make_engine(url)
        options = dict(min_faces=10, paper=args.paper, generated_at=dt.datetime(2024, 6, 1, tzinfo=dt.timezone.utc))

        # one report of each kind, in this process (imports and fonts warmed up by a first render)
        with Session(engine) as session:
            sample = [(f"Campaign {0:03d}", f"Ad {i:04d} – spring cut") for i in range(min(args.sample, args.ads))]
            render_reports(session, Path(tmp) / "warm", ads=sample[:1], options=ReportOptions(**options, workers=0))
            single = render_reports(session, Path(tmp) / "single", ads=sample, options=ReportOptions(**options, workers=0))
        # campaign reports are rendered with the ads: the sample's time minus its ads' gives one campaign
        with Session(engine) as session:
            t = time.perf_counter()
            render_reports(session, Path(tmp) / "ads_only", ads=sample, options=ReportOptions(**options, workers=0))
            with_campaign = time.perf_counter() - t
        from emotion_batch.reports import render_ad_reports

        with Session(engine) as session:
            t = time.perf_counter()
            render_ad_reports(session, Path(tmp) / "ads_only2", ads=sample, workers=0, min_faces=10, paper=args.paper,
                              generated_at=options["generated_at"])
            ads_only = time.perf_counter() - t
        per_ad = ads_only / len(sample)
        per_campaign = max(with_campaign - ads_only, 0.0)

        with Session(engine) as session, PeakRss() as rss:
            written = render_reports(session, Path(tmp) / "reports",
                                     options=ReportOptions(**options, workers=args.workers))
        engine.dispose()
        reports = len(written.ads) // 2 + len(written.campaigns) // 2
        result = {
            "ads": args.ads, "campaigns": counts["campaigns"], "faces": counts["faces"], "images": counts["images"],
            "workers": written.workers, "seconds": round(written.seconds, 2),
            "ad_reports": len(written.ads) // 2, "campaign_reports": len(written.campaigns) // 2,
            "reports_per_second": round(reports / written.seconds, 2),
            "seconds_per_ad_report_single_process": round(per_ad, 3),
            "seconds_per_campaign_report_single_process": round(per_campaign, 3),
            "peak_rss_mb": round(rss.peak / 2**20, 1), "paper": args.paper,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
            "sample_seconds": round(single.seconds, 2),
        }
    print(f"{result['ad_reports']} ad + {result['campaign_reports']} campaign reports (HTML + PDF), index and "
          f"summaries in {result['seconds']:.1f} s with {result['workers']} workers: "
          f"{result['reports_per_second']:.2f} reports/s, peak RSS {result['peak_rss_mb']:.0f} MB")
    print(f"one process: {per_ad:.2f} s per ad report, {per_campaign:.2f} s per campaign report (20 ads)")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
