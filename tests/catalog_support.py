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
import json
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


# -- synthetic asset folders ------------------------------------------------------------------

_OBJ = """mtllib {name}.mtl
v 0 0 0
v {s} 0 0
v 0 {s} 0
v 0 0 {s}
vt 0 0
vt 1 0
vt 0 1
usemtl material0
f 1/1 3/3 2/2
f 1/1 2/2 4/3
f 1/1 4/3 3/3
f 2/2 3/3 4/3
"""
_MTL = "newmtl material0\nKd 1 1 1\nmap_Kd textures/albedo.png\n"


def make_asset_folder(root: str | Path, name: str = "box", seed: int = 0, *, source_hash: str | None = None,
                      config_hash: str | None = None, provenance: bool = True, kind: str = "object",
                      psnr: float | None = 30.0, extra_bytes: int = 0) -> Path:
    """An asset folder as recon.bake writes it (OUT/asset/), small and deterministic in ``seed``.

    ``extra_bytes`` adds a large texture (for crash tests that need writes to take a while).
    """
    import numpy as np
    import trimesh
    from PIL import Image

    root = Path(root)
    (root / "textures").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    s = 1.0 + seed
    mesh = trimesh.Trimesh(vertices=[[0, 0, 0], [s, 0, 0], [0, s, 0], [0, 0, s]],
                           faces=[[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]], process=False)
    mesh.export(root / f"{name}.glb")
    mesh.export(root / f"{name}.ply")
    (root / f"{name}.obj").write_text(_OBJ.format(name=name, s=s))
    (root / f"{name}.mtl").write_text(_MTL)
    Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(root / "textures" / "albedo.png")
    Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(root / "thumb.png")
    if extra_bytes:
        (root / "textures" / "detail.png").write_bytes(rng.bytes(extra_bytes))
    (root / "turntable.mp4").write_bytes(b"\0\0\0\x18ftypmp42" + rng.bytes(64))
    (root / "report.html").write_text(f"<html><body>{name} {seed}</body></html>\n")
    metrics = {"triangles": 4, "vertices": 4, "texture_size": 16, "mask_iou": 0.9}
    if psnr is not None:
        metrics["psnr"] = psnr
    (root / "metrics.json").write_text(json.dumps(metrics))
    if provenance:
        (root / "provenance.json").write_text(json.dumps({
            "name": name, "kind": kind, "source_path": f"/captures/{name}.mp4",
            "source_hash": source_hash if source_hash is not None else f"src{seed:061d}",
            "config_hash": config_hash if config_hash is not None else "cfg0000000000000",
            "recon_version": "0.1.0", "licence": "CC-BY-4.0", "operator": "tester", "notes": "synthetic"}))
    return root


@pytest.fixture
def make_asset(tmp_path):
    """``make_asset(name="box", seed=0, **kw) -> Path``: a new synthetic asset folder under tmp_path."""
    counter = iter(range(10**6))

    def make(name: str = "box", seed: int = 0, **kw) -> Path:
        return make_asset_folder(tmp_path / "assets" / f"{name}-{seed}-{next(counter)}" / "asset", name, seed, **kw)

    return make
