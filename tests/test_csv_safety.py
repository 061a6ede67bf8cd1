"""Every CSV we write is safe to open in a spreadsheet: no cell is run as a formula (OWASP "CSV injection"),
no name carries bidi controls; the Excel export follows the same rule with text-typed cells."""

from __future__ import annotations

import csv
import datetime as dt

import pytest
from sqlalchemy.orm import Session

from emotion_batch.exports import export_rows
from emotion_batch.reports import ReportOptions, render_reports
from emotion_batch.safe_text import FORMULA_PREFIXES, csv_cell
from emotion_batch.store.session import init_db, make_engine

from .store_data import populate

#: Names that Excel would run as formulas, and one with a right-to-left override.
FORMULAS = ["=1+1", "+SUM(1,2)", "@SUM(1+1)", "-2+3", "\t=1+2", "\r=1+2", '=HYPERLINK("http://x","y")']
RTL = "evil\u202etxt.exe"


def test_the_rule_quotes_formula_starts_and_drops_bidi_controls():
    assert set(FORMULA_PREFIXES) == {"=", "+", "-", "@", "\t", "\r"}
    for name in FORMULAS:
        assert csv_cell(name) == "'" + name
    assert csv_cell(RTL) == "eviltxt.exe"
    assert csv_cell("\u202e=1+1") == "'=1+1"  # the control hid the formula: dropped first, then quoted
    assert [csv_cell(v) for v in ("Spring 2024", "a=b", -2, 1.5, None)] == ["Spring 2024", "a=b", -2, 1.5, None]


@pytest.fixture()
def hostile_db(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.sqlite'}"
    engine = make_engine(url)
    init_db(engine)
    plan = {(name, FORMULAS[-1 - i]): [("ok", ["happy"], 0), ("unreadable", [], 1)] for i, name in enumerate(FORMULAS)}
    plan[(RTL, "ad")] = [("ok", ["sad"], 0)]
    with Session(engine) as session, session.begin():
        populate(session, plan=plan)
    yield engine
    engine.dispose()


def _cells(path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as handle:
        return [cell for row in csv.reader(handle) for cell in row]


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _assert_safe(cells: list[str]) -> None:
    assert cells
    for cell in cells:
        assert _is_number(cell) or not cell.startswith(FORMULA_PREFIXES), cell  # -0.25 is a number, not text
        assert "\u202e" not in cell, cell
    for name in FORMULAS:
        assert "'" + name in cells, name
    assert "eviltxt.exe" in cells


@pytest.mark.parametrize("dataset", ["faces", "images", "failed-images", "ad-summary", "campaign-summary"])
def test_export_csv_cells_are_never_formulas(hostile_db, tmp_path, dataset):
    out = tmp_path / "out.csv"
    with Session(hostile_db) as session:
        export_rows(session, dataset, str(out))
    cells = _cells(out)
    if dataset == "failed-images":  # the RTL campaign has no failed image
        cells.append("eviltxt.exe")
    _assert_safe(cells)


def test_summary_and_campaign_csvs_are_never_formulas(hostile_db, tmp_path):
    with Session(hostile_db) as session:
        render_reports(session, tmp_path / "reports", ads=[], options=ReportOptions(
            min_faces=1, generated_at=dt.datetime(2024, 6, 1, tzinfo=dt.timezone.utc), workers=0))
    for name in ("summary.csv", "campaigns.csv"):
        _assert_safe(_cells(tmp_path / "reports" / name))


def test_excel_cells_that_look_like_formulas_are_text(hostile_db, tmp_path):
    from openpyxl import load_workbook

    with Session(hostile_db) as session:
        export_rows(session, "ad-summary", str(tmp_path / "a.xlsx"))
    sheet = load_workbook(tmp_path / "a.xlsx").active
    cells = [c for row in sheet.iter_rows(min_row=2) for c in row if isinstance(c.value, str)]
    names = {c.value for c in cells}
    assert set(FORMULAS) - {"\r=1+2"} <= names and "eviltxt.exe" in names  # the XML keeps no bare CR
    assert all(c.data_type == "s" for c in cells if c.value.startswith(FORMULA_PREFIXES))
