"""Both database engines for the tests: a SQLite file per test, and a throwaway PostgreSQL server.

The server is started once per test session from Debian's packages (``/usr/lib/postgresql/*/bin``) in a
temporary folder, listening on a free loopback port, and every test gets a fresh database in it. Where
no server can be started the PostgreSQL variants are skipped with the reason, unless
``EMOTION_BATCH_REQUIRE_PG=1`` (set by ``.ci/run``), where they fail instead. ``EMOTION_BATCH_TEST_PG_URL``
points the tests at an existing server instead (a URL of a database whose user may create databases).
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

ENGINES = ("sqlite", "postgresql")
REQUIRE_ENV = "EMOTION_BATCH_REQUIRE_PG"
URL_ENV = "EMOTION_BATCH_TEST_PG_URL"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server could be started or reached."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(cmd: list[str]) -> list[str]:
    """Run ``cmd`` as the ``postgres`` user when we are root (initdb refuses root)."""
    if os.geteuid() != 0:
        return cmd
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", "postgres", "--", *cmd]
    return ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(f"'{c}'" for c in cmd)]


class PostgresServer:
    """A PostgreSQL cluster in a temporary folder, trust authentication on 127.0.0.1 only."""

    def __init__(self, *, durable: bool = False) -> None:
        self.durable = durable  # benchmarks: keep PostgreSQL's default fsync and commit settings
        self.dir: Path | None = None
        self.port = 0
        self.admin_url = ""
        self._names = itertools.count()
        self.version = ""

    def start(self) -> None:
        try:
            import psycopg  # noqa: F401
        except ImportError as exc:
            raise PostgresUnavailable(f"the psycopg driver is not installed ({exc}): pip install 'psycopg[binary]'")
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        if not bins:
            raise PostgresUnavailable("no /usr/lib/postgresql/*/bin/pg_ctl: apt-get install postgresql")
        bindir = Path(bins[-1]).parent
        if os.geteuid() == 0:
            try:
                import pwd

                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresUnavailable("running as root and there is no 'postgres' user to run the server")
        self.dir = Path(tempfile.mkdtemp(prefix="emotion-batch-pg-"))
        data = self.dir / "data"
        if os.geteuid() == 0:
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
        self.port = _free_port()
        init = subprocess.run(
            _as_postgres([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                          "--encoding=UTF8", "--no-sync"]),
            capture_output=True, text=True, timeout=120,
        )
        if init.returncode != 0:
            raise PostgresUnavailable(f"initdb failed: {init.stderr.strip()[-500:]}")
        # A throwaway server: durability off, the socket only on loopback. Its time zone is far from UTC, so
        # that a query computing days or times in the session's zone instead of UTC fails the tests.
        options = (f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories='' "
                   "-c max_connections=50 -c timezone=Pacific/Auckland")
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        start = subprocess.run(
            _as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(self.dir / "server.log"),
                          "-o", options, "-w", "-t", "60", "start"]),
            capture_output=True, text=True, timeout=120,
        )
        if start.returncode != 0:
            log = (self.dir / "server.log").read_text(errors="replace")[-800:] if (self.dir / "server.log").exists() else ""
            raise PostgresUnavailable(f"pg_ctl start failed: {start.stderr.strip()[-300:]} {log}")
        self._bindir = bindir
        self.admin_url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self.version = bindir.parent.name

    def create_database(self) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        from sqlalchemy import create_engine, make_url

        name = f"t{os.getpid()}_{next(self._names)}"
        engine = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        finally:
            engine.dispose()
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    def drop_database(self, url: str) -> None:
        from sqlalchemy import create_engine, make_url

        name = make_url(url).database
        engine = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            engine.dispose()

    def stop(self) -> None:
        if self.dir is None:
            return
        if self.admin_url:
            subprocess.run(_as_postgres([str(self._bindir / "pg_ctl"), "-D", str(self.dir / "data"), "-m",
                                         "immediate", "-w", "stop"]), capture_output=True, timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None


class ExistingServer(PostgresServer):
    """A server given by ``EMOTION_BATCH_TEST_PG_URL``."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.admin_url = url
        self.version = "external"

    def start(self) -> None:
        from sqlalchemy import create_engine

        engine = create_engine(self.admin_url)
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
        except Exception as exc:  # noqa: BLE001 - any failure means: not usable
            raise PostgresUnavailable(f"{URL_ENV} cannot be reached: {exc}") from exc
        finally:
            engine.dispose()

    def stop(self) -> None:
        pass


def _unavailable(reason: str):
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"PostgreSQL is required ({REQUIRE_ENV}=1) but unavailable: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL unavailable: {reason}")


@pytest.fixture(scope="session")
def postgres_server():
    """The session's PostgreSQL server (skips, or fails under ``EMOTION_BATCH_REQUIRE_PG=1``, without one)."""
    url = os.environ.get(URL_ENV)
    server = ExistingServer(url) if url else PostgresServer()
    try:
        server.start()
    except (PostgresUnavailable, OSError, subprocess.SubprocessError) as exc:
        server.stop()
        _unavailable(str(exc))
    yield server
    server.stop()


@pytest.fixture(params=ENGINES)
def db_url(request, tmp_path):
    """A URL of an empty database on each engine: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'results.sqlite'}"
        return
    server = request.getfixturevalue("postgres_server")
    url = server.create_database()
    yield url
    server.drop_database(url)


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
