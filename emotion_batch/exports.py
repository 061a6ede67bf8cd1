"""Data exports: the rows of an analyst view, filtered, streamed into CSV, Parquet or Excel.

Rows come from the database in chunks (a server-side cursor on PostgreSQL), and each chunk is written
before the next is read, so exporting a million faces holds one chunk in memory, never the whole table.
The file is written under a ``.part`` name and renamed when complete. Times are UTC.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import BigInteger, Date, DateTime, Float, Integer, Numeric, String, Text
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeDecorator

from .exceptions import ConfigError
from .safe_text import csv_cell, looks_like_formula, without_bidi
from .timeutil import as_utc
from .store.queries import DATASETS, Filters, dataset_select

log = logging.getLogger(__name__)

FORMATS = ("csv", "parquet", "xlsx")
#: Rows of one Excel worksheet, the header included; longer exports continue on "<name> (2)", ...
EXCEL_MAX_ROWS = 1_048_576
KINDS = ("str", "int", "float", "datetime", "date")


@dataclass(frozen=True)
class ExportResult:
    """What ``export_rows`` wrote."""

    dataset: str
    path: str
    format: str
    rows: int
    columns: tuple[str, ...]
    sheets: int = 1

    def as_dict(self) -> dict:
        return {"dataset": self.dataset, "path": self.path, "format": self.format, "rows": self.rows,
                "columns": list(self.columns), "sheets": self.sheets}


def format_for(path: str, fmt: str | None = None) -> str:
    """The format named, or the one the file extension says (``.csv``, ``.parquet``/``.pq``, ``.xlsx``).

    Raises:
        ConfigError: neither names one of ``FORMATS``.
    """
    if fmt is not None:
        if fmt not in FORMATS:
            raise ConfigError(f"format must be one of {list(FORMATS)}. Received: format={fmt!r}")
        return fmt
    if path == "-":
        return "csv"
    suffix = Path(path).suffix.lower()
    by_suffix = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".xlsx": "xlsx"}
    if suffix not in by_suffix:
        raise ConfigError(f"out must end in one of {sorted(by_suffix)} (or pass a format among {list(FORMATS)}). "
                          f"Received: out={path!r}")
    return by_suffix[suffix]


def _kind(sql_type) -> str:
    if isinstance(sql_type, TypeDecorator):
        sql_type = sql_type.impl
    if isinstance(sql_type, DateTime):
        return "datetime"
    if isinstance(sql_type, Date):
        return "date"
    if isinstance(sql_type, (Integer, BigInteger)):
        return "int"
    if isinstance(sql_type, (Float, Numeric)):
        return "float"
    if isinstance(sql_type, (String, Text)):
        return "str"
    raise ConfigError(f"column type must map to one of {list(KINDS)}. Received: type={sql_type!r}")


class _CsvWriter:
    def __init__(self, path: str, columns: Sequence[str], kinds: Sequence[str]) -> None:
        self.handle = sys.stdout if path == "-" else open(path, "w", newline="", encoding="utf-8")
        self.writer = csv.writer(self.handle)
        self.writer.writerow(columns)
        self.sheets = 1

    @staticmethod
    def _value(value):
        if isinstance(value, dt.datetime):
            return as_utc(value).isoformat()
        if isinstance(value, dt.date):
            return value.isoformat()
        return csv_cell(value)  # text: never a formula (safe_text); None is written as an empty field

    def write(self, rows) -> None:
        self.writer.writerows([self._value(v) for v in row] for row in rows)

    def close(self) -> None:
        if self.handle is not sys.stdout:
            self.handle.close()
        else:
            self.handle.flush()


class _ParquetWriter:
    def __init__(self, path: str, columns: Sequence[str], kinds: Sequence[str]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        types = {"str": pa.string(), "int": pa.int64(), "float": pa.float64(),
                 "datetime": pa.timestamp("us", tz="UTC"), "date": pa.date32()}
        self.pa = pa
        self.schema = pa.schema([(name, types[kind]) for name, kind in zip(columns, kinds)])
        self.kinds = list(kinds)
        self.writer = pq.ParquetWriter(path, self.schema, compression="zstd")
        self.sheets = 1

    def write(self, rows) -> None:
        if not rows:
            return
        columns = list(zip(*rows))
        arrays = []
        for values, field, kind in zip(columns, self.schema, self.kinds):
            if kind == "datetime":
                values = [as_utc(v) for v in values]
            arrays.append(self.pa.array(values, type=field.type))
        self.writer.write_table(self.pa.Table.from_arrays(arrays, schema=self.schema))

    def close(self) -> None:
        self.writer.close()


class _XlsxWriter:
    """openpyxl in write-only mode (rows go to a temporary file, not a tree in memory)."""

    def __init__(self, path: str, columns: Sequence[str], kinds: Sequence[str], *, title: str,
                 max_rows: int = EXCEL_MAX_ROWS) -> None:
        from openpyxl import Workbook
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

        self.path = path
        self.columns = list(columns)
        self.title = title[:31]
        self.max_rows = max_rows
        self.book = Workbook(write_only=True)
        self.cell = WriteOnlyCell
        self.illegal = ILLEGAL_CHARACTERS_RE
        self.sheets = 0
        self._new_sheet()

    def _new_sheet(self) -> None:
        self.sheets += 1
        name = self.title if self.sheets == 1 else f"{self.title[:25]} ({self.sheets})"
        self.sheet = self.book.create_sheet(title=name)
        self.sheet.append(self.columns)
        self.used = 1

    def _value(self, value):
        if isinstance(value, dt.datetime):
            return as_utc(value).replace(tzinfo=None)  # Excel has no time zones: UTC wall time
        if isinstance(value, str):
            value = without_bidi(self.illegal.sub("", value))
            if looks_like_formula(value):  # typed as text, never a formula (the rule of safe_text)
                cell = self.cell(self.sheet, value=value)
                cell.data_type = "s"
                return cell
        return value

    def write(self, rows) -> None:
        for row in rows:
            if self.used >= self.max_rows:
                self._new_sheet()
            self.sheet.append([self._value(v) for v in row])
            self.used += 1

    def close(self) -> None:
        self.book.save(self.path)


def export_rows(
    session: Session,
    dataset: str,
    out: str,
    *,
    fmt: str | None = None,
    filters: Filters = Filters(),
    chunk_rows: int = 10_000,
    progress: Callable[[int], None] | None = None,
    excel_max_rows: int = EXCEL_MAX_ROWS,
) -> ExportResult:
    """Stream the rows of one dataset into a file.

    Args:
        session: an open session; nothing is written to the database.
        dataset: one of ``DATASETS`` (faces, images, failed-images, ad-summary, campaign-summary, daily-trend,
            share-estimates, videos, video-frames, second-trace).
        out: the file to write, or ``-`` for CSV on stdout.
        fmt: one of ``FORMATS``; from the extension of ``out`` when None.
        filters: campaigns, ads and a UTC time range.
        chunk_rows: rows fetched and written at a time.
        progress: called with the number of rows written since its last call.
        excel_max_rows: rows per worksheet, the header included (Excel's limit; smaller in tests).

    Returns:
        What was written.

    Raises:
        ConfigError: an unknown dataset or format, or a bad filter.
    """
    fmt = format_for(out, fmt)
    if fmt != "csv" and out == "-":
        raise ConfigError(f"out '-' (stdout) works for csv only. Received: format={fmt!r}")
    if chunk_rows < 1:
        raise ConfigError(f"chunk_rows must be positive. Received: chunk_rows={chunk_rows!r}")
    statement = dataset_select(dataset, filters)
    columns = tuple(c.name for c in statement.selected_columns)
    kinds = [_kind(c.type) for c in statement.selected_columns]
    target = out if out == "-" else str(Path(out).with_name(Path(out).name + ".part"))
    if out != "-":
        Path(out).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        writer = _CsvWriter(target, columns, kinds)
    elif fmt == "parquet":
        writer = _ParquetWriter(target, columns, kinds)
    elif fmt == "xlsx":
        writer = _XlsxWriter(target, columns, kinds, title=dataset, max_rows=excel_max_rows)
    else:
        raise ConfigError(f"format must be one of {list(FORMATS)}. Received: format={fmt!r}")
    rows = 0
    try:
        result = session.execute(statement.execution_options(stream_results=True, yield_per=chunk_rows))
        for chunk in result.partitions(chunk_rows):
            writer.write(chunk)
            rows += len(chunk)
            if progress:
                progress(len(chunk))
        writer.close()
    except BaseException:
        if out != "-":
            try:
                writer.close()
            except Exception:  # noqa: BLE001 - the first error is the one to report
                pass
            Path(target).unlink(missing_ok=True)
        raise
    if out != "-":
        os.replace(target, out)
    log.info("exported %d %s rows to %s (%s)", rows, dataset, out, fmt)
    return ExportResult(dataset, out, fmt, rows, columns, writer.sheets)


__all__ = ["DATASETS", "EXCEL_MAX_ROWS", "ExportResult", "FORMATS", "Filters", "export_rows", "format_for"]
