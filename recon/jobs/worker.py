"""What a worker process (local pool or Ray task) does with one claimed job attempt.

It opens the library itself (connections do not cross processes), records where it runs,
sends heartbeats, logs to ``<work>/job.log``, runs the pipeline, adds the asset, and
records done or failed. Errors become the job's error, never an exception out of here;
a worker killed outright leaves the job running until its runner (or a later
``recon ingest``) notices the dead worker and marks it failed.
"""
from __future__ import annotations

import logging
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path

from .manifest import JobSpec
from .state import HEARTBEAT_S, JobStore, worker_id


@dataclass(frozen=True)
class JobContext:
    """What every worker of a batch shares; plain strings so it pickles to any process."""

    library_url: str
    store_url: str
    work_root: str
    pipeline: str | None = None  # None: recon.jobs.pipeline.run_pipeline


@dataclass(frozen=True)
class JobOutcome:
    key: str
    attempt: int
    status: str  # "done" or "failed"
    asset_id: str | None = None
    error: str | None = None


def work_dir_for(ctx: JobContext, spec: JobSpec) -> Path:
    return Path(ctx.work_root) / f"{spec.name}-{spec.key}"


class _Heartbeat(threading.Thread):
    def __init__(self, jobs: JobStore, key: str, attempt: int, every: float = HEARTBEAT_S):
        super().__init__(daemon=True, name=f"heartbeat-{key}")
        self.jobs, self.key, self.attempt, self.every = jobs, key, attempt, every
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(self.every):
            try:
                self.jobs.heartbeat(self.key, self.attempt)
            except Exception:  # a missed heartbeat is harmless; the next one may pass
                pass


def execute_job(ctx: JobContext, spec_dict: dict, attempt: int) -> JobOutcome:
    from ..library.library import Library
    from .pipeline import resolve_pipeline

    spec = JobSpec.from_dict(spec_dict)
    work = work_dir_for(ctx, spec)
    work.mkdir(parents=True, exist_ok=True)
    log_path = work / "job.log"
    handler = logging.FileHandler(log_path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("recon")
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    log = logging.getLogger("recon.jobs.worker")
    library = Library(ctx.library_url, store=ctx.store_url)
    jobs = JobStore(library)
    beat = _Heartbeat(jobs, spec.key, attempt)
    try:
        if not jobs.started(spec.key, attempt, str(work), str(log_path), worker_id()):
            return JobOutcome(spec.key, attempt, "failed", error="attempt no longer current (claimed elsewhere)")
        beat.start()
        log.info(f"job {spec.name} ({spec.key}) attempt {attempt} on {worker_id()}: {spec.source}")
        try:
            asset_dir = resolve_pipeline(ctx.pipeline)(spec, work)
            # the kind is what the pipeline really fitted (provenance.json); the manifest's is what was asked
            asset = library.add(asset_dir, name=spec.name, tags=spec.tags, licence=spec.licence,
                                operator=spec.operator, notes=spec.notes)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.error(f"job {spec.name} failed: {error}")
            log.info(f"job {spec.name} traceback:\n{traceback.format_exc()}")  # job.log, not the console
            jobs.fail(spec.key, attempt, error)
            return JobOutcome(spec.key, attempt, "failed", error=error)
        jobs.finish(spec.key, attempt, asset.id)
        log.info(f"job {spec.name} done: {asset.name} v{asset.version} ({asset.id})")
        return JobOutcome(spec.key, attempt, "done", asset_id=asset.id)
    finally:
        beat.stop.set()
        root.removeHandler(handler)
        handler.close()
        library.close()
