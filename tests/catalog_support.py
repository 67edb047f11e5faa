"""Test support for recon.library and recon.jobs: a real PostgreSQL server on loopback, the
catalogue fixture parametrised over SQLite and PostgreSQL, and synthetic asset folders.

Loaded by tests/library/conftest.py and tests/jobs/conftest.py (``load()``), once per session.
The server is Debian's PostgreSQL (scripts/setup.sh installs it; nothing is installed
here): ``initdb`` + ``pg_ctl`` run as the ``postgres`` user when we are root, in a temp dir,
on a free loopback port, and are stopped when the session ends. Each test gets a fresh
database. ``RECON_TEST_POSTGRES=0`` runs the SQLite half only (a skip says so).
"""
from __future__ import annotations

import atexit
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

BACKENDS = ("sqlite", "postgresql")


def _pg_bin(tool: str) -> str:
    found = shutil.which(tool)
    if found:
        return found
    cands = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"))
    if not cands:
        pytest.fail(f"PostgreSQL's {tool} not found: run scripts/setup.sh (Debian package 'postgresql'), "
                    f"or set RECON_TEST_POSTGRES=0 to test SQLite only")
    return cands[-1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """A throw-away PostgreSQL cluster: trust auth, loopback only, fsync off (tests only)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="recon-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run(_pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                  "--locale=C", "--no-sync")
        opts = f"-h 127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off -c max_connections=200"
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "server.log"), "-o", opts,
                  "-w", "-t", "60", "start")
        self._stopped = False
        atexit.register(self.stop)

    def _run(self, *cmd: str) -> None:
        full = ["runuser", "-u", "postgres", "--", *cmd] if self._as_postgres else list(cmd)
        res = subprocess.run(full, capture_output=True, text=True, cwd=self.dir)
        if res.returncode != 0:
            log = (self.dir / "server.log").read_text() if (self.dir / "server.log").exists() else ""
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{res.stdout}\n{res.stderr}\n{log[-2000:]}")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        try:
            self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


_SERVER: PostgresServer | None = None


def postgres_server() -> PostgresServer:
    global _SERVER
    if os.environ.get("RECON_TEST_POSTGRES", "1") == "0":
        pytest.skip("RECON_TEST_POSTGRES=0: PostgreSQL half of the suite not run")
    if _SERVER is None:
        _SERVER = PostgresServer()
    return _SERVER


# -- fixtures (re-exported by the conftests) --------------------------------------------------

@pytest.fixture(params=BACKENDS)
def catalog_url(request, tmp_path) -> str:
    """A fresh, empty catalogue: a SQLite file, or a new database on the PostgreSQL server."""
    if request.param == "sqlite":
        return str(tmp_path / "catalog" / "library.db")
    return postgres_server().create_database()


@pytest.fixture
def store_dir(tmp_path) -> Path:
    return tmp_path / "blobs"


@pytest.fixture
def library(catalog_url, store_dir):
    from recon.library import Library

    lib = Library(catalog_url, store=store_dir)
    yield lib
    lib.close()


# -- synthetic asset folders: tests/asset_factory.py ------------------------------------------

def _factory():
    import importlib.util
    import sys

    name = "recon_tests_asset_factory"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("asset_factory.py"))
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


def make_asset_folder(*args, **kw) -> Path:
    return _factory().make_asset_folder(*args, **kw)


@pytest.fixture
def make_asset(tmp_path):
    """``make_asset(name="box", seed=0, **kw) -> Path``: a new synthetic asset folder under tmp_path."""
    counter = iter(range(10**6))

    def make(name: str = "box", seed: int = 0, **kw) -> Path:
        return make_asset_folder(tmp_path / "assets" / f"{name}-{seed}-{next(counter)}" / "asset", name, seed, **kw)

    return make


# -- child processes --------------------------------------------------------------------------

def fork_child(fn, *args, log: Path | None = None) -> int:
    """Run ``fn(*args)`` in a forked child (exit 0 on success, 1 with the traceback in ``log``).

    Forking skips the interpreter start and imports, so crash and concurrency tests can use
    many real processes cheaply. The child never returns into pytest (``os._exit``).
    """
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        fn(*args)
        code = 0
    except BaseException:
        if log is not None:
            import traceback

            with open(log, "a") as f:
                f.write(f"[{os.getpid()}] {traceback.format_exc()}\n")
    finally:
        os._exit(code)


def wait_child(pid: int) -> int:
    """Exit code of a child (negative: killed by that signal)."""
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)
