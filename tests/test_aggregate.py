"""Tests of emotion_batch.aggregate against a small real SQLite database with the analyst views."""

from __future__ import annotations

import datetime as dt
import math

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from emotion_batch.aggregate import (
    FACE_SCHEMA,
    IMAGE_SCHEMA,
    ad_report_data,
    ad_reports_from_frames,
    ad_summary,
    load_faces,
    load_images,
    suppress_small_ads,
)
from emotion_batch.assets import asset_dir
from emotion_batch.exceptions import ConfigError, ReportError
from emotion_batch.labels import EMOTIONS
from emotion_batch.store.models import Ad, Base, Campaign, FaceRow, ImageRow, PROB_COLUMNS

T0 = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone.utc)


def view_statements() -> list[str]:
    """The statements of sql/views.sql, without comment-only chunks."""
    statements = []
    for chunk in (asset_dir("sql") / "views.sql").read_text(encoding="utf-8").split(";"):
        code = "\n".join(line for line in chunk.splitlines() if not line.strip().startswith("--")).strip()
        if code:
            statements.append(code)
    return statements


def make_engine(path):
    engine = create_engine(f"sqlite:///{path}")
    Base.metadata.create_all(engine)
    with engine.begin() as conn:
        for statement in view_statements():
            conn.exec_driver_sql(statement)
    return engine


def probs(top: str, confidence: float = 0.7) -> dict[str, float]:
    rest = (1.0 - confidence) / (len(EMOTIONS) - 1)
    return {f"p_{e}": confidence if e == top else rest for e in EMOTIONS}


def add_ad(session: Session, campaign: str, ad: str, images: list[tuple[str, list[str]]], *, minute=0, model="m@1"):
    """Store one ad; ``images`` is a list of (status, top emotions of its faces)."""
    camp = session.query(Campaign).filter_by(name=campaign).one_or_none() or Campaign(name=campaign)
    row = Ad(name=ad, campaign=camp)
    session.add(row)
    session.flush()
    for i, (status, tops) in enumerate(images):
        image = ImageRow(
            ad_id=row.id, path=f"{campaign}/{ad}/{i:03d}.jpg", size_bytes=10, mtime_ns=0, status=status,
            faces_count=len(tops), processed_at=T0 + dt.timedelta(minutes=minute + i),
        )
        session.add(image)
        session.flush()
        for j, top in enumerate(tops):
            session.add(
                FaceRow(
                    image_id=image.id, face_index=j, x=0, y=0, w=10, h=10, detection_score=0.9,
                    top_emotion=top, model_id=model, **probs(top),
                )
            )
    session.flush()


HERO = [
    ("ok", ["happy", "happy", "neutral"]),
    ("ok", ["happy", "sad", "neutral"]),
    ("ok", ["happy", "happy", "surprise"]),
    ("ok", ["happy", "sad", "neutral"]),
    ("no_face", []),
    ("unreadable", []),
    ("unsupported", []),
]


@pytest.fixture()
def session(tmp_path):
    engine = make_engine(tmp_path / "results.db")
    with Session(engine) as session:
        add_ad(session, "Spring", "Hero", HERO)
        add_ad(session, "Spring", "Small", [("ok", ["angry", "angry", "fear"])], minute=30, model="m@2")
        add_ad(session, "Autumn", "Empty", [("no_face", []), ("no_face", [])])
        session.add(Ad(name="Ghost", campaign=session.query(Campaign).filter_by(name="Autumn").one()))
        add_ad(session, "Quote's \"camp\"", "O'Brien; DROP TABLE faces", [("ok", ["fear"])])
        session.commit()
        yield session
    engine.dispose()


def test_load_faces_reads_the_view_with_fixed_types(session):
    faces = load_faces(session)
    assert faces.schema == pl.Schema(FACE_SCHEMA)
    assert faces.height == 12 + 3 + 1
    assert faces["processed_at"].dtype == pl.Datetime("us", "UTC")
    assert faces["processed_at"].min() == T0
    hero = faces.filter(pl.col("ad") == "Hero")
    assert hero["image_path"].to_list()[:3] == ["Spring/Hero/000.jpg"] * 3
    assert hero["face_index"].to_list()[:3] == [0, 1, 2]


def test_load_images_counts_every_image(session):
    images = load_images(session)
    assert images.schema == pl.Schema(IMAGE_SCHEMA)
    assert images.height == 7 + 1 + 2 + 1
    assert images.filter(pl.col("ad") == "Hero")["status"].to_list() == [s for s, _ in HERO]


def test_ads_filter_uses_bound_parameters(session):
    pair = ("Quote's \"camp\"", "O'Brien; DROP TABLE faces")
    faces = load_faces(session, ads=[pair, ("Spring", "Small")])
    assert sorted(set(zip(faces["campaign"], faces["ad"]))) == sorted([pair, ("Spring", "Small")])
    assert faces.height == 4
    assert load_faces(session).height == 16  # the table is still there
    assert load_faces(session, ads=[]).is_empty()
    assert load_images(session, ads=[("Spring", "Nope")]).is_empty()


def test_many_ads_are_filtered_in_polars_with_the_same_result(session):
    many = [(f"c{i}", f"a{i}") for i in range(300)] + [("Spring", "Hero")]
    assert load_faces(session, ads=many).equals(load_faces(session, ads=[("Spring", "Hero")]))
    assert load_images(session, ads=many).height == 7


def test_ads_must_be_pairs(session):
    with pytest.raises(ConfigError, match="Received"):
        load_faces(session, ads=["Spring/Hero"])


def test_ad_summary_counts_per_ad(session):
    summary = ad_summary(load_faces(session), load_images(session))
    keys = list(zip(summary["campaign"], summary["ad"]))
    assert keys == [
        ("Autumn", "Empty"),
        ("Quote's \"camp\"", "O'Brien; DROP TABLE faces"),
        ("Spring", "Hero"),
        ("Spring", "Small"),
    ]  # sorted; Ghost has no image
    hero = summary.row(keys.index(("Spring", "Hero")), named=True)
    assert (hero["images"], hero["images_ok"], hero["images_no_face"], hero["images_failed"]) == (7, 4, 1, 2)
    assert hero["faces"] == 12
    assert [hero[f"count_{e}"] for e in EMOTIONS] == [0, 0, 0, 6, 3, 2, 1]
    assert hero["share_happy"] == pytest.approx(0.5)
    assert hero["share_surprise"] == pytest.approx(1 / 12)
    assert hero["mean_p_happy"] == pytest.approx((6 * 0.7 + 6 * 0.05) / 12)
    assert hero["dominant_emotion"] == "happy"

    empty = summary.row(keys.index(("Autumn", "Empty")), named=True)
    assert (empty["images"], empty["images_no_face"], empty["faces"]) == (2, 2, 0)
    assert empty["count_happy"] == 0
    assert empty["share_happy"] is None and empty["mean_p_happy"] is None
    assert empty["dominant_emotion"] is None


def test_dominant_emotion_tie_goes_to_the_earlier_emotion():
    faces = frames_from([("A", "sad"), ("A", "fear"), ("A", "sad"), ("A", "fear")])
    summary = ad_summary(faces, images_for(faces))
    assert summary["dominant_emotion"].to_list() == ["fear"]


def test_unknown_top_emotion_is_an_error(session):
    faces = load_faces(session).with_columns(pl.lit("contempt").alias("top_emotion"))
    with pytest.raises(ReportError, match="contempt"):
        ad_summary(faces, load_images(session))


def test_ad_report_data_suppresses_small_groups(session):
    small = ad_report_data(session, "Spring", "Small", min_faces=10)
    assert small.suppressed
    assert (small.images, small.faces) == (1, 3)
    assert small.shares is None and small.emotion_counts is None and small.mean_probabilities is None
    assert small.dominant_emotion is None
    assert small.suppression_reason == "fewer than 10 faces (3 found)"
    assert small.model_ids == ("m@2",)

    shown = ad_report_data(session, "Spring", "Small", min_faces=3)
    assert not shown.suppressed and shown.suppression_reason is None
    assert shown.emotion_counts["angry"] == 2
    assert shown.shares["angry"] == pytest.approx(2 / 3)
    assert shown.dominant_emotion == "angry"


def test_ad_report_data_of_a_full_ad(session):
    now = dt.datetime(2024, 6, 1, tzinfo=dt.timezone.utc)
    hero = ad_report_data(session, "Spring", "Hero", generated_at=now)
    assert not hero.suppressed
    assert hero.generated_at == now
    assert hero.last_processed_at == T0 + dt.timedelta(minutes=3)
    assert math.isclose(sum(hero.shares.values()), 1.0)
    assert hero.to_dict()["shares"]["happy"] == pytest.approx(0.5)
    assert hero.to_dict()["generated_at"] == "2024-06-01T00:00:00+00:00"


def test_ad_report_data_errors(session):
    with pytest.raises(ReportError, match="Ghost"):
        ad_report_data(session, "Autumn", "Ghost")
    with pytest.raises(ConfigError, match="min_faces=0"):
        ad_report_data(session, "Spring", "Hero", min_faces=0)


def test_suppress_small_ads_keeps_counts_of_images_and_faces(session):
    summary = suppress_small_ads(ad_summary(load_faces(session), load_images(session)), min_faces=10)
    assert summary.filter(pl.col("suppressed"))["ad"].to_list() == ["Empty", "O'Brien; DROP TABLE faces", "Small"]
    small = summary.filter(pl.col("ad") == "Small").row(0, named=True)
    assert small["faces"] == 3 and small["count_angry"] is None and small["share_angry"] is None


# --- properties over random face sets ------------------------------------------------------------------


def frames_from(faces: list[tuple[str, str]]) -> pl.DataFrame:
    rows = [
        {"campaign": "C", "ad": ad, "top_emotion": top, **probs(top), "model_id": "m", "processed_at": T0}
        for ad, top in faces
    ]
    schema = {name: FACE_SCHEMA[name] for name in ["campaign", "ad", "top_emotion", *PROB_COLUMNS]}
    schema |= {"model_id": pl.String(), "processed_at": pl.Datetime("us", "UTC")}
    return pl.DataFrame(rows, schema=schema)


def images_for(faces: pl.DataFrame, extra_ads=()) -> pl.DataFrame:
    ads = sorted(set(faces["ad"].to_list()) | set(extra_ads))
    return pl.DataFrame(
        {"campaign": ["C"] * len(ads), "ad": ads, "status": ["ok"] * len(ads)},
        schema={"campaign": pl.String(), "ad": pl.String(), "status": pl.String()},
    )


face_sets = st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.sampled_from(EMOTIONS)), max_size=60)


@settings(max_examples=60, deadline=None)
@given(faces=face_sets)
def test_shares_sum_to_one_and_counts_are_preserved(faces):
    faces_df = frames_from(faces)
    summary = ad_summary(faces_df, images_for(faces_df, extra_ads=["empty"]))
    assert summary["faces"].sum() == len(faces)
    for row in summary.iter_rows(named=True):
        counts = [row[f"count_{e}"] for e in EMOTIONS]
        assert sum(counts) == row["faces"] == sum(1 for ad, _ in faces if ad == row["ad"])
        if row["faces"]:
            assert math.isclose(sum(row[f"share_{e}"] for e in EMOTIONS), 1.0, rel_tol=1e-12)
            assert row["dominant_emotion"] == EMOTIONS[counts.index(max(counts))]
        else:
            assert row["dominant_emotion"] is None
            assert all(row[f"share_{e}"] is None for e in EMOTIONS)


@settings(max_examples=30, deadline=None)
@given(faces=face_sets, min_faces=st.integers(1, 30))
def test_report_data_hides_exactly_the_small_ads(faces, min_faces):
    faces_df = frames_from(faces)
    reports = ad_reports_from_frames(faces_df, images_for(faces_df), min_faces=min_faces)
    for report in reports:
        assert report.suppressed == (report.faces < min_faces)
        assert (report.shares is None) == report.suppressed
