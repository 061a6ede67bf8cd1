"""The analyst views, the query files in sql/queries and the export selects agree with emotion_batch.aggregate,
on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from emotion_batch.aggregate import (
    FAILED_STATUSES,
    ad_summary,
    campaign_summary,
    daily_trend,
    load_faces,
    load_images,
    valence,
    with_valence,
)
from emotion_batch.assets import asset_dir
from emotion_batch.labels import EMOTIONS
from emotion_batch.store.queries import DATASETS, Filters, dataset_select
from emotion_batch.store.session import create_tables, init_db, make_engine

from .store_data import PLAN, T0, assert_rows_equal, normalized, populate

KEY = ["campaign", "ad"]


@pytest.fixture()
def analytics(db_url):
    engine = make_engine(db_url)
    init_db(engine)
    with Session(engine) as session, session.begin():
        data = populate(session)
    yield engine, data
    engine.dispose()


def _rows(engine, sql: str) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(text(sql)).mappings()]


def _query_file(name: str) -> str:
    return (asset_dir("sql") / "queries" / name).read_text(encoding="utf-8")


def _expected_ads(data) -> pl.DataFrame:
    return with_valence(ad_summary(data.faces_frame(), data.images_frame()))


def test_the_database_holds_what_was_written(analytics):
    engine, data = analytics
    with Session(engine) as session:
        assert_rows_equal(load_faces(session).to_dicts(), data.faces_frame().to_dicts(),
                          keys=["campaign", "ad", "image_path", "face_index"])
        assert_rows_equal(load_images(session).to_dicts(), data.images_frame().to_dicts(), keys=["image_path"])


def test_ad_emotion_summary_view_matches_aggregate(analytics):
    engine, data = analytics
    expected = _expected_ads(data)
    actual = _rows(engine, "SELECT * FROM ad_emotion_summary")
    assert_rows_equal(actual, expected.to_dicts(), keys=KEY)
    by_ad = {(r["campaign"], r["ad"]): r for r in actual}
    assert by_ad[("summer", "tie")]["dominant_emotion"] == "happy"  # 2 happy, 2 sad: the earlier emotion wins
    empty = by_ad[("winter", "packshots")]
    assert (empty["faces"], empty["images"], empty["images_failed"]) == (0, 2, 1)
    assert empty["share_happy"] is None and empty["valence"] is None and empty["dominant_emotion"] is None
    for row in actual:
        if row["faces"]:
            assert sum(row[f"share_{e}"] for e in EMOTIONS) == pytest.approx(1.0)
            assert -1.0 <= row["valence"] <= 1.0


def test_campaign_emotion_summary_view_matches_aggregate(analytics):
    engine, data = analytics
    expected = campaign_summary(data.faces_frame(), data.images_frame())
    assert_rows_equal(_rows(engine, "SELECT * FROM campaign_emotion_summary"), expected.to_dicts(), keys=["campaign"])
    summer = expected.filter(pl.col("campaign") == "summer").row(0, named=True)
    assert summer["ads"] == 3 and summer["faces"] == 11 + 8 + 4


def test_daily_emotion_trend_view_matches_aggregate_in_utc_days(analytics):
    engine, data = analytics
    expected = daily_trend(data.faces_frame())
    actual = _rows(engine, "SELECT * FROM daily_emotion_trend")
    assert_rows_equal(actual, expected.to_dicts(), keys=[*KEY, "day"])
    days = {str(r["day"]) for r in normalized(actual) if r["ad"] == "ad_one"}
    # T0 is 22:30 UTC on May 1: +1 h is still May 1, +2 h May 2, +26 h May 3, +50 h May 4
    assert days == {"2024-05-01", "2024-05-02", "2024-05-03", "2024-05-04"}


def test_failed_images_view_lists_each_failure_with_its_reason(analytics):
    engine, data = analytics
    expected = [{k: r[k] for k in ("campaign", "ad", "image_path", "status", "error", "size_bytes", "processed_at",
                                   "run_id")} for r in data.images if r["status"] in FAILED_STATUSES]
    actual = _rows(engine, "SELECT * FROM failed_images")
    assert_rows_equal(actual, expected, keys=["image_path"])
    assert all(r["image_path"] in r["error"] for r in actual) and len(actual) == 3


def test_stable_views_keep_their_columns(analytics):
    engine, _ = analytics
    faces = _rows(engine, "SELECT * FROM face_results")
    assert list(faces[0]) == ["campaign", "ad", "image_path", "face_index", "x", "y", "w", "h", "detection_score",
                              "top_emotion", "p_angry", "p_disgust", "p_fear", "p_happy", "p_neutral", "p_sad",
                              "p_surprise", "model_id", "processed_at"]
    images = _rows(engine, "SELECT * FROM image_results")
    assert list(images[0]) == ["campaign", "ad", "image_path", "status", "error", "faces"]


# ---- the query files ------------------------------------------------------------------------------


def test_every_query_file_is_documented_at_its_top():
    files = sorted((asset_dir("sql") / "queries").glob("*.sql"))
    assert len(files) >= 5
    for path in files:
        lines = path.read_text(encoding="utf-8").splitlines()
        header = [line for line in lines[:8] if line.startswith("--")]
        assert len(header) >= 3 and "Source:" in " ".join(header), path.name


def test_query_ad_summary(analytics):
    engine, data = analytics
    columns = ["campaign", "ad", "images", "images_failed", "faces", *[f"share_{e}" for e in EMOTIONS], "valence",
               "dominant_emotion"]
    expected = _expected_ads(data).filter(pl.col("faces") >= 10).select(columns)
    assert expected.height >= 1  # the filter keeps some ads and drops others
    assert expected.height < _expected_ads(data).height
    assert_rows_equal(_rows(engine, _query_file("ad_summary.sql")), expected.to_dicts(), keys=KEY)


def test_query_campaign_summary(analytics):
    engine, data = analytics
    columns = ["campaign", "ads", "images", "images_failed", "faces", *[f"share_{e}" for e in EMOTIONS],
               "mean_p_happy", "valence", "dominant_emotion"]
    expected = campaign_summary(data.faces_frame(), data.images_frame()).select(columns)
    assert_rows_equal(_rows(engine, _query_file("campaign_summary.sql")), expected.to_dicts(), keys=["campaign"])


def test_query_daily_trend(analytics):
    engine, data = analytics
    trend = daily_trend(data.faces_frame(), by=("campaign",))
    negative = pl.sum_horizontal([pl.col(f"count_{e}") for e in ("angry", "disgust", "fear", "sad")])
    expected = trend.select("campaign", "day", "faces", "share_happy", "share_neutral",
                            (negative / pl.col("faces")).alias("share_negative"), "valence")
    assert_rows_equal(_rows(engine, _query_file("daily_trend.sql")), expected.to_dicts(), keys=["campaign", "day"])


def test_query_confident_faces(analytics):
    engine, data = analytics
    faces = data.faces_frame()
    top = pl.coalesce([pl.when(pl.col("top_emotion") == e).then(pl.col(f"p_{e}")) for e in EMOTIONS])
    expected = (faces.with_columns(top.alias("top_probability")).filter(pl.col("top_probability") >= 0.8)
                .select("campaign", "ad", "image_path", "face_index", "x", "y", "w", "h",
                        *[f"p_{e}" for e in EMOTIONS], "top_emotion", "top_probability", "model_id"))
    assert 0 < expected.height < faces.height
    assert_rows_equal(_rows(engine, _query_file("confident_faces.sql")), expected.to_dicts(),
                      keys=["campaign", "ad", "image_path", "face_index"])


def test_query_failed_images(analytics):
    engine, data = analytics
    expected = [{k: r[k] for k in ("campaign", "ad", "image_path", "status", "error", "processed_at", "run_id")}
                for r in data.images if r["status"] in FAILED_STATUSES]
    assert_rows_equal(_rows(engine, _query_file("failed_images.sql")), expected, keys=["image_path"])


# ---- the export selects (store/queries.py) --------------------------------------------------------

VIEW_OF = {"faces": "face_results", "failed-images": "failed_images", "ad-summary": "ad_emotion_summary",
           "campaign-summary": "campaign_emotion_summary", "daily-trend": "daily_emotion_trend"}
KEYS_OF = {"faces": ["campaign", "ad", "image_path", "face_index"], "images": ["campaign", "ad", "image_path"],
           "failed-images": ["campaign", "ad", "image_path"], "ad-summary": KEY, "campaign-summary": ["campaign"],
           "daily-trend": [*KEY, "day"]}


@pytest.mark.parametrize("dataset", [d for d in DATASETS if d in VIEW_OF])
def test_export_select_without_filters_equals_its_view(analytics, dataset):
    engine, _ = analytics
    with Session(engine) as session:
        selected = [dict(r) for r in session.execute(dataset_select(dataset)).mappings()]
    assert_rows_equal(selected, _rows(engine, f"SELECT * FROM {VIEW_OF[dataset]}"), keys=KEYS_OF[dataset])


def _in_filters(row, filters: Filters) -> bool:
    return ((not filters.campaigns or row["campaign"] in filters.campaigns)
            and (not filters.ads or row["ad"] in filters.ads)
            and (filters.since is None or row["processed_at"] >= filters.since)
            and (filters.until is None or row["processed_at"] < filters.until))


FILTERS = [
    Filters(campaigns=("summer",)),
    Filters(ads=("teaser", "ad two")),
    Filters.from_options(since="2024-05-02", until="2024-05-02"),  # one whole UTC day
    Filters(campaigns=("summer", "winter"), since=T0 + dt.timedelta(hours=2)),
]


@pytest.mark.parametrize("filters", FILTERS, ids=["campaign", "ads", "one-day", "campaigns-since"])
def test_filtered_summaries_count_only_the_selected_rows(analytics, filters):
    engine, data = analytics
    faces = pl.DataFrame([f for f in data.faces if _in_filters(f, filters)], schema=data.faces_frame().schema)
    images = pl.DataFrame([{k: r[k] for k in data.images_frame().columns} for r in data.images if _in_filters(r, filters)],
                          schema=data.images_frame().schema)
    assert 0 < faces.height < len(data.faces)
    expected = {
        "ad-summary": with_valence(ad_summary(faces, images)),
        "campaign-summary": campaign_summary(faces, images),
        "daily-trend": daily_trend(faces),
        "faces": faces,
    }
    with Session(engine) as session:
        for dataset, frame in expected.items():
            got = [dict(r) for r in session.execute(dataset_select(dataset, filters)).mappings()]
            assert_rows_equal(got, frame.to_dicts(), keys=KEYS_OF[dataset])


# ---- valence ----------------------------------------------------------------------------------------


def test_valence_definition():
    zero = dict.fromkeys(EMOTIONS, 0)
    assert valence(zero) is None
    assert valence({**zero, "happy": 3}) == 1.0
    assert valence({**zero, "sad": 1, "angry": 1}) == -1.0
    assert valence({**zero, "neutral": 5, "surprise": 5}) == 0.0
    assert valence({**zero, "happy": 2, "fear": 1, "neutral": 1}) == pytest.approx(0.25)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2), st.sampled_from(["ok", "no_face", "unreadable"]),
                          st.lists(st.sampled_from(EMOTIONS), max_size=6)), min_size=1, max_size=12))
def test_views_equal_aggregate_on_random_data(tmp_path_factory, images):
    """Property: for any data, the SQL views and the polars aggregation give the same numbers (SQLite)."""
    plan: dict = {}
    for n, (c, a, status, tops) in enumerate(images):
        plan.setdefault((f"c{c}", f"a{a}"), []).append((status, tops if status == "ok" else [], n * 7))
    engine = create_engine("sqlite://")
    create_tables(engine)
    with Session(engine) as session, session.begin():
        data = populate(session, plan=plan)
    assert_rows_equal(_rows(engine, "SELECT * FROM ad_emotion_summary"), _expected_ads(data).to_dicts(), keys=KEY)
    assert_rows_equal(_rows(engine, "SELECT * FROM campaign_emotion_summary"),
                      campaign_summary(data.faces_frame(), data.images_frame()).to_dicts(), keys=["campaign"])
    if data.faces:
        assert_rows_equal(_rows(engine, "SELECT * FROM daily_emotion_trend"), daily_trend(data.faces_frame()).to_dicts(),
                          keys=[*KEY, "day"])
    engine.dispose()


def test_plan_covers_the_interesting_cases():
    statuses = {s for images in PLAN.values() for s, _, _ in images}
    assert statuses == {"ok", "no_face", "unreadable", "unsupported"}
