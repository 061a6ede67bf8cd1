"""Tests of emotion_batch.reports: safe names, HTML escaping, PDF text, suppression, no WeasyPrint warnings."""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from emotion_batch.exceptions import ReportError
from emotion_batch.labels import EMOTIONS
from emotion_batch.reports import render_ad_reports, report_paths, safe_filename
from emotion_batch.reports.render import emotion_chart_svg, write_pdf

from . import store_data
from .store_data import results_db

HOSTILE = "<script>alert(1)</script>"
NOW = dt.datetime(2024, 6, 1, 9, 30, tzinfo=dt.timezone.utc)
RESPONSIBLE = (
    "These are apparent facial expressions estimated by a machine-learning model, "
    "not measurements of what people feel."
)


def make_session(path) -> Session:
    return Session(results_db(path))


def add_ad(session: Session, campaign: str, ad: str, images: list[tuple[str, list[str]]]) -> None:
    """``store_data.add_ad`` with these tests' model and confidence (the top emotion at 0.88, the rest 0.02)."""
    store_data.add_ad(session, campaign, ad, images, confidence=0.88, model="cnn@abc123")


@pytest.fixture()
def session(tmp_path):
    session = make_session(tmp_path / "results.db")
    # 12 faces in 4 images + 1 image without a face + 1 unreadable: 6 happy, 4 neutral, 2 surprise.
    add_ad(session, "Spring 2024", HOSTILE, [("ok", ["happy"] * 3), ("ok", ["happy"] * 3), ("ok", ["neutral"] * 4),
                                             ("ok", ["surprise"] * 2), ("no_face", []), ("unreadable", [])])
    add_ad(session, "Spring 2024", "Small", [("ok", ["angry", "angry", "fear"])])
    add_ad(session, "../../evil", "../../evil", [("ok", ["sad"])])
    session.commit()
    yield session
    session.close()


def weasyprint_records(caplog, level=logging.WARNING):
    return [r for r in caplog.records if r.name.startswith("weasyprint") and r.levelno >= level]


def squash(text: str) -> str:
    return re.sub(r"\s+", " ", text)


# --- safe names ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, expected",
    [
        ("Hero", "Hero"),
        ("v1.2-final_cut", "v1.2-final_cut"),
        ("日本語キャンペーン", "日本語キャンペーン"),
        ("Café Ümlaut", None),
        ("Summer Sale", None),
        ("../../evil", None),
        ("a/b\\c", None),
        (".", None),
        ("..", None),
        ("", None),
        (".hidden", None),
        ("CON", None),
        ("\u202eevil\u200f", None),
        (HOSTILE, None),
        ('say "hi"', None),
    ],
)
def test_safe_filename(name, expected):
    safe = safe_filename(name)
    if expected is not None:
        assert safe == expected
        return
    assert re.fullmatch(r".+-[0-9a-f]{12}", safe), safe  # changed, so a hash of the original is appended
    assert safe not in (".", "..") and not safe.startswith(".")
    assert not set(safe) & set("/\\<>\"' \u202e\u200f\x00")
    assert safe.split(".")[0].upper() not in ("CON", "NUL", "AUX", "PRN")


def test_safe_filename_caps_length_in_characters_and_bytes():
    assert len(safe_filename("a" * 500)) <= 100 + 13
    assert len(safe_filename("語" * 300).encode("utf-8")) <= 180 + 13
    assert safe_filename("a" * 500) != safe_filename("a" * 501)


@settings(max_examples=200, deadline=None)
@given(a=st.text(max_size=40), b=st.text(max_size=40))
def test_safe_filenames_are_valid_and_never_collide(a, b):
    for name in (a, b):
        safe = safe_filename(name)
        assert safe and safe not in (".", "..") and not safe.startswith(".")
        assert "/" not in safe and "\x00" not in safe and "\\" not in safe
        assert len(safe.encode("utf-8")) <= 200
    if a != b:
        assert safe_filename(a) != safe_filename(b)


def test_report_paths_stay_inside_reports_dir(tmp_path):
    root = (tmp_path / "reports").resolve()
    html_path, pdf_path = report_paths(root, "../../evil", "../../evil")
    for path in (html_path, pdf_path):
        assert path.resolve().is_relative_to(root)
        assert path.parent.parent == root
    assert html_path.suffix == ".html" and pdf_path.suffix == ".pdf"


def test_report_paths_refuse_a_symlink_out_of_reports_dir(tmp_path):
    root = tmp_path / "reports"
    root.mkdir()
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", root / "Spring")
    with pytest.raises(ReportError, match="inside reports_dir"):
        report_paths(root, "Spring", "Hero")


# --- rendering -----------------------------------------------------------------------------------------------


def test_render_ad_reports_writes_escaped_self_contained_html_and_pdf(session, tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="weasyprint")
    reports_dir = tmp_path / "reports"
    paths = render_ad_reports(session, reports_dir, generated_at=NOW)

    assert len(paths) == 3 * 2
    assert [p.suffix for p in paths] == [".html", ".pdf"] * 3
    for path in paths:
        assert path.is_file() and path.resolve().is_relative_to(reports_dir.resolve())
    assert not list(reports_dir.rglob(".*"))  # no partial files left
    assert weasyprint_records(caplog) == []

    html_path = report_paths(reports_dir, "Spring 2024", HOSTILE)[0]
    html = html_path.read_text(encoding="utf-8")
    assert HOSTILE not in html and "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert RESPONSIBLE in squash(html)
    assert "<svg" in html and 'style="' not in html.split("<svg", 1)[1]
    assert "Dominant apparent expression: <strong>Happy</strong>" in html
    assert "2024-06-01 09:30 UTC" in html and "cnn@abc123" in html
    # self-contained: no external URL, stylesheet or script
    assert not re.search(r'\s(src|href)="(?!#)|url\((?!#)|@import|<link\b', html)

    pdf = html_path.with_suffix(".pdf").read_bytes()
    assert pdf.startswith(b"%PDF")


def test_names_are_shown_without_bidi_controls(session, tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="weasyprint")
    name = "\u202eevil\u202c \u05e9\u05dc\u05d5\u05dd " + "long " * 40
    add_ad(session, "Spring 2024", name, [("ok", ["sad"])])
    html_path, _ = render_ad_reports(session, tmp_path, ads=[("Spring 2024", name)], generated_at=NOW)
    html = html_path.read_text(encoding="utf-8")
    assert "\u202e" not in html and "\u202c" not in html
    assert '<h1 class="long"><bdi>evil \u05e9\u05dc\u05d5\u05dd long' in html
    assert weasyprint_records(caplog) == []


def test_rendering_is_deterministic_for_a_fixed_time(session, tmp_path):
    first = render_ad_reports(session, tmp_path / "a", ads=[("Spring 2024", HOSTILE)], generated_at=NOW)
    second = render_ad_reports(session, tmp_path / "b", ads=[("Spring 2024", HOSTILE)], generated_at=NOW)
    assert first[0].read_text(encoding="utf-8") == second[0].read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def poppler():
    """PDF text comes from pypdf (a test dependency), so no system package is needed."""
    return pytest.importorskip("pypdf")


def pdf_text(path: Path) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() or "" for page in PdfReader(str(path)).pages)


def pdf_pages(path: Path) -> int:
    from pypdf import PdfReader

    return len(PdfReader(str(path)).pages)


def test_pdf_shows_the_ad_name_counts_and_distribution(session, tmp_path, poppler):
    paths = render_ad_reports(session, tmp_path, ads=[("Spring 2024", HOSTILE)], generated_at=NOW)
    text = squash(pdf_text(paths[1]))
    assert HOSTILE in text and "Spring 2024" in text
    assert "Images Faces Images with no face Failed images Faces per image 6 12 1 1 2.4" in text
    assert "Happy (50.0 % of 12 faces)" in text
    assert "n = 12 faces" in text
    assert RESPONSIBLE in text
    pages = pdf_pages(paths[1])
    assert 2 <= pages <= 4  # content, then the methodology appendix on its own page
    assert re.search(rf"\b{pages} ?/ ?{pages}\b", text)  # page numbers in the footer


LIGATURES = re.compile("[\ufb00-\ufb06]")  # ff fi fl ffi ffl ſt st: one glyph standing for several letters


def test_pdf_text_is_the_words_written_whatever_the_font_subsetter(tmp_path, poppler):
    """Ligature glyphs (fi, fl) map back to their letters only when HarfBuzz-subset writes the fonts;
    without libharfbuzz-subset0 a PDF read "O\ufb03ce \ufb01lm". Reports switch ligatures off, so both
    font paths (subset by HarfBuzz, or embedded whole) give searchable, copyable text."""
    from emotion_batch.reports import render as render_module

    session = make_session(tmp_path / "lig.db")
    add_ad(session, "Affluent offline", "Office film", [("ok", ["happy"] * 6), ("ok", ["neutral"] * 6)])
    session.commit()
    subsetter = [True, False] if render_module._can_subset_fonts() else [False]
    for can_subset in subsetter:
        out = tmp_path / f"subset-{can_subset}"
        original = render_module._can_subset_fonts
        render_module._can_subset_fonts = lambda: can_subset
        try:
            pdf = render_ad_reports(session, out, ads=[("Affluent offline", "Office film")], generated_at=NOW)[1]
        finally:
            render_module._can_subset_fonts = original
        texts = {"pypdf": squash(pdf_text(pdf))}
        if shutil.which("pdftotext"):
            texts["pdftotext"] = squash(subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True,
                                                       check=True).stdout)
        for tool, text in texts.items():
            assert "Office film" in text and "Affluent offline" in text, (tool, can_subset, text[:300])
            assert "confidence" in text.lower(), (tool, can_subset)
            assert not LIGATURES.search(text), (tool, can_subset, sorted(set(LIGATURES.findall(text))))
    session.close()


def test_small_ads_show_counts_but_hide_the_distribution(session, tmp_path, poppler, caplog):
    caplog.set_level(logging.DEBUG, logger="weasyprint")
    html_path, pdf_path = render_ad_reports(session, tmp_path, ads=[("Spring 2024", "Small")], min_faces=10)
    html = html_path.read_text(encoding="utf-8")
    text = squash(pdf_text(pdf_path))
    for content in (squash(html), text):
        assert "fewer than 10 faces (3 found)" in content
        assert "Dominant apparent expression" not in content
        assert "Angry" not in content and "66.7" not in content
    assert "<svg" not in html
    assert "6 12" not in text and "1 3 0 0" in text  # images, faces, no face, failed
    assert weasyprint_records(caplog) == []

    shown = render_ad_reports(session, tmp_path / "low", ads=[("Spring 2024", "Small")], min_faces=3)
    assert "Angry (66.7 % of 3 faces)" in squash(pdf_text(shown[1]))


def test_ads_without_images_are_skipped_with_a_warning(session, tmp_path, caplog):
    paths = render_ad_reports(session, tmp_path, ads=[("Spring 2024", "Nope"), ["Spring 2024", "Small"]])
    assert [p.name for p in paths] == ["Small.html", "Small.pdf"]
    assert any("Nope" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert render_ad_reports(session, tmp_path / "none", ads=[("Spring 2024", "Nope")]) == []


def test_templates_dir_overrides_the_shipped_templates(session, tmp_path):
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "ad_report.html").write_text("<p>{{ data.ad }} has {{ data.faces }} faces</p>", encoding="utf-8")
    html_path, pdf_path = render_ad_reports(session, tmp_path / "out", ads=[("Spring 2024", "Small")],
                                            templates_dir=templates)
    assert html_path.read_text(encoding="utf-8") == "<p>Small has 3 faces</p>"
    with pytest.raises(ReportError, match="ad_report.html"):
        render_ad_reports(session, tmp_path / "out", templates_dir=tmp_path)


def test_pdf_fetches_data_urls_only(tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="weasyprint")
    secret = tmp_path / "secret.svg"
    secret.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>', encoding="utf-8")
    data_url = "data:image/svg+xml;utf8,%3Csvg xmlns='http://www.w3.org/2000/svg' width='4' height='4'/%3E"
    write_pdf(f'<p>ok</p><img src="{data_url}">', tmp_path / "ok.pdf", base_url=tmp_path)
    assert weasyprint_records(caplog) == []
    write_pdf(f'<img src="{secret.as_uri()}"><img src="relative.svg">', tmp_path / "no.pdf", base_url=tmp_path)
    refused = [r.getMessage() for r in weasyprint_records(caplog)]
    assert len(refused) == 2 and all("disallowed protocol" in m for m in refused), refused


def test_chart_is_inline_svg_without_css():
    svg = emotion_chart_svg({e: 1 / 7 for e in EMOTIONS}, highlight="sad")
    assert svg.startswith("<svg ") and svg.rstrip().endswith("</svg>")
    assert "<?xml" not in svg and "<style" not in svg and 'style="' not in svg and "<metadata" not in svg
    assert "Surprise" in svg and "14.3 %" in svg  # text stays text (svg.fonttype none)
    assert svg.count('fill="#1f4e79"') == 1  # the highlighted bar


def test_importing_reports_loads_no_heavy_library():
    code = (
        "import sys, emotion_batch.reports, emotion_batch.aggregate;"
        "print(sorted(m for m in ('weasyprint', 'matplotlib', 'tensorflow') if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env)
    assert out.stdout.strip() == "[]"


def test_pdf_without_harfbuzz_subset_embeds_full_fonts_quietly(session, tmp_path, poppler, caplog, monkeypatch):
    import emotion_batch.reports.render as render

    caplog.set_level(logging.DEBUG, logger="weasyprint")
    monkeypatch.setattr(render, "_can_subset_fonts", lambda: False)
    paths = render_ad_reports(session, tmp_path, ads=[("Spring 2024", HOSTILE)], generated_at=NOW)
    assert paths[1].read_bytes().startswith(b"%PDF")
    assert HOSTILE in squash(pdf_text(paths[1]))
    assert weasyprint_records(caplog) == []


def test_charts_escape_names_and_never_share_ids():
    from emotion_batch.reports.charts import confidence_chart_svg, mix_chart_svg, valence_chart_svg

    names = [HOSTILE, 'say "hi" & <b>', "x" * 200]
    valence_svg = valence_chart_svg(names, [0.5, 0.0, -0.25], [(0.2, 0.7), (-0.3, 0.3), (-0.5, 0.1)], reference=0.1)
    mix_svg = mix_chart_svg(names, [{e: 1 / 7 for e in EMOTIONS}] * 3)
    for svg in (valence_svg, mix_svg):
        assert "<script" not in svg and "<b>" not in svg and "&lt;script&gt;" in svg
        assert "x" * 30 not in svg  # long names are shortened on the axis (tables show them in full)
    charts = [valence_svg, mix_svg, confidence_chart_svg([(0.1 * i, 0.1 * i + 0.1, i) for i in range(1, 10)]),
              emotion_chart_svg({e: 1 / 7 for e in EMOTIONS}, intervals={e: (0.1, 0.2) for e in EMOTIONS},
                                reference={e: 0.1 for e in EMOTIONS})]
    ids = [set(re.findall(r'\sid="([^"]+)"', svg)) for svg in charts]
    for i, first in enumerate(ids):
        assert first, "every chart defines ids"
        for second in ids[i + 1 :]:
            assert not first & second  # one page holds several charts: no id may repeat
    for svg, own in zip(charts, ids):  # every reference points at an id of its own chart
        assert set(re.findall(r'#([A-Za-z_][\w.-]*)\)', svg)) <= own


def test_a_broken_template_is_a_report_error(session, tmp_path):
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "ad_report.html").write_text("<p>{{ data.no_such_field }}</p>", encoding="utf-8")
    with pytest.raises(ReportError, match="template failed.*no_such_field"):
        render_ad_reports(session, tmp_path / "out", ads=[("Spring 2024", "Small")], templates_dir=templates)
