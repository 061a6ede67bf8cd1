"""Time stamps: one rule for turning any stored or given datetime into an aware UTC one."""

from __future__ import annotations

import datetime as dt
from typing import TypeVar

T = TypeVar("T")


def as_utc(value: T) -> T:
    """``value`` as an aware datetime in UTC: a naive datetime is taken as UTC (SQLite hands stored stamps back
    naive), an aware one is converted; anything else (``None``, a date, a string) comes back unchanged."""
    if not isinstance(value, dt.datetime):
        return value
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


def utcnow() -> dt.datetime:
    """Now, aware, in UTC."""
    return dt.datetime.now(dt.timezone.utc)
