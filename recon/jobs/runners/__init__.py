"""Runners: where job attempts execute. ``Runner.run`` is the shared scheduling loop (claim,
submit, wait, record dead workers, retry while attempts remain); subclasses only say how to
start an attempt and how to wait for attempts (local process pool, Ray tasks)."""
from __future__ import annotations

import signal
import threading
import time
from collections import deque
from typing import Any, Callable, Hashable, Iterable

from ...core.log import get_logger
from ..manifest import JobSpec
from ..state import HEARTBEAT_S, JobState, JobStore, is_eligible, worker_id
from ..worker import JobContext

log = get_logger(__name__)


class Runner:
    name = "runner"

    def __init__(self, ctx: JobContext, jobs: JobStore, max_attempts: int, workers: int | None = None,
                 on_event: Callable[[JobState], None] | None = None):
        self.ctx, self.jobs, self.max_attempts = ctx, jobs, max_attempts
        self.workers = workers
        self.on_event = on_event or (lambda st: None)
        self.driver = worker_id()  # claims name the driver until the worker records itself

    # -- what a runner provides ---------------------------------------------------------------
    def capacity(self) -> int:
        """Attempts that may run at once."""
        raise NotImplementedError

    def submit(self, spec: JobSpec, attempt: int) -> Hashable:
        """Start an attempt; return a handle for ``wait``."""
        raise NotImplementedError

    def wait(self, handles: list[Hashable], timeout: float) -> list[tuple[Hashable, str | None]]:
        """Handles whose attempt ended, each with None (the worker reported) or why it died."""
        raise NotImplementedError

    def cancel(self, handle: Hashable) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    # -- the loop ----------------------------------------------------------------------------
    def run(self, specs: Iterable[JobSpec]) -> None:
        queue = deque(specs)
        active: dict[Any, tuple[JobSpec, int]] = {}
        last_beat = time.monotonic()
        restore = _exit_on_sigterm()
        try:
            while queue or active:
                if time.monotonic() - last_beat > HEARTBEAT_S:
                    # The driver vouches for its attempts too, so one still waiting for a worker
                    # (queued in Ray) is not taken for dead by another ingest run.
                    for spec, attempt in active.values():
                        self.jobs.heartbeat(spec.key, attempt)
                    last_beat = time.monotonic()
                while queue and len(active) < self.capacity():
                    spec = queue.popleft()
                    attempt = self.jobs.claim(spec.key, self.max_attempts, worker=self.driver)
                    if attempt is None:
                        continue  # done, out of attempts, or taken by another runner meanwhile
                    try:
                        active[self.submit(spec, attempt)] = (spec, attempt)
                    except BaseException as exc:
                        self.jobs.fail(spec.key, attempt, f"could not start: {type(exc).__name__}: {exc}")
                        raise
                    log.info(f"{spec.name}: attempt {attempt} started ({self.name})")
                if not active:
                    break
                for handle, died in self.wait(list(active), timeout=1.0):
                    spec, attempt = active.pop(handle)
                    if died is not None:
                        # Only changes the job if this attempt is still recorded as running.
                        self.jobs.fail(spec.key, attempt, f"worker died during attempt {attempt}: {died}")
                    st = self.jobs.get(spec.key)
                    if st.status == "running" and st.attempts == attempt:
                        self.jobs.fail(spec.key, attempt, "worker ended without reporting a result")
                        st = self.jobs.get(spec.key)
                    self.on_event(st)
                    if is_eligible(st, self.max_attempts):
                        queue.append(spec)
        except BaseException:
            for handle, (spec, attempt) in active.items():
                self.cancel(handle)
                self.jobs.fail(spec.key, attempt, "interrupted: the ingest run stopped")
            raise
        finally:
            restore()
            self.close()


def _exit_on_sigterm() -> Callable[[], None]:
    """Make SIGTERM unwind like Ctrl-C (workers stopped, their jobs marked failed and retryable)
    instead of killing the driver outright; returns the function that restores the old handler."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum, frame):
        raise SystemExit(128 + signum)

    old = signal.signal(signal.SIGTERM, handler)
    return lambda: signal.signal(signal.SIGTERM, old)


def make_runner(kind: str, ctx: JobContext, jobs: JobStore, max_attempts: int, workers: int | None = None,
                address: str | None = None, cpus_per_job: float = 1.0, gpus_per_job: float | None = None,
                on_event: Callable[[JobState], None] | None = None) -> Runner:
    if kind == "local":
        from .local import LocalRunner

        return LocalRunner(ctx, jobs, max_attempts, workers, on_event)
    if kind == "ray":
        from .ray_runner import RayRunner

        return RayRunner(ctx, jobs, max_attempts, workers, on_event, address=address, cpus_per_job=cpus_per_job,
                         gpus_per_job=gpus_per_job)
    from ...core.errors import InputError

    raise InputError(None, f"unknown runner '{kind}' (local or ray)")
