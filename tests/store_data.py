"""A small results database written straight into the tables, and the same data as polars frames.

The frames are built from the Python description, not read back from the database, so they are an
independent truth for the views, the query files, the exports and ``emotion_batch.aggregate``.
``results_db``, ``add_ad`` and ``probs`` build the small hand-written tables of the aggregate and report tests.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from sqlalchemy import insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from emotion_batch.aggregate import FACE_SCHEMA, IMAGE_SCHEMA
from emotion_batch.labels import EMOTIONS
from emotion_batch.store.models import (Ad, Campaign, FaceRow, ImageRow, PROB_COLUMNS, Run, VideoFrameRow,
                                         VideoRow)
from emotion_batch.store.session import create_tables, make_engine

UTC = dt.timezone.utc
T0 = dt.datetime(2024, 5, 1, 22, 30, tzinfo=UTC)  # late in the UTC day: a later hour falls on the next day
MODEL = "tiny@0123456789ab"


@dataclass
class Dataset:
    images: list[dict] = field(default_factory=list)  # campaign, ad, image_path, status, error, faces, processed_at
    faces: list[dict] = field(default_factory=list)  # the columns of face_results

    def faces_frame(self) -> pl.DataFrame:
        return pl.DataFrame(self.faces, schema=FACE_SCHEMA)

    def images_frame(self, *, with_time: bool = False) -> pl.DataFrame:
        schema = {**IMAGE_SCHEMA, "processed_at": FACE_SCHEMA["processed_at"]} if with_time else IMAGE_SCHEMA
        return pl.DataFrame([{k: r[k] for k in schema} for r in self.images], schema=schema)


def _probs(rng, top: str, confidence: float) -> dict[str, float]:
    rest = rng.dirichlet(np.ones(len(EMOTIONS) - 1)) * (1.0 - confidence)
    others = iter(rest)
    values = {e: confidence if e == top else float(next(others)) for e in EMOTIONS}
    # the top class must really be the largest
    assert max(values, key=values.get) == top
    return {f"p_{e}": float(v) for e, v in values.items()}


#: (campaign, ad) -> list of images: (status, [top emotions of its faces], hours after T0)
PLAN = {
    ("summer", "ad_one"): [("ok", ["happy", "happy", "neutral"], 0), ("ok", ["happy"], 1), ("ok", ["sad", "happy"], 2),
                           ("ok", ["surprise", "happy", "happy"], 26), ("no_face", [], 3), ("unreadable", [], 4),
                           ("ok", ["happy", "fear"], 50)],
    ("summer", "ad two"): [("ok", ["angry", "disgust"], 0), ("ok", ["neutral", "neutral", "sad"], 5),
                           ("unsupported", [], 6), ("ok", ["fear", "angry", "sad"], 30)],
    # a tie: two happy, two sad -> dominant goes to the earlier emotion (happy)
    ("summer", "tie"): [("ok", ["sad", "happy"], 0), ("ok", ["happy", "sad"], 1)],
    ("winter", "teaser"): [("ok", ["neutral", "happy", "surprise", "neutral"], 0), ("ok", ["neutral"] * 7, 24),
                           ("ok", ["happy", "surprise"], 49)],
    # an ad without any face: shares, means, valence and the dominant emotion are NULL
    ("winter", "packshots"): [("no_face", [], 0), ("unreadable", [], 1)],
    ("autumn", "only ad"): [("ok", ["happy"] * 3, 72), ("ok", ["disgust"], 73)],
}


def populate(session, *, seed: int = 5, plan: dict | None = None, t0: dt.datetime = T0) -> Dataset:
    """Write campaigns, ads, one run, images and faces; return what was written."""
    rng = np.random.default_rng(seed)
    data = Dataset()
    run_id = session.execute(insert(Run).values(root="/srv/campaigns", detector="blazeface", model_id=MODEL,
                                                started_at=t0, status="ok").returning(Run.id)).scalar_one()
    campaigns: dict[str, int] = {}
    for (campaign, ad), images in (plan or PLAN).items():
        if campaign not in campaigns:
            campaigns[campaign] = session.execute(select(Campaign.id).where(Campaign.name == campaign)).scalar()
        if campaigns[campaign] is None:
            campaigns[campaign] = session.execute(
                insert(Campaign).values(name=campaign, created_at=t0).returning(Campaign.id)).scalar_one()
        ad_id = session.execute(insert(Ad).values(campaign_id=campaigns[campaign], name=ad, created_at=t0)
                                .returning(Ad.id)).scalar_one()
        for n, (status, tops, hours) in enumerate(images):
            path = f"{campaign}/{ad}/img_{n:03d}.jpg"
            when = t0 + dt.timedelta(hours=hours, minutes=n)
            error = None if status in ("ok", "no_face") else f"{path}: cannot identify image file" + (
                " (= not an image)" if n % 2 else "")
            image_id = session.execute(insert(ImageRow).values(
                ad_id=ad_id, run_id=run_id, path=path, sha256=f"{n:064x}", size_bytes=1000 + n, mtime_ns=n,
                width=640, height=480, status=status, error=error, faces_count=len(tops), processed_at=when,
            ).returning(ImageRow.id)).scalar_one()
            data.images.append({"campaign": campaign, "ad": ad, "image_path": path, "status": status, "error": error,
                                "faces": len(tops), "processed_at": when, "size_bytes": 1000 + n, "run_id": run_id})
            rows = []
            for k, top in enumerate(tops):
                probs = _probs(rng, top, float(rng.choice([0.45, 0.7, 0.85, 0.95])))
                box = {"x": 10.0 + 50 * k, "y": 20.0, "w": 40.0 + k, "h": 44.0, "detection_score": 0.9}
                rows.append({"image_id": image_id, "face_index": k, **box, **probs, "top_emotion": top,
                             "model_id": MODEL})
                data.faces.append({"campaign": campaign, "ad": ad, "image_path": path, "face_index": k, **box,
                                   "top_emotion": top, **probs, "model_id": MODEL, "processed_at": when})
            if rows:
                session.execute(insert(FaceRow), rows)
    return data


def results_db(path) -> Engine:
    """A SQLite file at ``path`` with the models' tables and the analyst views (no migrations)."""
    engine = make_engine(f"sqlite:///{path}")
    create_tables(engine)
    return engine


def probs(top: str, confidence: float = 0.7) -> dict[str, float]:
    """The ``p_<emotion>`` columns of a face: ``confidence`` on ``top``, the rest shared equally."""
    rest = (1.0 - confidence) / (len(EMOTIONS) - 1)
    return {f"p_{e}": confidence if e == top else rest for e in EMOTIONS}


def add_ad(session: Session, campaign: str, ad: str, images: list[tuple[str, list[str]]], *, t0: dt.datetime = T0,
           minute: int = 0, confidence: float = 0.7, model: str = "m@1") -> None:
    """Store one ad; ``images`` is a list of (status, top emotions of its faces), the i-th processed at
    ``t0`` + ``minute`` + i minutes, every face's top emotion at ``confidence``."""
    camp = session.query(Campaign).filter_by(name=campaign).one_or_none() or Campaign(name=campaign)
    row = Ad(name=ad, campaign=camp)
    session.add(row)
    session.flush()
    for i, (status, tops) in enumerate(images):
        image = ImageRow(
            ad_id=row.id, path=f"{campaign}/{ad}/{i:03d}.jpg", size_bytes=10, mtime_ns=0, status=status,
            faces_count=len(tops), processed_at=t0 + dt.timedelta(minutes=minute + i),
        )
        session.add(image)
        session.flush()
        for j, top in enumerate(tops):
            session.add(FaceRow(image_id=image.id, face_index=j, x=0, y=0, w=10, h=10, detection_score=0.9,
                                top_emotion=top, model_id=model, **probs(top, confidence)))
    session.flush()


def _norm(name: str, value):
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str) and name.endswith("_at"):  # SQLite text from a raw query
        return _norm(name, dt.datetime.fromisoformat(value))
    return value


def normalized(rows) -> list[dict]:
    """Rows (mappings or polars dicts) with engine differences removed: UTC datetimes, ISO dates, floats."""
    return [{k: _norm(k, v) for k, v in dict(r).items()} for r in rows]


def assert_rows_equal(actual, expected, *, keys: list[str], rel: float = 1e-9) -> None:
    """Same columns in the same order and the same rows (compared in key order); floats equal to ``rel``."""
    actual, expected = normalized(actual), normalized(expected)
    assert len(actual) == len(expected), (len(actual), len(expected))
    if not expected:
        return
    assert list(actual[0]) == list(expected[0])
    order = lambda row: tuple(str(row[k]) for k in keys)  # noqa: E731
    for a, e in zip(sorted(actual, key=order), sorted(expected, key=order)):
        for name, want in e.items():
            got = a[name]
            if isinstance(want, float) or isinstance(got, float):
                assert (got is None) == (want is None), (name, a, e)
                if want is not None:
                    assert abs(got - want) <= rel * max(1.0, abs(want)), (name, got, want, e)
            else:
                assert got == want, (name, got, want, e)


#: (campaign, ad) -> viewer recordings: (seconds of the ad the viewer's face is seen in, frames a second)
VIDEO_PLAN = {
    ("summer", "ad_one"): [(range(0, 6), 5), (range(1, 4), 5), (range(0, 6), 2)],
    ("winter", "teaser"): [(range(0, 3), 5)],
    ("autumn", "only ad"): [(range(2, 5), 1), (range(0, 5), 3)],
}


def populate_videos(session, *, seed: int = 11, plan: dict | None = None, t0: dt.datetime = T0) -> pl.DataFrame:
    """Write ``videos`` and ``video_frames`` rows for ads that ``populate`` made (a missing ad is made too);
    return the frames as ``campaign, ad, video, time_ms, p_<e>`` (``trace.second_trace``'s input).

    A viewer's frames in one second lean to one expression with noise, so that viewers disagree; one frame
    lies before the ad (negative ``time_ms``), which the trace ignores.
    """
    rng = np.random.default_rng(seed)
    out = []
    for (campaign, ad), videos in (plan or VIDEO_PLAN).items():
        campaign_id = session.execute(select(Campaign.id).where(Campaign.name == campaign)).scalar()
        if campaign_id is None:
            campaign_id = session.execute(insert(Campaign).values(name=campaign, created_at=t0)
                                          .returning(Campaign.id)).scalar_one()
        ad_id = session.execute(select(Ad.id).where(Ad.campaign_id == campaign_id, Ad.name == ad)).scalar()
        if ad_id is None:
            ad_id = session.execute(insert(Ad).values(campaign_id=campaign_id, name=ad, created_at=t0)
                                    .returning(Ad.id)).scalar_one()
        for n, (seconds, per_second) in enumerate(videos):
            path = f"{campaign}/{ad}/viewer_{n:02d}.mp4"
            times = [-200] + [s * 1000 + k * (1000 // per_second) for s in seconds for k in range(per_second)]
            video_id = session.execute(insert(VideoRow).values(
                ad_id=ad_id, path=path, sha256=f"{n:064x}", size_bytes=5000 + n, mtime_ns=n, status="ok",
                sample_fps=float(per_second), offset_s=0.0, frames_sampled=len(times), frames_with_face=len(times),
                faces_found=len(times), tracks=1, max_faces=1, model_id=MODEL, processed_at=t0,
            ).returning(VideoRow.id)).scalar_one()
            rows = []
            for t in times:
                top = EMOTIONS[int(rng.integers(len(EMOTIONS)))] if rng.random() < 0.6 else "happy"
                probs = _probs(rng, top, float(rng.choice([0.45, 0.6, 0.9])))
                rows.append({"video_id": video_id, "time_ms": t, "x": 100.0, "y": 80.0, "w": 200.0, "h": 220.0,
                             "detection_score": 0.95, **probs, "top_emotion": top, "faces_in_frame": 1,
                             "model_id": MODEL})
                out.append({"campaign": campaign, "ad": ad, "video": path, "time_ms": t, **probs})
            session.execute(insert(VideoFrameRow), rows)
    return pl.DataFrame(out)
