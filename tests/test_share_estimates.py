"""The table ``ad_share_estimates``: written at report time with the raw and the corrected shares the reports
state, exported by ``emotion-batch export share-estimates``, and erased with its campaign or ad."""

from __future__ import annotations

import csv
import datetime as dt

import numpy as np
import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from emotion_batch.aggregate import ConfusionStats, share_estimate_rows
from emotion_batch.cli import cli
from emotion_batch.config import Settings
from emotion_batch.exceptions import ConfigError
from emotion_batch.exports import export_rows
from emotion_batch.jobs import report_job
from emotion_batch.labels import EMOTIONS
from emotion_batch.reports import ReportOptions, render_reports
from emotion_batch.store.estimates import replace_share_estimates
from emotion_batch.store.models import ShareEstimateRow
from emotion_batch.store.queries import Filters
from emotion_batch.store.retention import delete_results
from emotion_batch.store.session import init_db, make_engine

from .store_data import MODEL, populate

NOW = dt.datetime(2024, 6, 1, 9, 30, tzinfo=dt.timezone.utc)
MEANS = np.full((7, 7), 0.05) + np.eye(7) * 0.65
STATS = ConfusionStats(counts=np.full(7, 400.0), confusion=np.full((7, 7), 20.0) + np.eye(7) * 260,
                       mean_probabilities=MEANS, covariance=np.stack([(np.diag(m) - np.outer(m, m)) / 8 for m in MEANS]))


@pytest.fixture()
def filled(db_url):
    engine = make_engine(db_url)
    init_db(engine)
    with Session(engine) as session, session.begin():
        populate(session)
    yield engine, db_url
    engine.dispose()


def _rows(engine) -> list[ShareEstimateRow]:
    with Session(engine) as session:
        return list(session.scalars(select(ShareEstimateRow).order_by(ShareEstimateRow.id)))


def test_report_job_writes_the_shares_it_reports(filled, tmp_path):
    engine, url = filled
    settings = Settings.from_options(db=url, reports=str(tmp_path / "reports"), min_faces=10, report_workers=0)
    report_job(settings)
    rows = _rows(engine)
    # shown: ads "ad_one" (11 faces) and "teaser" (13), campaigns summer (23) and winter (13); the bundled
    # models have no statistics for this database's model, so the shares are raw only
    groups = {(r.campaign, r.ad) for r in rows}
    assert groups == {("summer", "ad_one"), ("winter", "teaser"), ("summer", None), ("winter", None)}
    assert {r.method for r in rows} == {"raw"} and len(rows) == 4 * len(EMOTIONS)
    ad_one = {r.emotion: r for r in rows if r.ad == "ad_one"}
    assert ad_one["happy"].share == pytest.approx(7 / 11) and ad_one["happy"].faces == 11
    assert ad_one["happy"].lower < ad_one["happy"].share < ad_one["happy"].upper
    assert all(r.model_id == MODEL and r.computed_at.tzinfo is not None for r in rows)
    report_job(settings)  # a second report replaces the rows instead of adding to them
    assert len(_rows(engine)) == len(rows)


def test_a_report_of_no_stored_ad_writes_nothing(filled, tmp_path):
    engine, url = filled
    settings = Settings.from_options(db=url, reports=str(tmp_path / "reports"), min_faces=10, report_workers=0)
    for names in ({"campaign": "spring"}, {"campaign": "winter", "ad": "ad_one"}, {"ad": "nothing"}):
        written = report_job(settings, **names)
        assert written.all == [] and written.report_set is None
    assert _rows(engine) == [] and not list((tmp_path / "reports").rglob("*.*"))


def test_corrected_rows_are_exported_beside_the_raw_ones(filled, tmp_path):
    engine, url = filled
    with Session(engine) as session:
        written = render_reports(session, tmp_path / "reports", options=ReportOptions(
            min_faces=10, generated_at=NOW, workers=0, statistics={MODEL: STATS}, correction_min_faces=10))
    with Session(engine) as session, session.begin():
        assert replace_share_estimates(session, share_estimate_rows(written.report_set)) == 8 * len(EMOTIONS)
    rows = _rows(engine)
    corrected = [r for r in rows if r.method == "pacc" and r.ad == "teaser"]
    ad = next(a for a in written.report_set.ads if a.ad == "teaser")
    assert {r.emotion: r.share for r in corrected} == ad.correction.shares
    assert sum(r.share for r in corrected) == pytest.approx(1.0, abs=1e-5)

    result = CliRunner().invoke(cli, ["export", "share-estimates", "-o", str(tmp_path / "s.csv"), "--db", url,
                                      "--campaign", "winter", "-q"])
    assert result.exit_code == 0, result.output
    with open(tmp_path / "s.csv", newline="", encoding="utf-8") as handle:
        exported = list(csv.DictReader(handle))
    assert list(exported[0]) == ["campaign", "ad", "model_id", "method", "class", "share", "lower", "upper", "faces",
                                 "computed_at"]
    assert {(r["ad"], r["method"]) for r in exported} == {("", "raw"), ("", "pacc"), ("teaser", "raw"),
                                                          ("teaser", "pacc")}
    assert exported[0]["ad"] == ""  # the campaign's own rows first
    with Session(engine) as session, pytest.raises(ConfigError, match="since and until do not apply"):
        export_rows(session, "share-estimates", str(tmp_path / "t.csv"), filters=Filters(since=NOW))


def test_erasing_an_ad_erases_its_estimates_and_its_campaigns(filled):
    engine, _ = filled
    with Session(engine) as session, session.begin():
        replace_share_estimates(session, [
            {"campaign": c, "ad": a, "model_id": MODEL, "method": "raw", "emotion": "happy", "share": 0.5,
             "lower": 0.4, "upper": 0.6, "faces": 12, "computed_at": NOW}
            for c, a in [("summer", "ad_one"), ("summer", "ad two"), ("summer", None), ("winter", None)]])
    with Session(engine) as session, session.begin():
        delete_results(session, campaign="summer", ad="ad_one")
    assert {(r.campaign, r.ad) for r in _rows(engine)} == {("summer", "ad two"), ("winter", None)}
    with Session(engine) as session, session.begin():
        delete_results(session, campaign="winter")
    assert {(r.campaign, r.ad) for r in _rows(engine)} == {("summer", "ad two")}


def test_the_query_file_puts_corrected_beside_raw_shares(filled, tmp_path):
    from sqlalchemy import text

    from emotion_batch.assets import asset_dir

    engine, _ = filled
    with Session(engine) as session:
        written = render_reports(session, tmp_path / "reports", options=ReportOptions(
            min_faces=10, generated_at=NOW, workers=0, statistics={MODEL: STATS}, correction_min_faces=12))
    with Session(engine) as session, session.begin():
        replace_share_estimates(session, share_estimate_rows(written.report_set))
    query = (asset_dir("sql") / "queries" / "share_estimates.sql").read_text(encoding="utf-8")
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(text(query)).mappings()]
    by_ad = {}
    for row in rows:
        by_ad.setdefault(row["ad"], []).append(row)
    assert sorted(by_ad) == ["ad_one", "teaser"] and all(len(v) == len(EMOTIONS) for v in by_ad.values())
    # teaser (13 faces) is corrected, ad_one (11 faces) kept its raw shares
    assert {r["method"] for r in by_ad["teaser"]} == {"pacc"} and {r["method"] for r in by_ad["ad_one"]} == {None}
    teaser = next(a for a in written.report_set.ads if a.ad == "teaser")
    assert {r["class"]: r["corrected_share"] for r in by_ad["teaser"]} == teaser.correction.shares
    assert {r["class"]: r["raw_share"] for r in by_ad["teaser"]} == pytest.approx(teaser.shares)
