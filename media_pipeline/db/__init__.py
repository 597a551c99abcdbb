"""Engines, sessions and migrations for the domain database (SQLite or Postgres)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "mp_alembic_version"  # Dagster keeps its own `alembic_version` in a shared database
# The newest migration's revision (test_database checks it against alembic's head). A database
# already there needs no alembic: every run worker is a new process, and importing alembic and
# reading its scripts to find nothing to do cost it 0.4 s before its first step.
HEAD_REVISION = "0007"

_engines: dict[str, sa.Engine] = {}
_migrated: set[str] = set()
_lock = threading.Lock()


def normalise_url(url: str) -> str:
    # psycopg 3 is the driver we ship; accept the plain scheme users copy from elsewhere.
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def engine_for(url: str) -> sa.Engine:
    """One pooled engine per URL per process."""
    url = normalise_url(url)
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _create_engine(url)
            _engines[url] = engine
        return engine


def _create_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        database = sa.engine.make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            # WAL lets the API read while a run writes; the busy timeout makes concurrent
            # writers (sensor, runs, API) wait instead of failing.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return sa.create_engine(url, pool_size=5, max_overflow=10, pool_pre_ping=True)


def is_migrated(url: str) -> bool:
    """Whether this process has brought `url` to the newest revision already (no I/O)."""
    return normalise_url(url) in _migrated


def migrate(url: str) -> None:
    """Bring the schema to the newest revision (idempotent; once per process and URL)."""
    url = normalise_url(url)
    if url in _migrated:
        return
    engine = engine_for(url)
    if _revision(engine) == HEAD_REVISION:
        _migrated.add(url)
        return
    from alembic import command
    from alembic.config import Config

    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Several services start at once; one migrates, the others wait and find it done.
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(424242)"))
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    _migrated.add(url)


def _revision(engine: sa.Engine) -> str | None:
    """The database's schema revision; None when it has none yet (a new database)."""
    try:
        with engine.connect() as connection:
            return connection.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
    except sa.exc.DBAPIError:
        return None


def session_factory(url: str) -> sessionmaker[Session]:
    return sessionmaker(engine_for(url), expire_on_commit=False)


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    session = session_factory(url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
