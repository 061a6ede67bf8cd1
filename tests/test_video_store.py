"""The tables ``videos`` and ``video_frames`` and the view ``ad_second_trace`` on SQLite and PostgreSQL: the
view gives the numbers of ``video.trace.second_trace`` on the same frames."""

from __future__ import annotations

import polars as pl
import pytest
from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from emotion_batch.labels import EMOTIONS
from emotion_batch.store.models import Ad, VideoFrameRow, VideoRow
from emotion_batch.store.session import init_db, make_engine
from emotion_batch.video.decode import VIDEO_STATUSES
from emotion_batch.video.trace import second_trace

from .store_data import assert_rows_equal, populate, populate_videos

VIEW_COLUMNS = ["campaign", "ad", "second", "viewers", "frames", *[f"count_{e}" for e in EMOTIONS],
                *[f"share_{e}" for e in EMOTIONS], *[f"mean_p_{e}" for e in EMOTIONS], "valence"]


@pytest.fixture()
def engine(db_url):
    engine = make_engine(db_url)
    init_db(engine)
    yield engine
    engine.dispose()


def test_ad_second_trace_gives_the_numbers_of_second_trace(engine):
    with Session(engine) as session, session.begin():
        populate(session)
        frames = populate_videos(session)
    with engine.connect() as conn:
        from_view = [dict(r) for r in conn.execute(text("SELECT * FROM ad_second_trace")).mappings()]
    expected = (second_trace(frames, min_faces=1, by=("campaign", "ad"))
                .filter(pl.col("viewers") > 0).select(VIEW_COLUMNS))
    assert expected.height > 10 and expected["viewers"].max() == 3  # several viewers a second, and votes differ
    assert expected.filter(pl.col("share_happy").is_between(0.01, 0.99)).height > 0
    assert_rows_equal(from_view, expected.to_dicts(), keys=["campaign", "ad", "second"], rel=1e-9)


def test_deleting_an_ad_removes_its_videos_and_frames(engine):
    with Session(engine) as session, session.begin():
        populate(session)
        populate_videos(session)
    with Session(engine) as session, session.begin():
        before = session.scalar(select(func.count()).select_from(VideoFrameRow))
        session.execute(delete(Ad).where(Ad.name == "ad_one"))
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(VideoFrameRow)) < before
        assert session.scalars(select(VideoRow.path)).all() and not any(
            p.startswith("summer/ad_one/") for p in session.scalars(select(VideoRow.path)))


def test_video_statuses_fit_the_status_column():
    assert max(map(len, VIDEO_STATUSES)) <= VideoRow.__table__.c.status.type.length


def test_prune_and_delete_remove_videos_with_their_frames(engine):
    import datetime as dt

    from emotion_batch.store.retention import delete_results, prune_older_than

    from .store_data import T0, VIDEO_PLAN

    with Session(engine) as session, session.begin():
        populate(session)
        frames = populate_videos(session)
    with Session(engine) as session, session.begin():
        removed = delete_results(session, campaign="winter")
    assert (removed.videos, removed.video_frames) == (1, frames.filter(pl.col("campaign") == "winter").height)
    with Session(engine) as session, session.begin():
        removed = prune_older_than(session, T0 + dt.timedelta(minutes=1))
    assert removed.videos == sum(len(v) for k, v in VIDEO_PLAN.items() if k[0] != "winter")
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(VideoFrameRow)) == 0
        assert session.scalar(select(func.count()).select_from(VideoRow)) == 0


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_exports_hold_videos_frames_and_the_trace(engine, tmp_path, fmt):
    from emotion_batch.exceptions import ConfigError
    from emotion_batch.exports import export_rows
    from emotion_batch.store.queries import Filters

    from .store_data import VIDEO_PLAN

    with Session(engine) as session, session.begin():
        populate(session)
        frames = populate_videos(session)
    with engine.connect() as conn:
        trace_rows = conn.execute(text("SELECT count(*) FROM ad_second_trace")).scalar()
    expected = {"videos": sum(len(v) for v in VIDEO_PLAN.values()), "video-frames": frames.height,
                "second-trace": trace_rows}
    with Session(engine) as session:
        for dataset, rows in expected.items():
            out = tmp_path / f"{dataset}.{fmt}"
            result = export_rows(session, dataset, str(out), fmt=fmt)
            assert result.rows == rows > 0, dataset
            read = pl.read_csv(out) if fmt == "csv" else pl.read_parquet(out)
            assert read.height == rows and list(read.columns) == list(result.columns)
        summer = export_rows(session, "video-frames", str(tmp_path / "summer.csv"), filters=Filters(campaigns=("summer",)))
        assert summer.rows == frames.filter(pl.col("campaign") == "summer").height
        trace = pl.read_csv(tmp_path / "second-trace.csv") if fmt == "csv" else pl.read_parquet(tmp_path / "second-trace.parquet")
        assert trace.columns == VIEW_COLUMNS and trace["viewers"].dtype == pl.Int64
        with pytest.raises(ConfigError, match="since and until do not apply"):
            export_rows(session, "second-trace", str(tmp_path / "t.csv"), filters=Filters.from_options(since="2024-05-01"))


def test_an_ads_report_shows_its_viewer_trace_and_moments(tmp_path):
    from emotion_batch.reports import render_ad_reports

    engine = make_engine(f"sqlite:///{tmp_path / 'r.sqlite'}")
    init_db(engine)
    try:
        with Session(engine) as session, session.begin():
            populate(session)
            populate_videos(session)
        with Session(engine) as session:
            paths = render_ad_reports(session, tmp_path / "reports", ads=[("summer", "ad_one"), ("summer", "ad two")],
                                      min_faces=2, workers=0)
            few = render_ad_reports(session, tmp_path / "strict", ads=[("summer", "ad_one")], min_faces=10, workers=0)
    finally:
        engine.dispose()
    html = {p.stem: p.read_text(encoding="utf-8") for p in paths if p.suffix == ".html"}
    assert len(html) == 2
    with_videos = html["ad_one"]
    assert "Viewer videos: second by second" in with_videos and "3 viewer recordings, 3 with the" in with_videos
    assert "Strongest moments" in with_videos and "per second of the ad" in with_videos  # the chart's label
    [without] = [text for name, text in html.items() if name != "ad_one"]
    assert "Viewer videos" not in without
    assert all(p.read_bytes().startswith(b"%PDF") for p in paths if p.suffix == ".pdf")
    strict = next(p for p in few if p.suffix == ".html").read_text(encoding="utf-8")
    assert "the trace is not\n  shown" in strict and "Strongest moments" not in strict
