"""How the store names a database and a database error in one-line messages (no password, no traceback)."""

from __future__ import annotations

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError


def safe_url(url) -> str:
    """The URL (a string or a SQLAlchemy ``URL``) with its password hidden, for messages."""
    try:
        return make_url(str(url)).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable URL>"


def db_reason(exc: SQLAlchemyError) -> str:
    """The first line of the driver's own message (or of SQLAlchemy's, where there is none)."""
    orig = getattr(exc, "orig", None)
    return str(orig or exc).strip().splitlines()[0]
