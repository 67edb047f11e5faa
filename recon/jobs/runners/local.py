"""Local runner: a pool of worker processes, one fresh process per attempt, so a crash or kill
of one attempt touches no other and each starts with clean memory.

Processes come from a fork server (``multiprocessing`` "forkserver"): a clean process that
has imported the worker's modules once and forks each attempt from there. That is as safe
as spawning (the server holds no threads, no CUDA context, no database connection) and
saves every attempt the interpreter start and imports.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
from multiprocessing.connection import wait as wait_sentinels
from typing import Hashable

from ..manifest import JobSpec
from ..worker import JobContext, execute_job
from . import Runner


def _child_main(ctx: JobContext, spec_dict: dict, attempt: int) -> None:
    from ...core.log import setup_logging

    setup_logging(quiet=True)  # the job's own log file gets everything (worker.execute_job)
    execute_job(ctx, spec_dict, attempt)


def describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class LocalRunner(Runner):
    name = "local"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._mp = mp.get_context("forkserver")
        self._mp.set_forkserver_preload(["recon.jobs.worker", "recon.library.library"])
        self._procs: dict[int, mp.Process] = {}

    def capacity(self) -> int:
        return max(1, self.workers or min(4, os.cpu_count() or 1))

    def submit(self, spec: JobSpec, attempt: int) -> Hashable:
        p = self._mp.Process(target=_child_main, args=(self.ctx, spec.to_dict(), attempt),
                             name=f"recon-job-{spec.name}", daemon=False)
        p.start()
        self._procs[p.sentinel] = p
        return p.sentinel

    def wait(self, handles: list[Hashable], timeout: float) -> list[tuple[Hashable, str | None]]:
        ended = []
        for sentinel in wait_sentinels(handles, timeout=timeout):
            p = self._procs.pop(sentinel)
            p.join()
            ended.append((sentinel, None if p.exitcode == 0 else f"worker process {p.pid} {describe_exit(p.exitcode)}"))
            p.close()
        return ended

    def cancel(self, handle: Hashable) -> None:
        p = self._procs.pop(handle, None)
        if p is not None:
            p.terminate()
            p.join(10)
            if p.exitcode is None:
                p.kill()
                p.join()

    def close(self) -> None:
        for h in list(self._procs):
            self.cancel(h)
