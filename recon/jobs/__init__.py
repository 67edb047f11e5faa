"""recon.jobs: batch ingestion. Manifests of captures, job state in the library's catalogue,
and runners (a local process pool, or Ray) that take each capture through
capture -> fit -> bake -> library add, resumably.

    from recon.jobs import ingest
    ingest("captures.yaml", library="~/.recon/library.db", runner="local", workers=2)
"""
from __future__ import annotations

__all__ = ["ingest", "job_states", "load_manifest", "JobSpec"]


def __getattr__(name: str):
    if name in ("ingest", "job_states"):
        from . import batch as mod

        return getattr(mod, name)
    if name in ("load_manifest", "JobSpec"):
        from . import manifest

        return getattr(manifest, name)
    raise AttributeError(f"module 'recon.jobs' has no attribute '{name}'")
