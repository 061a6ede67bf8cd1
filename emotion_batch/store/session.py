"""Engines, schema creation, and the one-run-at-a-time lock.

The runner owns sessions and transactions; functions in ``repository.py`` take a session and never commit.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError

from ..assets import asset_dir
from ..exceptions import ConfigError, DatabaseError, RunLockedError
from .messages import db_reason, safe_url
from .models import Base

log = logging.getLogger(__name__)

DEFAULT_DB = "sqlite:///emotion_batch.sqlite"
#: PostgreSQL advisory lock key of emotion-batch runs ("emobatch" in ASCII, truncated to 63 bits).
PG_LOCK_KEY = 0x656D6F6261746368 & 0x7FFFFFFFFFFFFFFF


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def make_engine(url: str) -> Engine:
    """Create an engine for any SQLAlchemy URL; SQLite files get WAL, foreign keys and a busy timeout.

    Raises:
        ConfigError: the URL cannot be parsed or its driver is not installed.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"--db must be an SQLAlchemy URL such as sqlite:///results.sqlite. Received: db={url!r}") from exc
    kwargs = {}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            try:
                Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DatabaseError(
                    f"Cannot create the folder of the SQLite database ({exc.strerror or exc}). Received: db={url!r}"
                ) from exc
    else:
        kwargs["pool_pre_ping"] = True
    try:
        engine = create_engine(parsed, **kwargs)
    except (ImportError, ArgumentError) as exc:
        raise ConfigError(f"No driver for this database ({exc}). Received: db={safe_url(url)!r}") from exc
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def view_statements(dialect: str | None = None) -> list[str]:
    """The ``DROP VIEW``/``CREATE VIEW`` statements of ``sql/views.sql``, comments stripped.

    With a dialect name (``sqlite``, ``postgresql``) the statements of ``sql/views.<dialect>.sql`` follow:
    the views whose SQL differs between the engines.
    """
    files = ["views.sql"] + ([f"views.{dialect}.sql"] if dialect else [])
    statements = []
    for name in files:
        path = asset_dir("sql") / name
        if not path.is_file():
            raise ConfigError(f"dialect must be one of ['sqlite', 'postgresql'] or None. Received: dialect={dialect!r}")
        sql = re.sub(r"--[^\n]*", "", path.read_text(encoding="utf-8"))
        statements += [s.strip() for s in sql.split(";") if s.strip()]
    return statements


def init_db(engine: Engine) -> None:
    """Make the database ready for the batch job through the Alembic migrations (``store/schema.py``).

    An empty database gets the schema at the newest revision (``upgrade head``); a current one is left as
    it is; an older one is refused with a message saying to run ``emotion-batch db upgrade``. SQLite
    files are switched to WAL. (Tests that want bare tables use ``create_tables``.)

    Raises:
        SchemaError: the schema is older or newer than this emotion-batch, or not ours.
        DatabaseError: the database cannot be reached or written.
    """
    from .schema import ensure_schema

    if engine.dialect.name == "sqlite":
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        except SQLAlchemyError as exc:
            raise DatabaseError(f"Cannot prepare the database {safe_url(engine.url)}: {db_reason(exc)}") from exc
    ensure_schema(engine)


def create_tables(engine: Engine) -> None:
    """For tests: the models' tables and the analyst views, without migrations or a schema version."""
    with engine.begin() as conn:
        Base.metadata.create_all(conn)
        for statement in view_statements(engine.dialect.name):
            conn.execute(text(statement))


def has_schema(engine: Engine) -> bool:
    try:
        return inspect(engine).has_table("faces")
    except SQLAlchemyError as exc:
        raise DatabaseError(f"Cannot reach the database {safe_url(engine.url)}: {db_reason(exc)}") from exc


@contextlib.contextmanager
def run_lock(engine: Engine) -> Iterator[bool]:
    """Hold the database's run lock for the block, or raise ``RunLockedError`` at once.

    Yields True where there is a lock (SQLite files, PostgreSQL), False for other databases.

    SQLite files: an exclusive ``flock`` on ``<file>.lock`` beside the database. PostgreSQL: a session
    advisory lock on a dedicated connection. Both are released by the OS/server when the process dies,
    so a killed run never leaves a stale lock.
    """
    name = engine.dialect.name
    url = engine.url
    if name == "sqlite" and url.database and url.database != ":memory:":
        import fcntl

        lock_path = Path(url.database).expanduser().resolve().with_name(Path(url.database).name + ".lock")
        try:
            handle = open(lock_path, "a+")
        except OSError as exc:
            raise DatabaseError(f"Cannot open the run lock file {lock_path} ({exc.strerror or exc}). "
                                f"Received: db={safe_url(url)!r}") from exc
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            handle.close()
            raise RunLockedError(
                f"Another emotion-batch run is using {safe_url(url)} (lock file {lock_path}); "
                "this run stops here. Try again when it has finished."
            ) from exc
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            yield True
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            handle.close()
    elif name == "postgresql":
        try:
            conn = engine.connect()
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": PG_LOCK_KEY}).scalar()
            conn.commit()
        except OperationalError as exc:
            raise DatabaseError(f"Cannot reach the database {safe_url(url)}: {db_reason(exc)}") from exc
        if not got:
            conn.close()
            raise RunLockedError(
                f"Another emotion-batch run holds the lock on {safe_url(url)}; this run stops here."
            )
        try:
            yield True
        finally:
            with contextlib.suppress(SQLAlchemyError):
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": PG_LOCK_KEY})
                conn.commit()
            conn.close()
    else:
        log.warning("no run lock for the %s dialect: do not start overlapping runs", name)
        yield False
