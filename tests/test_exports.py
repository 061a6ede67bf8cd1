"""`emotion-batch export`: CSV, Parquet and Excel files with the rows of the views, filtered and streamed."""

from __future__ import annotations

import csv
import datetime as dt
import json
import tracemalloc

import pytest
from click.testing import CliRunner
from sqlalchemy import insert
from sqlalchemy.orm import Session

from emotion_batch.cli import DATASET_CHOICES, cli
from emotion_batch.exceptions import ConfigError
from emotion_batch.exports import DATASETS, EXCEL_MAX_ROWS, export_rows
from emotion_batch.labels import EMOTIONS
from emotion_batch.store.models import Ad, Campaign, FaceRow, ImageRow
from emotion_batch.store.queries import Filters, dataset_select, parse_when
from emotion_batch.store.session import create_tables, init_db, make_engine

from .store_data import T0, assert_rows_equal, populate

UTC = dt.timezone.utc


@pytest.fixture()
def filled(db_url):
    engine = make_engine(db_url)
    init_db(engine)
    with Session(engine) as session, session.begin():
        populate(session)
    yield engine, db_url
    engine.dispose()


def _expected(engine, dataset, filters=Filters()):
    with Session(engine) as session:
        return [dict(r) for r in session.execute(dataset_select(dataset, filters)).mappings()]


def _read_csv(path):
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return rows


def _typed(rows, like):
    """CSV text back to the types of ``like`` (the rows the select returns)."""
    out = []
    for row in rows:
        typed = {}
        for name, value in row.items():
            sample = next((r[name] for r in like if r[name] is not None), None)
            if value == "":
                typed[name] = None
            elif isinstance(sample, bool):
                typed[name] = value == "True"
            elif isinstance(sample, int):
                typed[name] = int(value)
            elif isinstance(sample, float):
                typed[name] = float(value)
            elif isinstance(sample, dt.datetime):
                typed[name] = dt.datetime.fromisoformat(value)
            elif isinstance(sample, dt.date):
                typed[name] = dt.date.fromisoformat(value)
            else:
                typed[name] = value
        out.append(typed)
    return out


def test_cli_dataset_choices_are_the_library_datasets():
    assert DATASET_CHOICES == DATASETS


@pytest.mark.parametrize("fmt", ["csv", "parquet", "xlsx"])
def test_faces_export_holds_every_face_in_each_format(filled, tmp_path, fmt):
    engine, _ = filled
    out = tmp_path / f"faces.{fmt}"
    with Session(engine) as session:
        result = export_rows(session, "faces", str(out), chunk_rows=7)
    expected = _expected(engine, "faces")
    assert result.rows == len(expected) > 7 and result.format == fmt and out.is_file()
    assert not (tmp_path / f"faces.{fmt}.part").exists()
    keys = ["campaign", "ad", "image_path", "face_index"]
    if fmt == "csv":
        rows = _typed(_read_csv(out), expected)
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(out)
        assert str(table.schema.field("processed_at").type) == "timestamp[us, tz=UTC]"
        assert str(table.schema.field("face_index").type) == "int64"
        rows = table.to_pylist()
    else:
        from openpyxl import load_workbook

        sheet = load_workbook(out, read_only=True)["faces"]
        values = list(sheet.values)
        rows = [dict(zip(values[0], v)) for v in values[1:]]
        for row in rows:  # Excel has no time zones: the file holds UTC wall time
            row["processed_at"] = row["processed_at"].replace(tzinfo=UTC)
    assert list(rows[0]) == list(expected[0])
    assert_rows_equal(rows, expected, keys=keys, rel=1e-12)


@pytest.mark.parametrize("dataset", ["ad-summary", "campaign-summary", "daily-trend", "failed-images", "images"])
def test_summary_exports_equal_their_selects(filled, tmp_path, dataset):
    engine, _ = filled
    import pyarrow.parquet as pq

    with Session(engine) as session:
        export_rows(session, dataset, str(tmp_path / "x.parquet"))
    expected = _expected(engine, dataset)
    rows = pq.read_table(tmp_path / "x.parquet").to_pylist()
    keys = [k for k in ("campaign", "ad", "day", "image_path") if k in expected[0]]
    assert_rows_equal(rows, expected, keys=keys, rel=1e-12)


def test_filters_select_campaign_ad_and_utc_days(filled, tmp_path):
    engine, _ = filled
    filters = Filters.from_options(campaigns=["summer"], ads=["ad_one"], since="2024-05-02", until="2024-05-03")
    with Session(engine) as session:
        export_rows(session, "faces", str(tmp_path / "f.csv"), filters=filters)
    rows = _read_csv(tmp_path / "f.csv")
    assert rows and {(r["campaign"], r["ad"]) for r in rows} == {("summer", "ad_one")}
    days = {dt.datetime.fromisoformat(r["processed_at"]).date().isoformat() for r in rows}
    assert days <= {"2024-05-02", "2024-05-03"} and len(days) == 2
    everything = _expected(engine, "faces")
    assert len(rows) == sum(1 for r in everything if r["campaign"] == "summer" and r["ad"] == "ad_one"
                            and dt.datetime(2024, 5, 2, tzinfo=UTC) <= r["processed_at"] < dt.datetime(2024, 5, 4, tzinfo=UTC))


def test_excel_continues_on_a_new_worksheet_past_the_row_limit(filled, tmp_path):
    engine, _ = filled
    assert EXCEL_MAX_ROWS == 1_048_576
    with Session(engine) as session:
        result = export_rows(session, "faces", str(tmp_path / "f.xlsx"), excel_max_rows=11, chunk_rows=4)
    from openpyxl import load_workbook

    book = load_workbook(tmp_path / "f.xlsx", read_only=True)
    n = len(_expected(engine, "faces"))
    assert result.sheets == len(book.sheetnames) == -(-n // 10)
    assert book.sheetnames[:2] == ["faces", "faces (2)"]
    rows = [row for name in book.sheetnames for row in list(book[name].values)[1:]]
    assert len(rows) == n and all(list(book[name].values)[0][0] == "campaign" for name in book.sheetnames)


def test_excel_text_is_never_a_formula(db_url, tmp_path):
    engine = make_engine(db_url)
    init_db(engine)
    with Session(engine) as session, session.begin():
        populate(session, plan={("=HYPERLINK(\"http://x\")", "ad"): [("unreadable", [], 0)]})
        export_rows(session, "failed-images", str(tmp_path / "f.xlsx"))
    from openpyxl import load_workbook

    cell = load_workbook(tmp_path / "f.xlsx")["failed-images"]["A2"]
    assert cell.data_type == "s" and cell.value.startswith("=HYPERLINK")
    engine.dispose()


def test_bad_format_dataset_and_dates_are_clear_errors(filled, tmp_path):
    engine, _ = filled
    with Session(engine) as session:
        with pytest.raises(ConfigError, match=r"out must end in one of .*Received: out="):
            export_rows(session, "faces", str(tmp_path / "faces.txt"))
        with pytest.raises(ConfigError, match=r"dataset must be one of \[.*'faces'.*Received: dataset='face'"):
            export_rows(session, "face", str(tmp_path / "faces.csv"))
        with pytest.raises(ConfigError, match="stdout"):
            export_rows(session, "faces", "-", fmt="parquet")
    with pytest.raises(ConfigError, match="since must be a date YYYY-MM-DD"):
        Filters.from_options(since="May 1st")
    with pytest.raises(ConfigError, match="since must be before until"):
        Filters.from_options(since="2024-05-03", until="2024-05-01")
    assert parse_when("2024-05-01", name="until", end=True) == dt.datetime(2024, 5, 2, tzinfo=UTC)
    assert parse_when("2024-05-01T10:00+02:00", name="since") == dt.datetime(2024, 5, 1, 8, tzinfo=UTC)


def test_failed_export_leaves_no_file(filled, tmp_path, monkeypatch):
    engine, _ = filled
    import emotion_batch.exports as exports

    def broken(self, rows):
        raise RuntimeError("disk full")

    monkeypatch.setattr(exports._CsvWriter, "write", broken)
    out = tmp_path / "out"
    with Session(engine) as session, pytest.raises(RuntimeError, match="disk full"):
        export_rows(session, "faces", str(out / "f.csv"))
    assert list(out.iterdir()) == []


def _many_faces(session, n: int) -> None:
    campaign = session.execute(insert(Campaign).values(name="big", created_at=T0).returning(Campaign.id)).scalar_one()
    ad = session.execute(insert(Ad).values(campaign_id=campaign, name="ad", created_at=T0).returning(Ad.id)).scalar_one()
    images = [{"ad_id": ad, "path": f"big/ad/{i:06d}.jpg", "size_bytes": 1, "mtime_ns": 0, "status": "ok",
               "faces_count": 1, "processed_at": T0} for i in range(n)]
    session.execute(insert(ImageRow), images)
    first = session.query(ImageRow.id).order_by(ImageRow.id).first()[0]
    probs = {f"p_{e}": 1 / 7 for e in EMOTIONS}
    faces = [{"image_id": first + i, "face_index": 0, "x": 1.0, "y": 2.0, "w": 3.0, "h": 4.0, "detection_score": 0.9,
              "top_emotion": "neutral", "model_id": "m@1", **probs} for i in range(n)]
    for start in range(0, n, 10_000):
        session.execute(insert(FaceRow), faces[start:start + 10_000])


def test_csv_export_streams_in_chunks_instead_of_loading_every_row(tmp_path):
    """50,000 faces written with a Python-heap peak far below what holding them all takes."""
    engine = make_engine(f"sqlite:///{tmp_path / 'big.sqlite'}")
    create_tables(engine)
    with Session(engine) as session, session.begin():
        _many_faces(session, 50_000)
    chunks = []
    with Session(engine) as session:
        tracemalloc.start()
        result = export_rows(session, "faces", str(tmp_path / "f.csv"), chunk_rows=2_000,
                             progress=chunks.append)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    engine.dispose()
    assert result.rows == 50_000 and set(chunks) == {2_000}
    # one row as Python objects takes ~2 KB (20 values); all of them would be ~100 MB
    assert peak < 15 * 2**20, f"peak {peak / 2**20:.1f} MiB"


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_postgresql_export_reads_through_a_server_side_cursor(filled, tmp_path):
    engine, _ = filled
    open_cursors = []
    with Session(engine) as session:

        def progress(n):  # pg_cursors lists this session's cursors: ask on the export's own connection
            open_cursors.append(session.connection().exec_driver_sql("SELECT count(*) FROM pg_cursors").scalar())

        export_rows(session, "faces", str(tmp_path / "f.csv"), chunk_rows=5, progress=progress)
    assert len(open_cursors) > 3 and min(open_cursors) >= 1


def test_export_data_cli(filled, tmp_path):
    _, url = filled
    runner = CliRunner()
    out = tmp_path / "ads.xlsx"
    result = runner.invoke(cli, ["export", "ad-summary", "-o", str(out), "--db", url, "--campaign", "summer",
                                 "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["rows"] == 3 and info["format"] == "xlsx" and "valence" in info["columns"] and out.is_file()
    stdout = runner.invoke(cli, ["export", "failed-images", "-o", "-", "--db", url, "-q"])
    assert stdout.exit_code == 0 and stdout.output.splitlines()[0].startswith("campaign,ad,image_path,status,error")
    assert len(stdout.output.splitlines()) == 1 + 3
    bad = runner.invoke(cli, ["export", "faces", "-o", str(tmp_path / "f.txt"), "--db", url])
    assert bad.exit_code == 1 and "out must end in one of" in bad.output
    empty = runner.invoke(cli, ["export", "faces", "-o", str(tmp_path / "f.csv"), "--db",
                                f"sqlite:///{tmp_path / 'none.sqlite'}"])
    assert empty.exit_code == 1 and "emotion-batch run ROOT" in empty.output


def test_model_export_and_data_export_are_separate_commands():
    result = CliRunner().invoke(cli, ["export-model", "--help"])
    assert result.exit_code == 0 and "--out" in result.output and "TFLite" in result.output
    data = CliRunner().invoke(cli, ["export", "--help"])
    assert data.exit_code == 0 and "Parquet" in data.output and "--since" in data.output
