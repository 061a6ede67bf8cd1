"""The whole report set of a fixed small database: layout, hostile names, golden tables and HTML, PDF text,
pages rendered to PNG, embedded fonts, the methodology from the manifest, example faces, the process pool.

Golden files live in tests/golden/; after an intended change, regenerate them with

    EMOTION_BATCH_UPDATE_GOLDEN=1 python3 -m pytest -q tests/test_report_outputs.py

and review the diff. The charts (matplotlib SVG) are replaced by a placeholder in the HTML goldens, so that
a matplotlib release does not change them; the charts have their own tests.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import logging
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image
from sqlalchemy import text, update
from sqlalchemy.orm import Session

from emotion_batch.aggregate import ConfusionStats
from emotion_batch.labels import EMOTIONS
from emotion_batch.reports import ReportOptions, campaign_paths, render_ad_reports, render_reports, report_paths
from emotion_batch.reports.methodology import model_reliability
from emotion_batch.reports.render import make_environment
from emotion_batch.safe_text import csv_cell
from emotion_batch.store.models import ImageRow, Run

from .store_data import populate, results_db

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("EMOTION_BATCH_UPDATE_GOLDEN") == "1"
NOW = dt.datetime(2024, 6, 1, 9, 30, tzinfo=dt.timezone.utc)
T0 = dt.datetime(2024, 5, 6, 8, 0, tzinfo=dt.timezone.utc)
HOSTILE = '<script>alert("x")</script> \u202eevil'
EVIL_CAMPAIGN = "../../evil"
MANIFEST = {
    "default": "tiny",
    "models": {
        "tiny": {
            "file": "tiny.keras", "sha256": "0123456789ab" + "0" * 52, "card": "tiny.md",
            "test_accuracy": 0.6123, "test_macro_f1": 0.5511,
            "per_class": {e: {"precision": p, "recall": r, "f1": f} for e, (p, r, f) in {
                "angry": (0.52, 0.55, 0.5347), "disgust": (0.31, 0.22, 0.2574), "fear": (0.41, 0.33, 0.3657),
                "happy": (0.88, 0.9, 0.8899), "neutral": (0.6, 0.63, 0.6146), "sad": (0.47, 0.5, 0.4845),
                "surprise": (0.74, 0.77, 0.7547)}.items()},
        }
    },
}
#: Validation statistics of the "tiny" model for the corrected shares: a fixed confusion (fear often taken for
#: sad, disgust for angry), 500 validation faces per class, probabilities as from a Dirichlet of concentration 6.
_MEANS = np.array([
    [0.55, 0.04, 0.10, 0.04, 0.09, 0.14, 0.04], [0.25, 0.40, 0.08, 0.04, 0.06, 0.14, 0.03],
    [0.12, 0.02, 0.40, 0.04, 0.10, 0.24, 0.08], [0.03, 0.01, 0.03, 0.82, 0.06, 0.03, 0.02],
    [0.07, 0.01, 0.06, 0.07, 0.58, 0.19, 0.02], [0.09, 0.01, 0.09, 0.04, 0.14, 0.60, 0.03],
    [0.04, 0.01, 0.10, 0.05, 0.03, 0.04, 0.73]])
STATISTICS = {"tiny@0123456789ab": ConfusionStats(
    counts=np.full(7, 500.0), confusion=np.round(_MEANS * 500) + np.diag(500 - np.round(_MEANS * 500).sum(axis=1)),
    mean_probabilities=_MEANS,
    covariance=np.stack([(np.diag(m) - np.outer(m, m)) / 7.0 for m in _MEANS]))}
#: Hero film (19 faces) and the campaign (34) are corrected; the hostile ad (12) and "index" (10) fall back.
CORRECTION_MIN_FACES = 15
# (campaign, ad) -> images: (status, top emotions of its faces, hours after T0)
PLAN = {
    ("Spring 2024", "Hero film"): [
        ("ok", ["happy", "happy", "neutral", "surprise"], 0), ("ok", ["happy", "sad", "happy"], 1),
        ("ok", ["happy", "neutral", "happy", "happy"], 2), ("no_face", [], 3),
        ("ok", ["happy", "happy", "fear"], 26), ("ok", ["neutral", "happy"], 27),
        ("ok", ["angry", "happy", "happy"], 50), ("unreadable", [], 51),
    ],
    ("Spring 2024", HOSTILE): [
        ("ok", ["neutral", "neutral", "sad", "angry"], 0), ("ok", ["neutral", "happy", "sad"], 1),
        ("ok", ["disgust", "neutral", "neutral", "happy", "sad"], 2),
    ],
    ("Spring 2024", "Small"): [("ok", ["angry", "angry", "fear"], 5)],
    (EVIL_CAMPAIGN, "index"): [("ok", ["surprise", "happy", "neutral", "happy", "happy"], 10),
                               ("ok", ["happy", "neutral", "sad", "surprise", "happy"], 11)],
}


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def make_database(path: Path):
    engine = results_db(path)
    with Session(engine) as session, session.begin():
        populate(session, plan=PLAN, t0=T0, seed=11)
        # Hero film: EXIF times on a camera in May; the hostile ad: file times; the rest: processing time
        for i, hours in enumerate([0, 1, 2, 3, 26, 27, 50, 51]):
            session.execute(update(ImageRow).where(ImageRow.path == f"Spring 2024/Hero film/img_{i:03d}.jpg")
                            .values(captured_at=dt.datetime(2024, 5, 1, 9, tzinfo=dt.timezone.utc)
                                    + dt.timedelta(hours=hours)))
        session.execute(update(ImageRow).where(ImageRow.path.like("Spring 2024/<script>%"))
                        .values(mtime_ns=1_714_550_400 * 10**9))  # 2024-05-01 08:00 UTC
    return engine


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """The report set of the fixed database, rendered once in this process, with WeasyPrint's log records."""
    base = tmp_path_factory.mktemp("outputs")
    engine = make_database(base / "results.sqlite")
    handler = _Records()
    logging.getLogger("weasyprint").addHandler(handler)
    old_level = logging.getLogger("weasyprint").level
    logging.getLogger("weasyprint").setLevel(logging.DEBUG)
    try:
        with Session(engine) as session:
            written = render_reports(session, base / "reports", options=ReportOptions(
                min_faces=10, generated_at=NOW, manifest=MANIFEST, workers=0, statistics=STATISTICS,
                correction_min_faces=CORRECTION_MIN_FACES))
    finally:
        logging.getLogger("weasyprint").removeHandler(handler)
        logging.getLogger("weasyprint").setLevel(old_level)
    yield {"base": base, "root": base / "reports", "written": written, "engine": engine,
           "weasyprint": [r for r in handler.records if r.levelno >= logging.WARNING]}
    engine.dispose()


def squash(value: str) -> str:
    return re.sub(r"\s+", " ", value)


def pdf_text(path: Path) -> str:
    from pypdf import PdfReader

    return squash(" ".join(page.extract_text() or "" for page in PdfReader(str(path)).pages))


def assert_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    assert path.is_file(), f"{path} is missing: run with EMOTION_BATCH_UPDATE_GOLDEN=1 to create it"
    expected = path.read_text(encoding="utf-8")
    if actual != expected:
        diff = "".join(list(difflib.unified_diff(expected.splitlines(True), actual.splitlines(True), name,
                                                 "actual"))[:80])
        pytest.fail(f"{name} differs from its golden file (EMOTION_BATCH_UPDATE_GOLDEN=1 regenerates it):\n{diff}")


def without_charts(html: str) -> str:
    """The HTML with every inline SVG replaced by a placeholder naming the chart."""
    return re.sub(r'<svg\b[^>]*?aria-label="([^"]*)"[^>]*>.*?</svg>', r'<svg aria-label="\1"/>', html, flags=re.S)


# --- layout and hostile names ----------------------------------------------------------------------------------


def test_every_output_is_written_inside_the_reports_folder(rendered):
    root, written = rendered["root"], rendered["written"]
    assert sorted(p.name for p in rendered["base"].iterdir()) == ["reports", "results.sqlite"]
    files = [p for p in root.rglob("*") if p.is_file()]
    assert sorted(files) == sorted(written.all)
    assert all(p.resolve().is_relative_to(root.resolve()) for p in files)
    assert not [p for p in root.rglob(".*")]  # no partial or hidden file
    assert [p.name for p in written.index] == ["index.html", "summary.json", "summary.csv", "campaigns.csv"]
    assert len(written.ads) == 2 * 4 and len(written.campaigns) == 2 * 2
    # the ad named "index" cannot overwrite its campaign's index.html
    evil_html, _ = report_paths(root, EVIL_CAMPAIGN, "index")
    camp_html, camp_pdf = campaign_paths(root, EVIL_CAMPAIGN)
    assert evil_html != camp_html and evil_html.parent == camp_html.parent == root / evil_html.parent.name
    assert re.fullmatch(r"index-[0-9a-f]{12}\.html", evil_html.name)
    assert "campaign report" in camp_html.read_text(encoding="utf-8").lower()
    assert camp_pdf.read_bytes().startswith(b"%PDF")


def test_hostile_names_are_escaped_in_every_page(rendered):
    root = rendered["root"]
    pages = [report_paths(root, "Spring 2024", HOSTILE)[0], campaign_paths(root, "Spring 2024")[0],
             campaign_paths(root, EVIL_CAMPAIGN)[0], root / "index.html"]
    for page in pages:
        html = page.read_text(encoding="utf-8")
        assert "<script" not in html and "\u202e" not in html, page
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html or "evil" in html, page
        assert not re.search(r'\s(src|href)="(?!#|data:)[a-z]+:|url\((?!#)|@import|<link\b', html), page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in pages[1].read_text(encoding="utf-8")
    assert "../../evil" in pages[3].read_text(encoding="utf-8")  # shown as text, not used as a path
    # the data- attribute behind the running page header is escaped too
    assert 'data-running="Spring 2024 / &lt;script&gt;' in pages[0].read_text(encoding="utf-8")


def test_index_links_resolve_to_the_written_reports(rendered):
    import urllib.parse

    root = rendered["root"]
    html = (root / "index.html").read_text(encoding="utf-8")
    hrefs = re.findall(r'href="([^"]+)"', html)
    assert len(hrefs) == 3 + 2 * 2 + 4 * 3  # summaries; campaign HTML + PDF; ad name, HTML and PDF links
    for href in hrefs:
        assert "://" not in href and not href.startswith("/")
        target = (root / urllib.parse.unquote(href)).resolve()
        assert target.is_file() and target.is_relative_to(root.resolve()), href


# --- golden tables and HTML -------------------------------------------------------------------------------------


def test_summary_tables_match_their_golden_files(rendered):
    root = rendered["root"]
    assert_golden("summary.csv", (root / "summary.csv").read_text(encoding="utf-8"))
    assert_golden("campaigns.csv", (root / "campaigns.csv").read_text(encoding="utf-8"))
    assert_golden("summary.json", (root / "summary.json").read_text(encoding="utf-8"))


def for_golden(html: str) -> str:
    """The HTML without its charts and with its inline style sheet (templates/report.css, checked apart) as
    a placeholder, so that a golden file holds the page's content and structure only."""
    css = (Path(__file__).resolve().parent.parent / "templates" / "report.css").read_text(encoding="utf-8").strip()
    styles = re.findall(r"<style>(.*?)</style>", html, flags=re.S)
    assert len(styles) == 1 and css in styles[0], "the page must carry report.css inline (self-contained)"
    return re.sub(r"<style>.*?</style>", "<style>/* templates/report.css */</style>", without_charts(html), flags=re.S)


def test_rendered_html_matches_its_golden_files(rendered):
    root = rendered["root"]
    assert_golden("ad_report.html", for_golden(report_paths(root, "Spring 2024", "Hero film")[0].read_text("utf-8")))
    assert_golden("ad_report_small.html", for_golden(report_paths(root, "Spring 2024", "Small")[0].read_text("utf-8")))
    assert_golden("campaign_report.html", for_golden(campaign_paths(root, "Spring 2024")[0].read_text("utf-8")))
    assert_golden("index.html", for_golden((root / "index.html").read_text(encoding="utf-8")))


def test_summary_numbers_are_those_of_the_sql_views(rendered):
    """Every count and share in summary.csv can be recomputed from the database's analyst view."""
    summary = pl.read_csv(rendered["root"] / "summary.csv")
    with rendered["engine"].connect() as conn:
        view = {(csv_cell(r["campaign"]), csv_cell(r["ad"])): r  # names as every CSV writes them (no bidi controls)
                for r in conn.execute(text("SELECT * FROM ad_emotion_summary")).mappings()}
    assert summary.height == len(view) == 4
    for row in summary.iter_rows(named=True):
        sql = view[(row["campaign"], row["ad"])]
        assert (row["images"], row["faces"], row["images_failed"]) == (sql["images"], sql["faces"], sql["images_failed"])
        if row["suppressed"]:
            assert row["share_happy"] is None and row["valence"] is None and row["pct_valence"] is None
            continue
        for e in EMOTIONS:
            assert row[f"count_{e}"] == sql[f"count_{e}"]
            assert row[f"share_{e}"] == pytest.approx(sql[f"share_{e}"], abs=1e-12)
            assert row[f"ci_low_{e}"] <= row[f"share_{e}"] <= row[f"ci_high_{e}"]
        assert row["valence"] == pytest.approx(sql["valence"], abs=1e-12)


# --- what the pages say -------------------------------------------------------------------------------------------


def test_ad_report_has_the_period_time_basis_comparison_and_trend(rendered):
    root = rendered["root"]
    text_ = pdf_text(report_paths(root, "Spring 2024", "Hero film")[1])
    assert "Hero film" in text_ and "Campaign: Spring 2024" in text_
    assert "Images Faces Images with no face Failed images Faces per image 8 19 1 1 2.7" in text_
    assert "Period covered: 2024-05-01 to 2024-05-03 (dated by EXIF capture time for 8 images)" in text_
    assert "VALENCE PERCENTILE RANK 83rd" in text_ and "among 3 ads in the database" in text_
    assert "Wilson" in text_ and "Trend over time" in text_ and "over 3 days" in text_
    assert "Classifier confidence" in text_ and "Mean confidence" in text_
    hostile = pdf_text(report_paths(root, "Spring 2024", HOSTILE)[1])
    assert "dated by file modification time for 3 images" in hostile and "2024-05-01" in hostile
    assert "All faces of this ad date from one day" in hostile


def test_campaign_report_puts_every_ad_side_by_side(rendered):
    root = rendered["root"]
    text_ = pdf_text(campaign_paths(root, "Spring 2024")[1])
    assert "CAMPAIGN REPORT Spring 2024 3 ads, 2 with at least 10 faces" in text_
    assert "Ads Images Faces Images with no face Failed images 3 12 34 1 1" in text_
    assert "Valence by ad" in text_ and "Expression mix by ad" in text_ and "Rankings" in text_
    assert "hidden: fewer than 10 faces (3 found)" in text_
    assert '<script>alert("x")</script>' in text_ and "Hero film" in text_
    html = campaign_paths(root, "Spring 2024")[0].read_text(encoding="utf-8")
    ranked = re.findall(r'<td class="name"><bdi>([^<]*)</bdi></td>', html)
    assert ranked == ["Hero film", "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; evil", "Small"]  # by valence
    assert html.count("<svg") == 3  # campaign distribution, valence by ad, mix by ad


def test_pdfs_have_no_blank_page(rendered, tmp_path):
    """Every page of the ad and campaign PDFs, rendered to PNG with pdftoppm, has ink beside its header/footer."""
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed")
    root = rendered["root"]
    pdfs = [report_paths(root, "Spring 2024", "Hero film")[1], report_paths(root, "Spring 2024", "Small")[1],
            campaign_paths(root, "Spring 2024")[1]]
    for n, pdf in enumerate(pdfs):
        subprocess.run(["pdftoppm", "-r", "30", "-gray", "-png", str(pdf), str(tmp_path / f"p{n}")], check=True)
        pages = sorted(tmp_path.glob(f"p{n}-*.png"))
        assert len(pages) >= 2, pdf
        for page in pages:
            image = Image.open(page).convert("L")
            width, height = image.size
            body = image.crop((0, int(height * 0.1), width, int(height * 0.88)))  # without header and footer
            ink = float((np.asarray(body) < 200).mean())
            # a page holding only a short table (the campaign's three-row "All ads") has ~0.9 % ink; an empty
            # body has none
            assert ink > 0.003, f"{page.name} of {pdf.name} is blank ({ink:.4f})"


def test_pdfs_embed_their_fonts_and_have_no_weasyprint_warnings(rendered):
    from pypdf import PdfReader

    assert rendered["weasyprint"] == [], [r.getMessage() for r in rendered["weasyprint"]]
    for pdf in (report_paths(rendered["root"], "Spring 2024", "Hero film")[1],
                campaign_paths(rendered["root"], "Spring 2024")[1]):
        fonts = {}
        for page in PdfReader(str(pdf)).pages:
            for font in page["/Resources"]["/Font"].values():
                font = font.get_object()
                descriptor = (font["/DescendantFonts"][0].get_object() if "/DescendantFonts" in font else font)
                fonts[font["/BaseFont"]] = descriptor["/FontDescriptor"].get_object()
        assert fonts and all(any(k in d for k in ("/FontFile", "/FontFile2", "/FontFile3")) for d in fonts.values())


def test_methodology_reads_reliability_from_the_manifest(rendered):
    html = report_paths(rendered["root"], "Spring 2024", "Hero film")[0].read_text(encoding="utf-8")
    assert "Model <code>tiny@0123456789ab</code>" in html
    assert "test accuracy 61.2 %" in html and "<td>disgust</td><td class=\"number\">0.31</td>" in squash(html)
    assert "macro-F1 0.55, against FER2013&#39;s original labels (PrivateTest)." in html  # the manifest has no "labels"
    assert "Least reliable classes: disgust (F1 0.26), fear (F1 0.37)" in html
    assert "EU AI Act" in html and "Art. 5(1)(f)" in html and "knowingly agreed" in html
    # unknown models and files that differ from the manifest's are said to be unknown
    known, renamed, other = model_reliability(["tiny@0123456789ab", "tiny@ffffffffffff", "big@0123"], MANIFEST)
    assert known.known and [c.emotion for c in known.classes] == list(EMOTIONS)
    assert not renamed.known and not other.known
    assert other.note == "reliability unknown for this model"
    assert not model_reliability(["tiny@0123456789ab"], None)[0].known
    # a model that answers as the FER+ annotators' majority says its figures are against that majority
    plus = {"default": "tiny", "models": {"tiny": {**MANIFEST["models"]["tiny"], "labels": "ferplus-majority"}}}
    (majority,) = model_reliability(["tiny@0123456789ab"], plus)
    assert majority.labels == "ferplus-majority" and majority.measured_against.startswith("the FER+ annotators' majority")
    assert known.labels == "original" and "original labels" in known.measured_against
    # a file with a logit adjustment says its answers lean towards the rarer expressions, and by how much
    adjusted = {"default": "tiny", "models": {"tiny": {**MANIFEST["models"]["tiny"], "logit_adjust": 0.3}}}
    (tilted,) = model_reliability(["tiny@0123456789ab"], adjusted)
    assert tilted.logit_adjust == 0.3 and "to the power 0.3 (a logit adjustment)" in tilted.tilt
    assert known.logit_adjust == 0.0 and known.tilt == ""
    macros = make_environment().get_template("_macros.html").module
    assert "to the power 0.3 (a logit adjustment)" in str(macros.reliability_tables([tilted]))
    assert "logit adjustment" not in str(macros.reliability_tables([known]))
    # a model with a flip gate says which faces it looked at twice
    gated_manifest = {"default": "tiny", "models": {"tiny": {**MANIFEST["models"]["tiny"],
                                                             "flip_gate": {"below": 0.8, "temperature": 0.6, "bias": None}}}}
    (gated,) = model_reliability(["tiny@0123456789ab"], gated_manifest)
    assert gated.flip_gate == 0.8 and "top probability below 0.8" in gated.second_look
    assert known.flip_gate is None and known.second_look == ""
    assert "top probability below 0.8" in str(macros.reliability_tables([gated]))
    assert "mirror image" not in str(macros.reliability_tables([known]))


def test_trend_days_below_the_minimum_group_size_show_no_valence(rendered):
    summary = json.loads((rendered["root"] / "summary.json").read_text(encoding="utf-8"))
    hero = next(a for a in summary["ads"] if a["ad"] == "Hero film")
    assert [(p["day"], p["faces"]) for p in hero["trend"]] == [("2024-05-01", 11), ("2024-05-02", 5),
                                                              ("2024-05-03", 3)]
    assert hero["trend"][0]["valence"] is not None
    assert hero["trend"][1]["valence"] is None and hero["trend"][2]["shares"] is None
    small = next(a for a in summary["ads"] if a["ad"] == "Small")
    assert small["suppressed"] and small["trend"] == [] and small["confidence"] is None and small["shares"] is None


# --- options: paper, examples, workers ---------------------------------------------------------------------------


def test_letter_paper_and_a_process_pool_give_the_same_reports(rendered, tmp_path):
    from pypdf import PdfReader

    with Session(rendered["engine"]) as session:
        options = ReportOptions(min_faces=10, generated_at=NOW, manifest=MANIFEST, paper="letter", workers=2,
                                statistics=STATISTICS, correction_min_faces=CORRECTION_MIN_FACES)
        written = render_reports(session, tmp_path / "pool", ads=[("Spring 2024", "Hero film"),
                                                                  ("Spring 2024", "Small")], options=options)
    assert written.workers == 2
    pdf = report_paths(tmp_path / "pool", "Spring 2024", "Hero film")[1]
    box = PdfReader(str(pdf)).pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (612, 792)
    a4 = report_paths(rendered["root"], "Spring 2024", "Hero film")[0].read_text(encoding="utf-8")
    letter = report_paths(tmp_path / "pool", "Spring 2024", "Hero film")[0].read_text(encoding="utf-8")
    assert letter == a4.replace("@page { size: A4; }", "@page { size: letter; }")
    # only the campaign of the rendered ads is rendered again; the index covers every ad
    assert [p.parent.name for p in written.campaigns] == [campaign_paths(tmp_path, "Spring 2024")[0].parent.name] * 2
    assert "not rendered" in (tmp_path / "pool" / "index.html").read_text(encoding="utf-8")


def _face_photo(path: Path) -> None:
    image = Image.new("RGB", (200, 160), (240, 240, 240))
    for x in range(60, 140):
        for y in range(30, 130):
            image.putpixel((x, y), (200, 150, 120))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, quality=90)


def test_examples_are_inline_crops_and_missing_images_are_reported(tmp_path):
    engine = make_database(tmp_path / "r.sqlite")
    run_root = tmp_path / "campaigns"
    for i in range(8):
        _face_photo(run_root / "Spring 2024" / "Hero film" / f"img_{i:03d}.jpg")
    (run_root / "Spring 2024" / "Hero film" / "img_004.jpg").unlink()  # moved away since the run
    with Session(engine) as session, session.begin():
        session.execute(update(Run).values(root=str(run_root)))
        session.execute(update(ImageRow).where(ImageRow.path == "Spring 2024/Hero film/img_005.jpg")
                        .values(path="../../outside.jpg"))  # a tampered path must not be followed
    before = sorted(p for p in tmp_path.rglob("*"))
    with Session(engine) as session:
        paths = render_ad_reports(session, tmp_path / "reports", ads=[("Spring 2024", "Hero film")],
                                  generated_at=NOW, manifest=MANIFEST, examples=True)
        plain = render_ad_reports(session, tmp_path / "plain", ads=[("Spring 2024", "Hero film")],
                                  generated_at=NOW, manifest=MANIFEST)
    html = paths[0].read_text(encoding="utf-8")
    crops = re.findall(r'<img src="data:image/jpeg;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(crops) >= 3
    assert "Personal data" in html
    assert "image not available: not readable under the run&#39;s folder" in html
    assert "image not available: its stored path leaves the run&#39;s folder" in html
    assert re.search(r"\d+ examples? could not be read again", html)
    assert "data:image" not in plain[0].read_text(encoding="utf-8") and "Example faces" not in plain[0].read_text("utf-8")
    # crops exist only inside the report: no other new file anywhere
    after = sorted(p for p in tmp_path.rglob("*") if not p.is_relative_to(tmp_path / "reports")
                   and not p.is_relative_to(tmp_path / "plain"))
    assert after == [p for p in before]
    assert sorted(p.name for p in (tmp_path / "reports").rglob("*") if p.is_file()) == sorted(p.name for p in paths)
    engine.dispose()


def test_corrected_shares_lead_where_they_apply_and_raw_shares_say_why_elsewhere(rendered):
    root = rendered["root"]
    hero = pdf_text(report_paths(root, "Spring 2024", "Hero film")[1]).lower()  # card labels are upper case
    assert "valence index, corrected" in hero and "corrected share" in hero and "raw share" in hero
    assert "what it assumes:" in hero and "when not to trust it:" in hero
    hostile = report_paths(root, "Spring 2024", HOSTILE)[0].read_text(encoding="utf-8")
    assert "Raw shares, not corrected for the model&rsquo;s confusions: fewer than 15 faces" in hostile
    assert "Corrected share</th>" not in hostile
    summary = json.loads((root / "summary.json").read_text(encoding="utf-8"))
    by_ad = {a["ad"]: a for a in summary["ads"]}
    assert by_ad["Hero film"]["corrected"]["applied"] and by_ad["Hero film"]["shares"]["happy"] == 12 / 19
    assert by_ad["Small"]["corrected"] is None  # hidden below --min-faces, as every distribution field
    campaign = next(c for c in summary["campaigns"] if c["campaign"] == "Spring 2024")
    assert campaign["corrected"]["method"] == "pacc"
    assert sum(campaign["corrected"]["shares"].values()) == pytest.approx(1.0, abs=1e-5)
