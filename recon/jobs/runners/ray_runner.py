"""Ray runner: each attempt is a Ray task with resource requests (CPUs, and a GPU when the
cluster has GPUs), on the cluster at ``address`` (``ray://host:10001``, ``host:6379``,
``auto``; default: $RAY_ADDRESS, else the cluster ``ray start`` runs on this machine, else a
local Ray started for this run).

Ray's own task retries are off: a worker that dies shows up as a failed attempt in the
catalogue, and the shared loop retries it while attempts remain. Workers need recon
installed and the library (database and blob store) reachable under the same URLs.
"""
from __future__ import annotations

import logging
import time
from typing import Hashable

from ...core.errors import optional_import
from ..manifest import JobSpec
from ..worker import JobContext, JobOutcome, execute_job
from . import Runner


def _ray_execute(ctx: JobContext, spec_dict: dict, attempt: int) -> JobOutcome:
    from ...core.log import setup_logging

    setup_logging(quiet=True)
    return execute_job(ctx, spec_dict, attempt)


class RayRunner(Runner):
    name = "ray"

    def __init__(self, *args, address: str | None = None, cpus_per_job: float = 1.0,
                 gpus_per_job: float | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.ray = ray = optional_import("ray", "the Ray runner (--runner ray)", "ray[client]")
        # A process already connected to Ray (a notebook, a service, a test) keeps its connection.
        self._owns_connection = not ray.is_initialized()
        if self._owns_connection:
            init_kw = dict(log_to_driver=False, logging_level=logging.WARNING)
            if address is None:
                init_kw["include_dashboard"] = False
            # A Ray Client session starts a server process for this driver on the cluster, which
            # can fail transiently on a loaded head ("Starting Ray client server failed"): try again.
            tries = 3 if str(address or "").startswith("ray://") else 1
            for attempt in range(tries):
                try:
                    ray.init(address=address, **init_kw)
                    break
                except (ConnectionError, RuntimeError, ValueError) as exc:
                    if attempt == tries - 1 or "client server failed" not in str(exc):
                        from ...core.errors import InputError

                        first = (str(exc).strip().splitlines() or [""])[0]
                        raise InputError(None, f"cannot connect to the Ray cluster at {address or 'default'}: "
                                               f"{first}") from None
                    time.sleep(2.0 * (attempt + 1))
        resources = ray.cluster_resources()
        if gpus_per_job is None:
            gpus_per_job = 1.0 if resources.get("GPU", 0) >= 1 else 0.0
        self.cpus_per_job, self.gpus_per_job = cpus_per_job, gpus_per_job
        self._cluster_cpus = resources.get("CPU", 1)
        self._task = ray.remote(_ray_execute)
        self._options = dict(num_cpus=cpus_per_job, num_gpus=gpus_per_job, max_retries=0, retry_exceptions=False)

    def capacity(self) -> int:
        return max(1, self.workers or int(self._cluster_cpus // max(self.cpus_per_job, 1e-3)))

    def submit(self, spec: JobSpec, attempt: int) -> Hashable:
        return self._task.options(name=f"recon-job-{spec.name}", **self._options).remote(self.ctx, spec.to_dict(),
                                                                                          attempt)

    def wait(self, handles: list[Hashable], timeout: float) -> list[tuple[Hashable, str | None]]:
        ready, _ = self.ray.wait(handles, num_returns=len(handles), timeout=timeout)
        ended = []
        for ref in ready:
            try:
                self.ray.get(ref)
                ended.append((ref, None))
            except Exception as exc:  # WorkerCrashedError, TaskCancelledError, RayTaskError ...
                first = (str(exc).strip().splitlines() or [""])[0][:300]
                ended.append((ref, f"ray: {type(exc).__name__}: {first}"))
        return ended

    def cancel(self, handle: Hashable) -> None:
        try:
            self.ray.cancel(handle, force=True)
        except Exception:
            pass

    def close(self) -> None:
        if self._owns_connection:
            self.ray.shutdown()
