"""Killing a process in the middle of ``Library.add`` / ``remove`` never leaves an asset row
without its blobs, nor a corrupt or half-written blob (SQLite and PostgreSQL).

Two kinds of trial, each in a real child process (forked, so each trial costs no start-up):
- random: the child opens the library, says it is ready, adds an asset; the parent sends
  SIGKILL after a random delay within the add's measured duration (at least 20 trials);
- fault points: the child dies (``os._exit``) exactly at each named step of add and remove
  (``recon.library.faults``).
After every trial ``verify`` must be clean and the asset either fully there or absent; at
the end ``gc`` clears the leftovers and everything still adds.
"""
from __future__ import annotations

import os
import random
import signal
import time

import pytest

from recon.library import Library
from catalog_support import fork_child, wait_child

RANDOM_TRIALS = 20
EXTRA_BYTES = 1 << 20  # a 1 MiB texture per asset, so the blob writes take a while
ADD_STEPS = ["blob_written", "blob_fsynced", "blob_renamed", "blobs_stored", "rows_flushed", "committed"]
REMOVE_STEPS = ["removed_rows", "blob_deleted"]


def _check(lib: Library, expect_assets: set[int]) -> int:
    report = lib.verify()
    assert report.ok, [(p.hash[:12], p.problem, p.refs) for p in report.problems]
    n = len(lib)
    assert n in expect_assets, (n, expect_assets)
    return n


def _child(url, store, op, arg, ready_w, go_r, crash_at=None):
    from recon.library import faults

    faults._TARGET = (crash_at, 1) if crash_at else None
    faults._SEEN.clear()
    lib = Library(url, store=store)
    os.write(ready_w, b"r")
    os.read(go_r, 1)
    t0 = time.perf_counter()
    getattr(lib, op)(arg)
    os.write(ready_w, f"{time.perf_counter() - t0:.4f}".encode())


def _run(url, store, op, arg, *, kill_after=None, crash_at=None, log=None) -> tuple[int, float | None]:
    """Run ``lib.<op>(arg)`` in a child; (exit code, duration of the op if it finished)."""
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = fork_child(_child, url, store, op, arg, ready_w, go_r, crash_at, log=log)
    os.close(ready_w)
    os.close(go_r)
    assert os.read(ready_r, 1) == b"r"
    os.write(go_w, b"g")
    if kill_after is not None:
        time.sleep(kill_after)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    code = wait_child(pid)
    rest = os.read(ready_r, 64)
    os.close(ready_r)
    os.close(go_w)
    return code, float(rest) if rest else None


def test_kill_during_add_at_random_points(library, catalog_url, store_dir, make_asset, tmp_path):
    rng = random.Random(1234)
    log = tmp_path / "children.log"
    folders = [make_asset(f"crash{i}", seed=i, extra_bytes=EXTRA_BYTES) for i in range(RANDOM_TRIALS + 1)]
    code, duration = _run(catalog_url, store_dir, "add", folders[0], log=log)
    assert code == 0 and duration, log.read_text() if log.exists() else code
    n = _check(library, {1})
    outcomes = {"killed": 0, "finished": 0}
    for folder in folders[1:]:
        code, _ = _run(catalog_url, store_dir, "add", folder, kill_after=rng.uniform(0, 1.3 * duration), log=log)
        outcomes["killed" if code == -signal.SIGKILL else "finished"] += 1
        assert code in (0, -signal.SIGKILL), log.read_text() if log.exists() else code
        n = _check(library, {n, n + 1})
    print(f"random kills during add: {outcomes}, add took {duration:.3f}s")
    assert outcomes["killed"] >= RANDOM_TRIALS // 2, outcomes  # the kills landed inside add
    library.gc()
    assert not library.verify().orphans and not os.listdir(library.store.root / "tmp")
    for folder in folders:  # nothing stayed locked or half-done: every asset adds now
        library.add(folder)
    assert len(library) == len(folders) and library.verify().ok


@pytest.mark.parametrize("step", ADD_STEPS)
def test_crash_at_each_step_of_add(library, catalog_url, store_dir, make_asset, tmp_path, step):
    folder = make_asset("faulty", seed=1)
    code, _ = _run(catalog_url, store_dir, "add", folder, crash_at=step, log=tmp_path / "log")
    assert code == 86  # recon.library.faults.CRASH_EXIT_CODE: it died at that step
    _check(library, {1} if step == "committed" else {0})
    library.gc()
    assert library.add(folder).name == "faulty" and library.verify().ok and not library.verify().orphans


@pytest.mark.parametrize("step", REMOVE_STEPS)
def test_crash_at_each_step_of_remove(library, catalog_url, store_dir, make_asset, tmp_path, step):
    keep = library.add(make_asset("keep", seed=2))
    gone = library.add(make_asset("gone", seed=3))
    code, _ = _run(catalog_url, store_dir, "remove", gone.id, crash_at=step, log=tmp_path / "log")
    assert code == 86
    _check(library, {1})
    assert library.get(keep.id) == keep
    library.gc()
    assert {f.hash for f in keep.files} == set(library.store.hashes())
