"""The per-job pipeline: ``recon.pipeline.fit`` (capture -> fit -> bake) in the job's work
folder with resume on, returning the asset folder (with provenance.json: what Library.add takes).

``resolve_pipeline(spec)`` lets a batch use another function with the same signature
(``module:function`` or ``path/to/file.py:function``): tests inject a fast stand-in, and a
site can wrap the stages with its own.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Callable

from ..core.errors import InputError
from .manifest import JobSpec

PipelineFn = Callable[[JobSpec, Path], Path]


def run_pipeline(job: JobSpec, work_dir: Path) -> Path:
    """Run ``recon.pipeline.fit`` for ``job`` in ``work_dir`` (resuming what an earlier attempt
    finished); return the asset folder."""
    from ..pipeline import fit

    extra = {"licence": job.licence, "operator": job.operator, "notes": job.notes}
    res = fit(job.source, Path(work_dir), subject=job.kind, name=job.name, preset=job.preset,
              config_file=job.config, overrides=list(job.overrides), resume=True,
              provenance={k: v for k, v in extra.items() if v is not None})
    return res.asset_dir


def resolve_pipeline(spec: str | None) -> PipelineFn:
    """``None``: ``run_pipeline``. Else ``package.module:function`` or ``file.py:function``."""
    if not spec:
        return run_pipeline
    target, sep, fn_name = spec.rpartition(":")
    if not sep or not target or not fn_name:
        raise InputError(None, f"pipeline '{spec}' must look like module:function or file.py:function")
    if target.endswith(".py"):
        path = Path(target).expanduser().resolve()
        if not path.is_file():
            raise InputError(path, "pipeline file not found")
        mod_name = "recon_pipeline_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]
        module = sys.modules.get(mod_name)
        if module is None:
            s = importlib.util.spec_from_file_location(mod_name, path)
            module = importlib.util.module_from_spec(s)
            sys.modules[mod_name] = module
            s.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise InputError(None, f"pipeline module '{target}' cannot be imported: {exc}") from None
    fn = getattr(module, fn_name, None)
    if not callable(fn):
        raise InputError(None, f"pipeline '{spec}': no function '{fn_name}' in {target}")
    return fn
