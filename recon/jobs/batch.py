"""``recon ingest``: run a manifest's jobs into a library, resumably.

    from recon.jobs import ingest
    result = ingest("captures.yaml", library="lib.db", runner="local", workers=2)

Jobs already done are skipped, failed ones run again while they have attempts left
(``retries`` counts across runs: a job gets at most 1 + retries attempts), and running
jobs whose worker died are marked failed first, so a rerun after any crash picks up
where the last run stopped.

The local runner starts workers with multiprocessing's fork server, so a script that calls
``ingest`` must guard its entry point with ``if __name__ == "__main__":`` (as any script
using multiprocessing must); the ``recon`` command does.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..core.log import get_logger
from .manifest import JobSpec, load_manifest
from .state import STALE_AFTER_S, JobState, JobStore, is_eligible

log = get_logger(__name__)


@dataclass
class IngestResult:
    states: list[JobState]
    skipped: list[str] = field(default_factory=list)  # keys already done before this run

    def count(self, status: str) -> int:
        return sum(1 for s in self.states if s.status == status)

    @property
    def ok(self) -> bool:
        return all(s.status == "done" for s in self.states)


def default_work_root(manifest: Path) -> Path:
    """``<manifest folder>/<manifest stem>-work``: one sub-folder per job."""
    manifest = Path(manifest).resolve()
    return manifest.parent / f"{manifest.stem}-work"


def ingest(manifest: str | Path, library: str | Path | None = None, store: str | None = None,
           runner: str = "local", workers: int | None = None, address: str | None = None, retries: int = 2,
           work_root: str | Path | None = None, pipeline: str | None = None, cpus_per_job: float = 1.0,
           gpus_per_job: float | None = None, stale_after: float = STALE_AFTER_S,
           on_event: Callable[[JobState], None] | None = None) -> IngestResult:
    """Run every job of ``manifest`` that is not done; see the module doc."""
    from ..library.library import Library
    from .runners import make_runner
    from .worker import JobContext

    specs = load_manifest(manifest)
    keys = [s.key for s in specs]
    max_attempts = 1 + max(0, int(retries))
    with Library(library, store=store) as lib:
        lib.claim_store()  # workers add into this store: fail now, not in every job, if it is wrong
        jobs = JobStore(lib)
        jobs.register(specs, str(Path(manifest).resolve()))
        for key in jobs.recover_stale(keys, stale_after=stale_after):
            log.warning(f"job {key}: its worker died in an earlier run; marked failed")
        states = {s.key: s for s in jobs.list(keys)}
        skipped = [k for k in keys if states[k].status == "done"]
        todo: list[JobSpec] = [s for s in specs if is_eligible(states[s.key], max_attempts)]
        out_of_attempts = sum(1 for k in keys if states[k].status == "failed" and k not in {s.key for s in todo})
        running = sum(1 for k in keys if states[k].status == "running")
        log.info(f"{len(specs)} jobs: {len(skipped)} done already, {len(todo)} to run"
                 + (f", {running} running in another ingest run" if running else "")
                 + (f", {out_of_attempts} failed with no attempts left (raise --retries)" if out_of_attempts
                    else ""))
        if todo:
            ctx = JobContext(library_url=lib.url, store_url=lib.store.url,
                             work_root=str(Path(work_root or default_work_root(Path(manifest))).resolve()),
                             pipeline=pipeline)
            make_runner(runner, ctx, jobs, max_attempts, workers=workers, address=address, cpus_per_job=cpus_per_job,
                        gpus_per_job=gpus_per_job, on_event=on_event).run(todo)
        return IngestResult(jobs.list(keys), skipped)


def job_states(library: str | Path | None = None, manifest: str | Path | None = None,
               store: str | None = None) -> list[JobState]:
    """The jobs of ``manifest`` (all jobs in the catalogue when None), oldest first; refuses a
    library that does not exist (InputError) rather than creating it."""
    from ..library.library import Library

    keys = None if manifest is None else [s.key for s in load_manifest(manifest)]
    with Library(library, store=store, create=False) as lib:
        return JobStore(lib).list(keys)
