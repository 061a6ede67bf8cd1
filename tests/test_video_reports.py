"""Viewer videos in the report set: an ad with videos and no image gets its report and its place in its
campaign's report and the index; every ad's viewer-video figures are in summary.json, summary.csv and
index.html."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner
from sqlalchemy.orm import Session

from emotion_batch.cli import cli
from emotion_batch.reports import ReportOptions, render_reports
from emotion_batch.reports.render import campaign_paths, report_paths
from emotion_batch.store.session import init_db, make_engine
from emotion_batch.video.synthetic import make_viewer_video
from emotion_batch.video.trace import second_trace, strongest_moments

from .store_data import VIDEO_PLAN, populate, populate_videos


def _squash(text: str) -> str:
    return " ".join(text.split())


def test_an_ad_with_only_viewer_videos_gets_its_report_and_is_in_its_campaign_and_the_index(tmp_path,
                                                                                             tiny_model_file):
    from emotion_batch.sample import synthetic_photo

    root, reports = tmp_path / "campaigns", tmp_path / "reports"
    for folder in (root / "spring" / "teaser" / "viewers", root / "autumn" / "clip", root / "spring" / "poster"):
        folder.mkdir(parents=True)
    make_viewer_video(root / "spring" / "teaser" / "viewers" / "v1.mp4", seconds=2.0, fps=10, size=(480, 360))
    make_viewer_video(root / "autumn" / "clip" / "v1.mp4", seconds=2.0, fps=10, size=(480, 360), seed=8)
    synthetic_photo(np.random.default_rng(1), 320, 240, 1).save(root / "spring" / "poster" / "photo.jpg")
    db = f"sqlite:///{tmp_path / 'r.sqlite'}"
    result = CliRunner().invoke(cli, ["run", str(root), "--db", db, "--model", str(tiny_model_file), "--workers", "0",
                                      "--report-workers", "0", "--reports", str(reports), "--video-fps", "2",
                                      "--min-faces", "1"])
    assert result.exit_code == 0, result.output
    assert "2 videos found, 2 processed (2 ok" in result.output

    # the video-only ad's report: 0 images, 1 viewer video, the trace, no photo distribution
    teaser_html, teaser_pdf = report_paths(reports, "spring", "teaser")
    assert teaser_pdf.read_bytes().startswith(b"%PDF")
    page = _squash(teaser_html.read_text(encoding="utf-8"))
    assert "This ad has no images, only viewer videos (1)" in page
    assert "<th scope=\"col\">Viewer videos</th>" in page and "<td>0</td> <td>0</td>" in page  # images, faces
    assert "1 viewer recording, 1 with the viewer&rsquo;s face" in page
    assert "Viewer videos: second by second" in page and "Viewer videos processed up to:" in page
    assert "The distribution of apparent expressions is hidden" not in page
    # the ad with images and no video has no trace and no video column
    poster = report_paths(reports, "spring", "poster")[0].read_text(encoding="utf-8")
    assert "Viewer videos" not in poster and "only viewer videos" not in poster

    # its campaign lists it; a campaign of video-only ads has its own report
    spring = _squash(campaign_paths(reports, "spring")[0].read_text(encoding="utf-8"))
    assert "teaser" in spring and "no images: viewer videos only, traced in the ad&rsquo;s report" in spring
    assert "2 ads" in spring
    autumn_html, autumn_pdf = campaign_paths(reports, "autumn")
    autumn = _squash(autumn_html.read_text(encoding="utf-8"))
    assert autumn_pdf.read_bytes().startswith(b"%PDF") and "clip" in autumn
    assert "The campaign has no images, only ads with viewer videos" in autumn

    # the index links both video-only ads and says what their videos gave
    index = _squash((reports / "index.html").read_text(encoding="utf-8"))
    assert 'href="spring/teaser.html"' in index and 'href="autumn/clip.pdf"' in index
    assert index.count("no images: viewer videos only") == 2
    assert "1 ad, 0 images, 0 faces, 1 viewer video" in index  # autumn
    assert "1 viewer video, 1 with a face; trace of 2 s" in index

    summary = json.loads((reports / "summary.json").read_text(encoding="utf-8"))
    ads = {(a["campaign"], a["ad"]): a for a in summary["ads"]}
    assert set(ads) == {("autumn", "clip"), ("spring", "poster"), ("spring", "teaser")}
    teaser = ads[("spring", "teaser")]
    assert (teaser["images"], teaser["faces"], teaser["suppressed"]) == (0, 0, True)
    assert teaser["viewer_videos"]["videos"] == teaser["viewer_videos"]["videos_with_face"] == 1
    assert teaser["viewer_videos"]["seconds"] == 2 and ads[("spring", "poster")]["viewer_videos"] is None
    assert teaser["model_ids"] and teaser["last_processed_at"]
    assert [c["campaign"] for c in summary["campaigns"]] == ["autumn", "spring"]
    assert summary["norm_ads"] == 1  # the poster: the video-only ads are not in the norm of photos
    rows = {(r["campaign"], r["ad"]): r for r in pl.read_csv(reports / "summary.csv").iter_rows(named=True)}
    assert (rows[("spring", "teaser")]["images"], rows[("spring", "teaser")]["videos"]) == (0, 1)
    assert rows[("spring", "poster")]["videos"] == 0 and rows[("spring", "poster")]["trace_seconds"] is None


@pytest.fixture()
def stored(tmp_path):
    """The store_data database: images of six ads, recordings of three of them and of one ad without images."""
    engine = make_engine(f"sqlite:///{tmp_path / 'r.sqlite'}")
    init_db(engine)
    plan = {**VIDEO_PLAN, ("spring", "film only"): [(range(0, 4), 2), (range(1, 3), 2)]}
    with Session(engine) as session, session.begin():
        populate(session)
        frames = populate_videos(session, plan=plan)
    yield engine, frames
    engine.dispose()


def test_summaries_and_the_index_carry_each_ads_viewer_video_figures(stored, tmp_path):
    engine, frames = stored
    with Session(engine) as session:
        written = render_reports(session, tmp_path / "reports", options=ReportOptions(min_faces=2, workers=0))
    root = tmp_path / "reports"
    summary = json.loads((root / "summary.json").read_text(encoding="utf-8"))
    ads = {(a["campaign"], a["ad"]): a for a in summary["ads"]}
    assert len(ads) == 7 and ads[("summer", "tie")]["viewer_videos"] is None
    csv = {(r["campaign"], r["ad"]): r for r in pl.read_csv(root / "summary.csv").iter_rows(named=True)}
    for key, videos in {**VIDEO_PLAN, ("spring", "film only"): [None, None]}.items():
        mine = frames.filter((pl.col("campaign") == key[0]) & (pl.col("ad") == key[1])).drop("campaign", "ad")
        trace = second_trace(mine, min_faces=2)
        moments = strongest_moments(trace)
        figures = ads[key]["viewer_videos"]
        assert figures["videos"] == figures["videos_with_face"] == len(videos), key
        assert figures["seconds"] == trace.height and figures["min_faces"] == 2
        assert figures["seconds_shown"] == trace.filter(~pl.col("suppressed")).height
        assert figures["max_viewers"] == trace["viewers"].max()
        assert figures["moments"] == [{"second": m.second, "emotion": m.emotion, "share": m.share, "mean_p": m.mean_p,
                                       "viewers": m.viewers} for m in moments]
        row = csv[key]
        assert (row["videos"], row["videos_with_face"], row["trace_seconds"], row["trace_seconds_shown"]) == (
            len(videos), len(videos), trace.height, figures["seconds_shown"])
        assert written.traces[key].to_dict() == figures
    # summer/ad_one: three viewers over seconds 0-5; winter/teaser: one viewer, below 2 in every second
    assert ads[("summer", "ad_one")]["viewer_videos"]["seconds_shown"] == 6
    assert ads[("winter", "teaser")]["viewer_videos"]["seconds_shown"] == 0
    assert ads[("winter", "teaser")]["viewer_videos"]["moments"] == []
    assert csv[("summer", "tie")]["videos"] == 0 and csv[("summer", "tie")]["trace_seconds"] is None

    index = _squash((root / "index.html").read_text(encoding="utf-8"))
    top = ads[("summer", "ad_one")]["viewer_videos"]["moments"][0]
    label = {"happy": "Happy", "surprise": "Surprise"}[top["emotion"]]
    assert (f"3 viewer videos, 3 with a face; trace of 6 s, strongest moment: {label} at "
            f"{top['second']}&ndash;{top['second'] + 1} s") in index
    assert "1 viewer video, 1 with a face; trace hidden (fewer than 2 viewers in every second)" in index
    assert "3 ads, 13 images, 23 faces, 3 viewer videos, valence" in index  # summer: its ads' recordings
    assert "1 ad, 0 images, 0 faces, 2 viewer videos" in index  # spring: the ad without images
    film = _squash(report_paths(root, "spring", "film only")[0].read_text(encoding="utf-8"))
    assert "This ad has no images, only viewer videos (2)" in film and "Strongest moments" in film
