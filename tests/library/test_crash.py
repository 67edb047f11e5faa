"""Killing a process in the middle of ``Library.add`` / ``remove`` never leaves an asset row
without its blobs, nor a corrupt or half-written blob (SQLite and PostgreSQL).

Two kinds of trial, each in a real child process (forked, so each trial costs no start-up):
- random: the child adds an asset, reporting each fault point it reaches
  (``recon.library.faults.hook``) and waiting there for the parent's go; the parent picks a
  random step (or the start of add), lets the child pass it, waits a random short delay and
  sends SIGKILL, so the kill lands inside add by construction, between that step and the
  next, however loaded the machine (at least 20 trials);
- fault points: the child dies (``os._exit``) exactly at each named step of add and remove.
After every trial ``verify`` must be clean and the asset either fully there or absent; at
the end ``gc`` clears the leftovers and everything still adds.
"""
from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter

import pytest

from recon.library import Library
from recon.library.blob_store import hash_file
from catalog_support import fork_child, wait_child

RANDOM_TRIALS = 20
MAX_KILL_DELAY_S = 0.01
EXTRA_BYTES = 1 << 20  # a 1 MiB texture per asset, so the blob writes take a while
ADD_STEPS = ["blob_written", "blob_fsynced", "blob_renamed", "blobs_stored", "rows_flushed", "committed"]
REMOVE_STEPS = ["removed_rows", "blob_deleted"]


def _check(lib: Library, expect_assets: set[int]) -> int:
    report = lib.verify()
    assert report.ok, [(p.hash[:12], p.problem, p.refs) for p in report.problems]
    n = len(lib)
    assert n in expect_assets, (n, expect_assets)
    return n


def _child(url, store, op, arg, events_w, go_r, crash_at=None, stepwise=False):
    from recon.library import faults

    def say(msg: str) -> None:
        os.write(events_w, f"{msg}\n".encode())

    faults._TARGET = (crash_at, 1) if crash_at else None
    faults._SEEN.clear()
    if stepwise:  # report each fault point, then wait for the parent's go
        faults.hook = lambda step: (say(step), os.read(go_r, 1))
    lib = Library(url, store=store)
    say("ready")
    os.read(go_r, 1)
    t0 = time.perf_counter()
    getattr(lib, op)(arg)
    say(f"done {time.perf_counter() - t0:.4f}")


def _run(url, store, op, arg, *, kill_at=None, crash_at=None, log=None) -> tuple[int, float | None]:
    """Run ``lib.<op>(arg)`` in a child; (exit code, duration of the op if it finished).

    ``kill_at=(step, n, delay)``: the parent lets the child pass the n-th ``step`` ("start": the
    start of the op), waits ``delay`` and SIGKILLs it; the child cannot pass the next step meanwhile.
    """
    events_r, events_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = fork_child(_child, url, store, op, arg, events_w, go_r, crash_at, kill_at is not None, log=log)
    os.close(events_w)
    os.close(go_r)
    with os.fdopen(events_r, "rb") as events, os.fdopen(go_w, "wb", buffering=0) as go:
        assert events.readline() == b"ready\n"
        go.write(b"g")
        if kill_at is not None:
            step, n, delay = kill_at
            seen, reached = Counter(), step == "start"
            while not reached:
                line = events.readline().decode().strip()
                assert line and not line.startswith("done"), (f"{step} #{n} never reached", _log(log))
                seen[line] += 1
                reached = (line, seen[line]) == (step, n)
                go.write(b"g")
            time.sleep(delay)
            os.kill(pid, signal.SIGKILL)  # not reaped yet: at worst a zombie, never another process
        code = wait_child(pid)
        done = [line for line in events.read().decode().splitlines() if line.startswith("done")]
    return code, float(done[0].split()[1]) if done else None


def _log(log) -> str:
    return log.read_text() if log is not None and log.exists() else ""


def test_kill_during_add_at_random_points(library, catalog_url, store_dir, make_asset, tmp_path):
    rng = random.Random(1234)
    log = tmp_path / "children.log"
    folders = [make_asset(f"crash{i}", seed=i, extra_bytes=EXTRA_BYTES) for i in range(RANDOM_TRIALS + 1)]
    code, duration = _run(catalog_url, store_dir, "add", folders[0], log=log)
    assert code == 0 and duration, (code, _log(log))
    n = _check(library, {1})
    outcomes = Counter()
    for i, folder in enumerate(folders[1:], 1):
        step = rng.choice(["start", *ADD_STEPS])
        new_blobs = {hash_file(p)[0] for p in folder.rglob("*") if p.is_file()} - set(library.store.hashes())
        nth = rng.randint(1, len(new_blobs)) if step.startswith("blob_") else 1  # each new blob passes them
        code, _ = _run(catalog_url, store_dir, "add", folder, kill_at=(step, nth, rng.uniform(0, MAX_KILL_DELAY_S)),
                       log=log)
        # Only a kill after the commit may come too late; before rows_flushed the rows cannot be there.
        assert code == -signal.SIGKILL or (code == 0 and step == "committed"), (step, code, _log(log))
        outcomes["killed" if code else "finished"] += 1
        expect = {"committed": {n + 1}, "rows_flushed": {n, n + 1}}.get(step, {n})
        n_before, n = n, _check(library, expect)
        if n > n_before:  # fully there
            assert {f.path for f in library.get(f"crash{i}").files} == \
                {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    print(f"kills during add at random steps: {dict(outcomes)}, add took {duration:.3f}s")
    assert outcomes["killed"] >= RANDOM_TRIALS // 2, outcomes  # holds by construction (see above)
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
