"""Job state in the catalogue (table ``jobs``): queued -> running -> done | failed.

Every transition is one guarded UPDATE, so several runners (or a rerun racing a
straggler) never run the same job twice at once:

- ``claim`` takes a job that is queued, failed with attempts left, or running but stale,
  sets it running and counts the attempt; it returns that attempt number.
- ``started``/``heartbeat``/``finish``/``fail`` only act on the attempt they were given, so a
  late report from an attempt that was already declared dead changes nothing.

A running job is stale when its worker is a dead process on this host, or when it has sent no
heartbeat for ``stale_after`` seconds (a worker on another host, or a driver that died).
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable

from sqlalchemy import select, update

from ..library.catalog.models import AssetRow, JobRow, utcnow
from .manifest import JobSpec

HEARTBEAT_S = 10.0
STALE_AFTER_S = 120.0


@dataclass(frozen=True)
class JobState:
    key: str
    name: str
    source: str
    status: str
    attempts: int
    error: str | None
    asset_id: str | None
    work_dir: str | None
    log_path: str | None
    worker: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    spec: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        for k, v in d.items():
            if isinstance(v, datetime):
                d[k] = v.isoformat()
        return d


def worker_id() -> str:
    """``host:pid`` of this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _pid_dead_here(worker: str | None) -> bool:
    """True when ``worker`` names a process on this host that no longer exists."""
    if not worker or worker.count(":") < 1:
        return False
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    # A zombie (dead, not yet reaped by its parent) still answers kill(0).
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return False


class JobStore:
    """The ``jobs`` table of a Library's catalogue."""

    def __init__(self, library):
        self.library = library
        self.sessions, self.reads = library.sessions, library.reads

    @staticmethod
    def _state(r: JobRow) -> JobState:
        return JobState(r.key, r.name, r.source, r.status, r.attempts, r.error, r.asset_id, r.work_dir,
                        r.log_path, r.worker, r.created_at, r.updated_at, r.started_at, r.finished_at,
                        r.heartbeat_at, dict(r.spec or {}))

    def register(self, specs: Iterable[JobSpec], manifest: str | None = None) -> None:
        """Queue the jobs that are new; refresh the spec (tags, notes) of known ones that are not
        running; requeue done jobs whose asset has since been removed from the library."""
        specs = list(specs)
        now = utcnow()
        with self.sessions.begin() as s:
            rows = {r.key: r for r in s.scalars(select(JobRow).where(JobRow.key.in_([x.key for x in specs])))}
            assets = set(s.scalars(select(AssetRow.id).where(
                AssetRow.id.in_([r.asset_id for r in rows.values() if r.asset_id]))))
            for spec in specs:
                r = rows.get(spec.key)
                if r is None:
                    s.add(JobRow(key=spec.key, name=spec.name, source=spec.source, spec=spec.to_dict(),
                                 manifest=manifest, status="queued", attempts=0, created_at=now, updated_at=now))
                elif r.status != "running":
                    r.spec, r.manifest = spec.to_dict(), manifest or r.manifest
                    if r.status == "done" and r.asset_id not in assets:
                        r.status, r.attempts, r.asset_id, r.updated_at = "queued", 0, None, now
                        r.error = "asset no longer in the library: queued again"

    def get(self, key: str) -> JobState | None:
        with self.reads() as s:
            r = s.get(JobRow, key)
            return None if r is None else self._state(r)

    def list(self, keys: Iterable[str] | None = None) -> list[JobState]:
        q = select(JobRow).order_by(JobRow.created_at, JobRow.name)
        if keys is not None:
            q = q.where(JobRow.key.in_(list(keys)))
        with self.reads() as s:
            return [self._state(r) for r in s.scalars(q)]

    def recover_stale(self, keys: Iterable[str] | None = None, stale_after: float = STALE_AFTER_S) -> list[str]:
        """Mark failed the running jobs whose worker died (see module doc); return their keys."""
        cutoff = utcnow() - timedelta(seconds=stale_after)
        recovered = []
        for st in self.list(keys):
            if st.status != "running":
                continue
            dead = _pid_dead_here(st.worker)
            if dead or (st.heartbeat_at or st.updated_at) < cutoff:
                why = f"worker {st.worker} died" if dead else f"no heartbeat from worker {st.worker} since " \
                                                             f"{(st.heartbeat_at or st.updated_at):%Y-%m-%d %H:%M:%S}"
                if self.fail(st.key, st.attempts, f"{why} during attempt {st.attempts}"):
                    recovered.append(st.key)
        return recovered

    def claim(self, key: str, max_attempts: int, worker: str | None = None) -> int | None:
        """Take the job for a new attempt; the attempt number, or None if it is not eligible."""
        now = utcnow()
        with self.sessions.begin() as s:
            r = s.get(JobRow, key)
            if r is None:
                return None
            eligible = r.status == "queued" or (r.status == "failed" and r.attempts < max_attempts)
            if not eligible:
                return None
            attempt = r.attempts + 1
            res = s.execute(update(JobRow).where(JobRow.key == key, JobRow.status == r.status,
                                                 JobRow.attempts == r.attempts)
                            .values(status="running", attempts=attempt, worker=worker or worker_id(),
                                    started_at=now, heartbeat_at=now, updated_at=now, finished_at=None)
                            .execution_options(synchronize_session=False))
            return attempt if res.rowcount == 1 else None

    def _update(self, key: str, attempt: int, **values: Any) -> bool:
        now = utcnow()
        values.setdefault("updated_at", now)
        with self.sessions.begin() as s:
            res = s.execute(update(JobRow).where(JobRow.key == key, JobRow.attempts == attempt,
                                                 JobRow.status == "running").values(**values))
            return res.rowcount == 1

    def started(self, key: str, attempt: int, work_dir: str, log_path: str, worker: str | None = None) -> bool:
        return self._update(key, attempt, worker=worker or worker_id(), work_dir=work_dir, log_path=log_path,
                            heartbeat_at=utcnow())

    def heartbeat(self, key: str, attempt: int) -> bool:
        return self._update(key, attempt, heartbeat_at=utcnow())

    def finish(self, key: str, attempt: int, asset_id: str) -> bool:
        now = utcnow()
        return self._update(key, attempt, status="done", asset_id=asset_id, error=None, finished_at=now)

    def fail(self, key: str, attempt: int, error: str) -> bool:
        return self._update(key, attempt, status="failed", error=error[:4000], finished_at=utcnow())

    def counts(self, keys: Iterable[str] | None = None) -> dict[str, int]:
        out = {s: 0 for s in ("queued", "running", "done", "failed")}
        for st in self.list(keys):
            out[st.status] = out.get(st.status, 0) + 1
        return out


def is_eligible(st: JobState, max_attempts: int) -> bool:
    return st.status == "queued" or (st.status == "failed" and st.attempts < max_attempts)


__all__ = ["JobStore", "JobState", "worker_id", "is_eligible", "HEARTBEAT_S", "STALE_AFTER_S"]
