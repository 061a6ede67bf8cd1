"""Rows of the results database as polars frames with fixed types: the input of every aggregate.

Face and image rows come from the analyst views ``face_results`` and ``image_results`` (``sql/views.sql``),
so that the numbers computed from them and what analysts query in SQL are the same. The times behind the
trend chart (EXIF capture time, file time) and the folder each run read are not in those views; they come
from one documented query over the tables (``IMAGE_TIMES_SQL``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Optional

import polars as pl
from sqlalchemy import DateTime, Float, Integer, String, column, text
from sqlalchemy.orm import Session

from ..exceptions import ConfigError, ReportError
from ..store.models import PROB_COLUMNS
from ..timeutil import as_utc

__all__ = [
    "AD_KEY",
    "FACE_SCHEMA",
    "IMAGE_SCHEMA",
    "IMAGE_TIMES_SCHEMA",
    "IMAGE_TIMES_SQL",
    "check_ads",
    "load_faces",
    "load_image_times",
    "load_images",
]

log = logging.getLogger(__name__)

#: Columns of ``face_results`` as polars types; also the schema of an empty result.
FACE_SCHEMA: dict[str, pl.DataType] = {
    "campaign": pl.String(),
    "ad": pl.String(),
    "image_path": pl.String(),
    "face_index": pl.Int64(),
    "x": pl.Float64(),
    "y": pl.Float64(),
    "w": pl.Float64(),
    "h": pl.Float64(),
    "detection_score": pl.Float64(),
    "top_emotion": pl.String(),
    **{name: pl.Float64() for name in PROB_COLUMNS},
    "model_id": pl.String(),
    "processed_at": pl.Datetime("us", time_zone="UTC"),
}

#: Columns of ``image_results`` as polars types.
IMAGE_SCHEMA: dict[str, pl.DataType] = {
    "campaign": pl.String(),
    "ad": pl.String(),
    "image_path": pl.String(),
    "status": pl.String(),
    "error": pl.String(),
    "faces": pl.Int64(),
}

#: The columns that name an ad, the grouping key of every per-ad table.
AD_KEY = ("campaign", "ad")
# Above this many (campaign, ad) pairs the filter is applied in polars instead of in the SQL text.
_MAX_SQL_PAIRS = 200


def _sql_type(dtype: pl.DataType):
    # Typed result columns, so that SQLite and PostgreSQL hand back the same Python types.
    if isinstance(dtype, pl.Datetime):
        return DateTime(timezone=True)
    if isinstance(dtype, pl.Int64):
        return Integer()
    if isinstance(dtype, pl.Float64):
        return Float()
    if isinstance(dtype, pl.String):
        return String()
    raise ReportError(f"dtype must be one of Datetime, Int64, Float64, String. Received: dtype={dtype!r}")


def _typed_select(source: str, schema: dict[str, pl.DataType], where: str):
    # source is a view name or one of this module's own subqueries, never user input
    sql_columns = [column(name, _sql_type(dtype)) for name, dtype in schema.items()]
    return text(f"SELECT {', '.join(schema)} FROM {source}{where}").columns(*sql_columns)


def check_ads(ads: Optional[Iterable[tuple[str, str]]]) -> Optional[list[tuple[str, str]]]:
    """The (campaign, ad) pairs of ``ads`` without repeats, in order; None when ``ads`` is None.

    Raises:
        ConfigError: an item is not a pair of strings.
    """
    if ads is None:
        return None
    pairs = []
    for pair in ads:
        if not (
            isinstance(pair, Sequence)
            and not isinstance(pair, str)
            and len(pair) == 2
            and all(isinstance(p, str) for p in pair)
        ):
            raise ConfigError(f"ads must be a list of (campaign, ad) string pairs. Received: ads item={pair!r}")
        pairs.append((pair[0], pair[1]))
    return list(dict.fromkeys(pairs))


def _load_view(session: Session, view: str, schema: dict[str, pl.DataType], ads) -> pl.DataFrame:
    pairs = check_ads(ads)
    if pairs is not None and not pairs:
        return pl.DataFrame(schema=schema)
    where, params = "", {}
    if pairs is not None and len(pairs) <= _MAX_SQL_PAIRS:
        where = " WHERE " + " OR ".join(f"(campaign = :c{i} AND ad = :a{i})" for i in range(len(pairs)))
        for i, (campaign, ad) in enumerate(pairs):
            params[f"c{i}"] = campaign
            params[f"a{i}"] = ad
    rows = session.execute(_typed_select(view, schema, where), params).all()
    columns = dict(zip(schema, zip(*rows))) if rows else {name: () for name in schema}
    data = {
        name: [as_utc(v) for v in values] if isinstance(schema[name], pl.Datetime) else list(values)
        for name, values in columns.items()
    }
    frame = pl.DataFrame(data, schema=schema)
    if pairs is not None and len(pairs) > _MAX_SQL_PAIRS:
        wanted = pl.DataFrame(pairs, schema={"campaign": pl.String(), "ad": pl.String()}, orient="row")
        frame = frame.join(wanted, on=AD_KEY, how="semi")
    return frame


def load_faces(session: Session, *, ads: Optional[Sequence[tuple[str, str]]] = None) -> pl.DataFrame:
    """Return the rows of the ``face_results`` view, one per detected face.

    Args:
        session: an open SQLAlchemy session (SQLite or PostgreSQL); nothing is written.
        ads: optional (campaign, ad) pairs to restrict to; ``None`` reads every ad.

    Returns:
        A frame with the columns and types of ``FACE_SCHEMA`` (``processed_at`` in UTC), sorted by
        campaign, ad, image_path, face_index.
    """
    frame = _load_view(session, "face_results", FACE_SCHEMA, ads)
    return frame.sort(["campaign", "ad", "image_path", "face_index"])


def load_images(session: Session, *, ads: Optional[Sequence[tuple[str, str]]] = None) -> pl.DataFrame:
    """Return the rows of the ``image_results`` view, one per image file (also those without a face).

    Args:
        session: an open SQLAlchemy session; nothing is written.
        ads: optional (campaign, ad) pairs to restrict to; ``None`` reads every ad.

    Returns:
        A frame with the columns and types of ``IMAGE_SCHEMA``, sorted by campaign, ad, image_path.
    """
    frame = _load_view(session, "image_results", IMAGE_SCHEMA, ads)
    return frame.sort(["campaign", "ad", "image_path"])



#: Columns of ``load_image_times`` as polars types.
IMAGE_TIMES_SCHEMA: dict[str, pl.DataType] = {
    "campaign": pl.String(),
    "ad": pl.String(),
    "image_path": pl.String(),
    "status": pl.String(),
    "captured_at": pl.Datetime("us", time_zone="UTC"),
    "mtime_ns": pl.Int64(),
    "processed_at": pl.Datetime("us", time_zone="UTC"),
    "run_root": pl.String(),
}

#: The one query over the tables behind ``load_image_times`` (runs unchanged on SQLite and PostgreSQL):
#: per image, the EXIF capture time (``captured_at``, NULL without EXIF), the file's modification time in
#: nanoseconds since the epoch (``mtime_ns``), the processing time and the folder the run read (``runs.root``).
IMAGE_TIMES_SQL = """(SELECT c.name AS campaign, a.name AS ad, i.path AS image_path, i.status,
        i.captured_at, i.mtime_ns, i.processed_at, r.root AS run_root
    FROM images i
    JOIN ads a ON a.id = i.ad_id
    JOIN campaigns c ON c.id = a.campaign_id
    LEFT JOIN runs r ON r.id = i.run_id) AS image_times"""


def load_image_times(session: Session, *, ads: Optional[Sequence[tuple[str, str]]] = None) -> pl.DataFrame:
    """Return one row per image with its times and the folder its run read (``IMAGE_TIMES_SQL``).

    Args:
        session: an open SQLAlchemy session; nothing is written.
        ads: optional (campaign, ad) pairs to restrict to; ``None`` reads every ad.

    Returns:
        A frame with the columns and types of ``IMAGE_TIMES_SCHEMA`` (times in UTC; ``captured_at`` is the
        camera's wall-clock time tagged UTC, as the EXIF tag has no time zone), sorted by campaign, ad,
        image_path.
    """
    frame = _load_view(session, IMAGE_TIMES_SQL, IMAGE_TIMES_SCHEMA, ads)
    return frame.sort(["campaign", "ad", "image_path"])
