"""Open a catalogue: a SQLite file (plain path or ``sqlite:///``) or a PostgreSQL URL, migrated to
the latest schema on open.

SQLite is set up for several writer processes: WAL journal, a long busy timeout, and
``BEGIN IMMEDIATE`` for every writing transaction, so it takes the write lock when it
starts instead of failing when a read turns into a write. PostgreSQL relies on its own
row locks and the unique constraints (callers retry on conflicts); migrations there are
serialised with an advisory lock.
"""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ...core.errors import InputError

MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"
SQLITE_BUSY_TIMEOUT_S = 120
# pg_advisory_xact_lock key for schema upgrades ("recon" in ASCII).
_PG_MIGRATION_LOCK = 0x7265636F6E


def normalize_url(path_or_url: str | Path) -> str:
    """A SQLAlchemy URL for a plain path (SQLite file) or a URL; ``postgresql://`` uses psycopg 3."""
    s = str(path_or_url)
    if "://" not in s:
        p = Path(s).expanduser().resolve()
        return f"sqlite:///{p}"
    if s.startswith(("postgresql://", "postgres://")):
        s = "postgresql+psycopg://" + s.split("://", 1)[1]
    return s


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL (None for other backends or in-memory)."""
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    return Path(u.database)


def _enable_wal(cur, attempts: int = 200) -> None:
    """Switch a SQLite connection to WAL. The switch needs a moment of exclusive access and fails at
    once with "database is locked" (the busy timeout does not apply) while other processes open
    the same new file, so it is retried with a growing pause; a database already in WAL is left as is."""
    import random
    import sqlite3
    import time

    for i in range(attempts):
        try:
            if cur.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
                return
            cur.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            time.sleep(min(0.5, 0.005 * (i + 1)) * (0.5 + random.random()))
    cur.execute("PRAGMA journal_mode = WAL")  # last try: let the error speak


def no_library(url: str) -> InputError:
    """The error of a read-only open (``create=False``) of a library that does not exist."""
    where = sqlite_path(url) or make_url(url).render_as_string(hide_password=True)
    return InputError(None, f"no library at {where}; `recon library add` or `recon ingest` creates one")


def create_catalog_engine(url: str, create: bool = True) -> Engine:
    """An Engine for ``url`` (already normalised), with the SQLite settings described above.
    ``create=False``: a SQLite file that does not exist is refused (``no_library``), not created."""
    try:
        u = make_url(url)
    except ArgumentError:
        raise InputError(url, "not a library path or database URL") from None
    backend = u.get_backend_name()
    if backend == "sqlite":
        db = sqlite_path(url)
        if db is not None and create:
            db.parent.mkdir(parents=True, exist_ok=True)
        elif db is not None and not db.is_file():
            raise no_library(url)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn, _record):
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (below)
            cur = dbapi_conn.cursor()
            cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_S * 1000}")
            _enable_wal(cur)
            cur.execute("PRAGMA synchronous = FULL")
            cur.execute("PRAGMA foreign_keys = ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            # Writers take the write lock up front; readers (``read_only`` below) do not, and
            # in WAL mode they never block writers.
            conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get("read_only") else "BEGIN IMMEDIATE")

        return engine
    if backend == "postgresql":
        if u.get_driver_name() == "psycopg":
            from ...core.errors import optional_import

            optional_import("psycopg", "a PostgreSQL library", "psycopg[binary]")
        return create_engine(url, pool_pre_ping=True)
    raise InputError(url, f"unsupported library backend '{backend}' (use a SQLite path or postgresql://)")


def upgrade(engine: Engine, create: bool = True) -> None:
    """Bring the schema to the latest Alembic revision; a no-op (one read) when it is there.
    ``create=False``: a database without recon's schema is refused (``no_library``), not set up.

    Runs inside one transaction that holds the database's write lock (SQLite) or an advisory
    lock (PostgreSQL), so processes opening a new library at the same time migrate it once.
    """
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
            conn.rollback()
    except OperationalError as exc:
        raise InputError(engine.url.render_as_string(hide_password=True),
                         f"library database does not answer: {_first_line(exc)}") from None
    if current == head:
        return
    if current is None and not create:
        raise no_library(engine.url.render_as_string(hide_password=False))
    from alembic import command

    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def session_factory(engine: Engine, read_only: bool = False) -> sessionmaker[Session]:
    """Sessions for writing (SQLite: ``BEGIN IMMEDIATE``) or, with ``read_only``, for reading."""
    bind = engine.execution_options(read_only=True) if read_only else engine
    return sessionmaker(bind, expire_on_commit=False)


def _first_line(exc: BaseException) -> str:
    msg = str(getattr(exc, "orig", None) or exc).strip()
    return msg.splitlines()[0] if msg else type(exc).__name__
