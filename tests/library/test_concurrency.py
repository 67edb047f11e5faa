"""Several processes writing one catalogue at once (SQLite and PostgreSQL)."""
from __future__ import annotations

import os
import time

from sqlalchemy import text

from recon.library import Library
from catalog_support import fork_child, wait_child

N_PROC = 4


def _start_together(go_at: float) -> None:
    time.sleep(max(0.0, go_at - time.time()))


def test_concurrent_first_open_migrates_once(catalog_url, store_dir, tmp_path):

    go_at = time.time() + 1.0

    def child():
        _start_together(go_at)
        Library(catalog_url, store=store_dir).close()

    log = tmp_path / "children.log"
    pids = [fork_child(child, log=log) for _ in range(N_PROC)]
    codes = [wait_child(p) for p in pids]
    assert codes == [0] * N_PROC, log.read_text() if log.exists() else codes
    with Library(catalog_url, store=store_dir) as lib, lib.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == ["0002"]


def test_concurrent_writers_keep_the_catalogue_consistent(library, catalog_url, store_dir, make_asset, tmp_path):
    names = ["n0", "n1", "n2"]
    # Child c adds config c of every name (each one a new version), plus one asset every child
    # adds identically (the same capture and config: it must exist once).
    folders = {(c, n): make_asset(n, seed=10 * c + i, source_hash=f"capture-of-{n}", config_hash=f"cfg{c}")
               for c in range(N_PROC) for i, n in enumerate(names)}
    same = make_asset("same", seed=99, source_hash="capture-same", config_hash="cfg")
    go_at = time.time() + 1.0

    def child(c: int):
        lib = Library(catalog_url, store=store_dir)
        _start_together(go_at)
        for n in names:
            lib.add(folders[(c, n)], tags=[f"proc{c}"])
        lib.add(same)

    log = tmp_path / "children.log"
    pids = [fork_child(child, c, log=log) for c in range(N_PROC)]
    codes = [wait_child(p) for p in pids]
    assert codes == [0] * N_PROC, log.read_text() if log.exists() else codes
    for n in names:
        versions = library.find(name=n)
        assert sorted(a.version for a in versions) == list(range(1, N_PROC + 1))
        assert sorted(a.config_hash for a in versions) == [f"cfg{c}" for c in range(N_PROC)]
    assert len(library.find(name="same")) == 1
    assert len(library) == N_PROC * len(names) + 1
    report = library.verify()
    assert report.ok and not report.orphans
    assert os.listdir(library.store.root / "tmp") == []
