"""Job state transitions in the catalogue (SQLite and PostgreSQL)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import timedelta

from sqlalchemy import update

from recon.jobs.manifest import JobSpec
from recon.jobs.state import JobStore
from recon.library.catalog.models import JobRow, utcnow


def _spec(name="a"):
    return JobSpec(source=f"/captures/{name}", name=name)


def test_claim_is_exclusive_and_reports_only_count_for_the_current_attempt(library):
    jobs = JobStore(library)
    spec = _spec()
    jobs.register([spec], "m.yaml")
    assert jobs.get(spec.key).status == "queued"
    assert jobs.claim(spec.key, max_attempts=2) == 1
    assert jobs.claim(spec.key, max_attempts=2) is None  # running: nobody else takes it
    assert jobs.fail(spec.key, 1, "boom")
    assert not jobs.finish(spec.key, 1, "late")  # attempt 1 already ended
    assert jobs.claim(spec.key, max_attempts=2) == 2
    assert not jobs.fail(spec.key, 1, "stale report from attempt 1")
    assert jobs.finish(spec.key, 2, "asset-id")
    st = jobs.get(spec.key)
    assert (st.status, st.attempts, st.asset_id, st.error) == ("done", 2, "asset-id", None)
    assert jobs.claim(spec.key, max_attempts=5) is None  # done stays done


def test_attempts_are_capped(library):
    jobs = JobStore(library)
    spec = _spec()
    jobs.register([spec])
    assert jobs.claim(spec.key, max_attempts=1) == 1 and jobs.fail(spec.key, 1, "x")
    assert jobs.claim(spec.key, max_attempts=1) is None
    assert jobs.claim(spec.key, max_attempts=2) == 2


def test_dead_or_silent_workers_are_recovered(library):
    jobs = JobStore(library)
    dead, silent, alive = _spec("dead"), _spec("silent"), _spec("alive")
    jobs.register([dead, silent, alive])
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # a pid that no longer exists
    host = socket.gethostname()
    for spec in (dead, silent, alive):
        jobs.claim(spec.key, max_attempts=3)
    jobs.started(dead.key, 1, "/w", "/w/job.log", worker=f"{host}:{proc.pid}")
    jobs.started(silent.key, 1, "/w", "/w/job.log", worker="other-host:123")
    jobs.started(alive.key, 1, "/w", "/w/job.log", worker=f"{host}:{os.getpid()}")
    with library.sessions.begin() as s:
        s.execute(update(JobRow).where(JobRow.key == silent.key)
                  .values(heartbeat_at=utcnow() - timedelta(minutes=10)))
    recovered = jobs.recover_stale(stale_after=120)
    assert sorted(recovered) == sorted([dead.key, silent.key])
    assert "died" in jobs.get(dead.key).error and "no heartbeat" in jobs.get(silent.key).error
    assert jobs.get(alive.key).status == "running"


def test_done_job_is_queued_again_when_its_asset_is_removed(library, make_asset):
    jobs = JobStore(library)
    spec = _spec("box")
    jobs.register([spec])
    asset = library.add(make_asset("box"))
    jobs.claim(spec.key, 3)
    jobs.finish(spec.key, 1, asset.id)
    jobs.register([spec])
    assert jobs.get(spec.key).status == "done"
    library.remove(asset.id)
    jobs.register([spec])
    st = jobs.get(spec.key)
    assert (st.status, st.attempts, st.asset_id) == ("queued", 0, None)
