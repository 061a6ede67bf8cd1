"""Tests of emotion_batch.aggregate against a small real SQLite database with the analyst views."""

from __future__ import annotations

import datetime as dt
import math

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from emotion_batch.aggregate import (
    FACE_SCHEMA,
    IMAGE_SCHEMA,
    ad_report_data,
    ad_reports_from_frames,
    ad_summary,
    load_faces,
    load_images,
    load_report_set,
    select_ads,
    suppress_small_ads,
)
from emotion_batch.exceptions import ConfigError, ReportError
from emotion_batch.labels import EMOTIONS
from emotion_batch.store.models import Ad, Campaign, ImageRow, PROB_COLUMNS

from .store_data import T0, add_ad, probs, results_db

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
    engine = results_db(tmp_path / "results.db")
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


def test_select_ads_by_pairs_and_by_names(session, caplog):
    report_set = load_report_set(session, min_faces=1)
    names = lambda chosen: [(a.campaign, a.ad) for a in chosen]  # noqa: E731
    assert names(select_ads(report_set)) == [(a.campaign, a.ad) for a in report_set.ads]
    assert names(select_ads(report_set, campaign="Spring")) == [("Spring", "Hero"), ("Spring", "Small")]
    assert names(select_ads(report_set, campaign="Spring", ad="Small")) == [("Spring", "Small")]
    assert names(select_ads(report_set, ad="Empty")) == [("Autumn", "Empty")]
    assert select_ads(report_set, campaign="Winter") == []
    # "Ghost" has no image: no report, and a warning
    assert names(select_ads(report_set, [("Autumn", "Ghost"), ("Spring", "Hero"), ("Autumn", "Empty")],
                            campaign="Spring")) == [("Spring", "Hero")]
    assert "('Autumn', 'Ghost')" in caplog.text and "Empty" not in caplog.text


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


# --- intervals, norms, confidence, time --------------------------------------------------------------------

from emotion_batch.aggregate import (  # noqa: E402
    CONFIDENCE_BINS,
    build_report_set,
    capture_trend,
    confidence_histogram,
    percentile_ranks,
    top_faces,
    valence,
    valence_interval,
    wilson_interval,
    with_intervals,
    with_time_basis,
    with_valence,
)


@settings(max_examples=300, deadline=None)
@given(n=st.integers(0, 5000), data=st.data())
def test_wilson_interval_contains_the_share_and_stays_in_0_1(n, data):
    k = data.draw(st.integers(0, n))
    interval = wilson_interval(k, n)
    if n == 0:
        assert interval is None
        return
    low, high = interval
    assert 0.0 <= low <= k / n <= high <= 1.0
    assert high - low > 0  # never zero-width, even at 0 % and 100 %
    if 0 < k < n:
        assert low > 0.0 and high < 1.0


def test_wilson_interval_known_values():
    # Wilson (1927) / Newcombe (1998) table: 0/10 -> 0-0.2775, 1/10 -> 0.0179-0.4042, 81/263 -> 0.2553-0.3662
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=5e-5)
    assert wilson_interval(1, 10) == pytest.approx((0.0179, 0.4042), abs=5e-5)
    assert wilson_interval(81, 263) == pytest.approx((0.2553, 0.3662), abs=5e-5)
    with pytest.raises(ReportError, match="k=3, n=2"):
        wilson_interval(3, 2)


@settings(max_examples=60, deadline=None)
@given(faces=face_sets)
def test_frame_intervals_equal_the_scalar_ones_and_contain_the_shares(faces):
    faces_df = frames_from(faces)
    summary = with_intervals(ad_summary(faces_df, images_for(faces_df, extra_ads=["empty"])))
    for row in summary.iter_rows(named=True):
        for e in EMOTIONS:
            expected = wilson_interval(row[f"count_{e}"], row["faces"])
            if expected is None:
                assert row[f"ci_low_{e}"] is None and row[f"ci_high_{e}"] is None
                continue
            assert (row[f"ci_low_{e}"], row[f"ci_high_{e}"]) == pytest.approx(expected, abs=1e-12)
            assert 0.0 <= row[f"ci_low_{e}"] <= row[f"share_{e}"] <= row[f"ci_high_{e}"] <= 1.0


@settings(max_examples=100, deadline=None)
@given(counts=st.lists(st.integers(0, 50), min_size=len(EMOTIONS), max_size=len(EMOTIONS)))
def test_valence_interval_contains_the_valence_and_stays_in_minus_1_1(counts):
    counts = dict(zip(EMOTIONS, counts))
    value, interval = valence(counts), valence_interval(counts)
    if value is None:
        assert interval is None
        return
    assert -1.0 <= interval[0] <= value <= interval[1] <= 1.0


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.one_of(st.none(), st.floats(-1, 1)), min_size=1, max_size=40),
       eligible=st.lists(st.booleans(), min_size=40, max_size=40))
def test_percentile_ranks_are_mid_ranks_in_0_100(values, eligible):
    frame = pl.DataFrame({"valence": values, "ok": eligible[: len(values)]},
                         schema={"valence": pl.Float64, "ok": pl.Boolean})
    ranked = percentile_ranks(frame, ["valence"], eligible=pl.col("ok"))
    members = [v for v, ok in zip(values, eligible) if ok and v is not None]
    for row in ranked.iter_rows(named=True):
        if not row["ok"] or row["valence"] is None:
            assert row["pct_valence"] is None
            continue
        below = sum(v < row["valence"] for v in members)
        same = sum(v == row["valence"] for v in members)
        assert row["pct_valence"] == pytest.approx(100.0 * (below + same / 2) / len(members))
        assert 0.0 < row["pct_valence"] < 100.0 or len(members) == 1


@settings(max_examples=40, deadline=None)
@given(faces=face_sets, confidence=st.sampled_from([0.2, 0.3, 0.45, 0.5, 0.7, 0.9, 1.0]))
def test_confidence_histogram_preserves_the_faces(faces, confidence):
    faces_df = frames_from(faces).with_columns(
        *[pl.when(pl.col("top_emotion") == e).then(confidence).otherwise((1 - confidence) / 6).alias(f"p_{e}")
          for e in EMOTIONS])
    histogram = confidence_histogram(faces_df)
    assert histogram["faces"].sum() == len(faces)
    assert histogram.height == len(set(ad for ad, _ in faces)) * (len(CONFIDENCE_BINS) - 1)
    if faces:
        hit = histogram.filter(pl.col("faces") > 0)
        assert ((hit["low"] <= confidence) & ((confidence < hit["high"]) | (hit["high"] == 1.0))).all()


def test_time_basis_prefers_exif_then_file_time_then_processing():
    times = pl.DataFrame({
        "captured_at": [dt.datetime(2024, 3, 1, 10, tzinfo=dt.timezone.utc), None, None, None],
        "mtime_ns": [1_700_000_000 * 10**9, 1_700_000_000 * 10**9, 0, 5],
        "processed_at": [T0] * 4,
    }, schema={"captured_at": pl.Datetime("us", "UTC"), "mtime_ns": pl.Int64, "processed_at": pl.Datetime("us", "UTC")})
    out = with_time_basis(times)
    assert out["time_source"].to_list() == ["exif", "file", "processed", "processed"]  # 5 ns after 1970: not recorded
    assert out["time"].to_list() == [dt.datetime(2024, 3, 1, 10, tzinfo=dt.timezone.utc),
                                     dt.datetime.fromtimestamp(1_700_000_000, dt.timezone.utc), T0, T0]


def test_capture_trend_counts_faces_per_day_of_the_image_time(session):
    from emotion_batch.aggregate import load_image_times

    session.execute(ImageRow.__table__.update().where(ImageRow.path.like("Spring/Hero/00%"))
                    .values(captured_at=dt.datetime(2023, 12, 31, 23, 0, tzinfo=dt.timezone.utc)))
    session.execute(ImageRow.__table__.update().where(ImageRow.path == "Spring/Hero/003.jpg")
                    .values(captured_at=None, mtime_ns=1_704_153_600 * 10**9))  # 2024-01-02 00:00 UTC
    trend = capture_trend(load_faces(session), load_image_times(session)).filter(pl.col("ad") == "Hero")
    assert trend["day"].to_list() == [dt.date(2023, 12, 31), dt.date(2024, 1, 2)]
    assert trend["faces"].to_list() == [9, 3]
    assert trend["faces"].sum() == ad_summary(load_faces(session), load_images(session)).filter(
        pl.col("ad") == "Hero")["faces"].item()


def test_top_faces_picks_the_most_confident_faces_per_emotion():
    rows = [("a", "happy", 0.9), ("a", "happy", 0.6), ("a", "happy", 0.95), ("a", "sad", 0.5), ("b", "happy", 0.99)]
    faces = pl.DataFrame([
        {"campaign": "C", "ad": ad, "image_path": f"{ad}/{i}.jpg", "face_index": 0, "x": 1.0, "y": 2.0, "w": 3.0,
         "h": 4.0, "top_emotion": top, **{f"p_{e}": (p if e == top else (1 - p) / 6) for e in EMOTIONS}}
        for i, (ad, top, p) in enumerate(rows)])
    top = top_faces(faces, per_emotion=2)
    a = top.filter(pl.col("ad") == "a")
    assert a["emotion"].to_list() == ["happy", "happy", "sad"]
    assert a["probability"].to_list() == pytest.approx([0.95, 0.9, 0.5])
    assert a["rank"].to_list() == [1, 2, 1]
    with pytest.raises(ConfigError, match="per_emotion=0"):
        top_faces(faces, per_emotion=0)


@settings(max_examples=25, deadline=None)
@given(faces=face_sets, min_faces=st.integers(1, 20))
def test_report_set_hides_every_distribution_field_of_small_groups(faces, min_faces):
    faces_df = frames_from(faces).with_columns(pl.col("ad").alias("image_path"), pl.lit(0).alias("face_index"),
                                               *[pl.lit(1.0).alias(c) for c in ("x", "y", "w", "h")])
    images = images_for(faces_df, extra_ads=["empty"])
    report_set = build_report_set(faces_df, images, min_faces=min_faces)
    alone = ad_reports_from_frames(faces_df, images, min_faces=min_faces)  # the ads alone, from the same frames
    assert [(a.ad, a.faces, a.suppressed, a.shares) for a in alone] == [
        (a.ad, a.faces, a.suppressed, a.shares) for a in report_set.ads]
    assert sum(a.faces for a in report_set.ads) == len(faces)
    assert report_set.norm_ads == sum(1 for a in report_set.ads if a.faces >= min_faces)
    for ad in report_set.ads:
        hidden = ad.faces < min_faces
        assert ad.suppressed == hidden
        fields = (ad.shares, ad.intervals, ad.valence, ad.valence_interval, ad.comparison, ad.confidence)
        assert all(f is None for f in fields) if hidden else all(f is not None for f in fields)
        if not hidden:
            assert math.isclose(sum(ad.shares.values()), 1.0)
            assert all(0 <= ad.comparison.percentiles[m] <= 100 for m in ad.comparison.percentiles)
    for camp in report_set.campaigns:
        assert camp.faces == sum(a.faces for a in camp.ads)
        assert (camp.shares is None) == (camp.faces < min_faces)
        assert [a.ad for a in camp.ranking("valence")] == sorted(
            [a.ad for a in camp.shown_ads], key=lambda name: -next(x.valence for x in camp.ads if x.ad == name))
