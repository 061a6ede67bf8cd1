"""Schema versions of the results database: the Alembic migrations shipped in the package, run in code.

No ``alembic.ini`` is needed: ``alembic_config`` points Alembic at ``store/migrations``. A database is in
one of these states (``schema_status``):

- ``empty``: none of our tables. ``ensure_schema`` (the batch job) creates the schema at the newest revision.
- ``current``: at the newest revision.
- ``outdated``: an older revision, or the tables an emotion-batch without migrations made. The job refuses
  it; ``emotion-batch db upgrade`` (``upgrade``) brings it up to date, stamping the latter as the baseline.
- ``unknown``: a revision this emotion-batch does not know (a newer emotion-batch upgraded it).
- ``partial``: some of our tables but no version: not a database this program made.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Engine, inspect
from sqlalchemy.exc import SQLAlchemyError

from ..exceptions import ConfigError, DatabaseError, SchemaError
from .messages import db_reason, safe_url
from .models import Base

log = logging.getLogger(__name__)

#: Alembic's version table; a name of our own, so a database shared with another Alembic project works.
VERSION_TABLE = "alembic_version_emotion_batch"
#: The revision of the schema as it was before migrations existed.
BASELINE = "0001"
#: Tables of the baseline schema.
TABLES = ("runs", "campaigns", "ads", "images", "faces")
MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")
SCHEMA_STATES = ("empty", "current", "outdated", "unknown", "partial")
REFERENCE_DIALECTS = ("postgresql", "sqlite")


@dataclass(frozen=True)
class SchemaStatus:
    """Where a database stands: ``state`` (one of ``SCHEMA_STATES``), its revision and the newest one."""

    state: str
    current: str | None
    head: str
    url: str = ""

    def as_dict(self) -> dict:
        return {"state": self.state, "current": self.current, "head": self.head, "db": self.url,
                "problem": self.problem()}

    def problem(self) -> str | None:
        """What is wrong and what to run, or None when the batch job can use the database."""
        if self.state in ("current", "empty"):
            return None
        if self.state == "outdated":
            had = f"schema revision {self.current}" if self.current else "a schema from before migrations"
            return (f"The database {self.url} has {had}; this emotion-batch needs revision {self.head}. "
                    f"Back it up, then run `emotion-batch db upgrade --db URL` (same URL) and start again.")
        if self.state == "unknown":
            return (f"The database {self.url} has schema revision {self.current!r}, which this emotion-batch does "
                    f"not know (its newest is {self.head}): a newer emotion-batch upgraded it. Install that version.")
        if self.state == "partial":
            return (f"The database {self.url} holds some of the tables {list(TABLES)} but not all and no schema "
                    "version: it was not made by emotion-batch. Use an empty database.")
        raise SchemaError(f"state must be one of {list(SCHEMA_STATES)}. Received: state={self.state!r}")


def alembic_config(url: str | None = None, *, connection: Connection | None = None):
    """An Alembic ``Config`` for the shipped migrations, without an ini file.

    Args:
        url: the database URL, for Alembic commands that open their own connection.
        connection: an open connection the migrations run on (the caller owns its transaction).
    """
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if url is not None:
        config.set_main_option("sqlalchemy.url", str(url).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def revisions() -> list[str]:
    """Every revision shipped, oldest first."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


def head_revision() -> str:
    """The newest revision shipped."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _status(conn: Connection) -> SchemaStatus:
    from alembic.runtime.migration import MigrationContext

    known = revisions()
    head = known[-1]
    url = safe_url(conn.engine.url)
    names = set(inspect(conn).get_table_names())
    current = None
    if VERSION_TABLE in names:
        current = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()
    present = [t for t in TABLES if t in names]
    if current is None:
        if not present:
            return SchemaStatus("empty", None, head, url)
        if len(present) < len(TABLES):
            return SchemaStatus("partial", None, head, url)
        return SchemaStatus("outdated", None, head, url)
    if current == head:
        return SchemaStatus("current", current, head, url)
    if current in known:
        return SchemaStatus("outdated", current, head, url)
    return SchemaStatus("unknown", current, head, url)


def schema_status(engine: Engine) -> SchemaStatus:
    """Where the database stands (nothing is written).

    Raises:
        DatabaseError: the database cannot be reached.
    """
    try:
        with engine.connect() as conn:
            return _status(conn)
    except SQLAlchemyError as exc:
        raise DatabaseError(f"Cannot reach the database {safe_url(engine.url)}: {db_reason(exc)}") from exc


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str]:
    """Migrate the database to ``revision`` (default: the newest) in one transaction (PostgreSQL and SQLite
    both run DDL in transactions): a failure half-way, a full disk included, leaves the database as it was.

    A database made before migrations existed is stamped with the baseline revision first. The caller
    should hold the run lock (``session.run_lock``) so that no batch run writes meanwhile.

    Returns:
        The revisions before and after (``None`` before: empty, or from before migrations).

    Raises:
        SchemaError: the database has a revision this emotion-batch does not know, or is not ours.
        DatabaseError: the database cannot be reached or a migration failed.
    """
    from alembic import command
    from alembic.util import CommandError

    try:
        with engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                # pysqlite opens no transaction before DDL, so each CREATE TABLE would commit on its own and a
                # full disk would leave half a schema: one explicit transaction, committed or rolled back whole
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            before = _status(conn)
            if before.state in ("unknown", "partial"):
                raise SchemaError(before.problem())
            config = alembic_config(connection=conn)
            if before.state == "outdated" and before.current is None:
                log.info("stamping %s with the baseline revision %s", before.url, BASELINE)
                command.stamp(config, BASELINE)
            command.upgrade(config, revision)
            after = _status(conn)
    except CommandError as exc:
        raise SchemaError(f"revision must be one of {revisions()} or 'head'. Received: revision={revision!r} ({exc})") from exc
    except SQLAlchemyError as exc:
        raise DatabaseError(f"Cannot upgrade the database {safe_url(engine.url)}: {db_reason(exc)}") from exc
    log.info("database %s: schema %s -> %s", after.url, before.current, after.current)
    return before.current, after.current or ""


def ensure_schema(engine: Engine) -> SchemaStatus:
    """Make the database usable by the batch job: create the schema on an empty database, accept a current one.

    Raises:
        SchemaError: the schema is older (the message says to run ``emotion-batch db upgrade``), newer, or
            not ours.
        DatabaseError: the database cannot be reached or written.
    """
    status = schema_status(engine)
    if status.state == "empty":
        log.info("empty database %s: creating the schema at revision %s", status.url, status.head)
        upgrade(engine)
        return schema_status(engine)
    problem = status.problem()
    if problem:
        raise SchemaError(problem)
    return status


def reference_ddl(dialect: str = "postgresql") -> str:
    """The ``CREATE TABLE``/``CREATE INDEX`` statements of the models for one dialect (``sql/schema.sql``).

    Raises:
        ConfigError: ``dialect`` is not one of ``REFERENCE_DIALECTS``.
    """
    from sqlalchemy.schema import CreateIndex, CreateTable

    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql as module
    elif dialect == "sqlite":
        from sqlalchemy.dialects import sqlite as module
    else:
        raise ConfigError(f"dialect must be one of {list(REFERENCE_DIALECTS)}. Received: dialect={dialect!r}")
    target = module.dialect()
    out = []
    for table in Base.metadata.sorted_tables:
        out.append(str(CreateTable(table).compile(dialect=target)).strip() + ";")
        for index in sorted(table.indexes, key=lambda i: i.name):
            out.append(str(CreateIndex(index).compile(dialect=target)).strip() + ";")
    body = "\n\n".join("\n".join(line.rstrip() for line in stmt.splitlines()) for stmt in out)
    return body + "\n"


_REFERENCE_HEADER = """\
-- Reference DDL of the emotion_batch results database (PostgreSQL), generated from the SQLAlchemy models
-- (emotion_batch/store/models.py). Do not edit: the schema is created and changed by the Alembic
-- migrations in emotion_batch/store/migrations (`emotion-batch db upgrade`), and the tests fail when this
-- file, the models and the migrations drift apart. Regenerate it with
--   python -c "from emotion_batch.store.schema import reference_schema_sql as s; print(s(), end='')" > sql/schema.sql
-- The views are in views.sql and views.postgresql.sql. Timestamps are UTC (TIMESTAMP WITH TIME ZONE).
-- Constraint names follow one convention: pk_<table>, uq_<table>_<columns>,
-- fk_<table>_<column>_<referred table>, ix_<table>_<column>.

"""


def reference_schema_sql() -> str:
    """The text of ``sql/schema.sql``: a header and ``reference_ddl("postgresql")``."""
    return _REFERENCE_HEADER + reference_ddl("postgresql")
