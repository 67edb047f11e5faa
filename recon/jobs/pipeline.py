"""The per-job pipeline: capture -> fit -> bake, in the job's work folder, returning the asset folder.

    work_dir/capture/   recon.capture.capture_to_folder (skipped when already complete)
    work_dir/fit/       recon.fit.api.fit (resumes from its last checkpoint)
    work_dir/asset/     the baker (recon.bake): what Library.add takes

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

from ..core.errors import InputError, ReconError
from .manifest import JobSpec

PipelineFn = Callable[[JobSpec, Path], Path]


def run_pipeline(job: JobSpec, work_dir: Path) -> Path:
    """Run capture, fit and bake for ``job`` in ``work_dir``; return the asset folder."""
    from ..capture import capture_to_folder
    from ..core.config import load_config
    from ..fit.api import fit

    work_dir = Path(work_dir)
    cfg = load_config(job.preset, job.config, list(job.overrides))
    cap_dir = work_dir / "capture"
    if not (cap_dir / "capture.json").is_file():  # capture_to_folder writes atomically
        capture_to_folder(job.source, cap_dir, cfg.capture, overwrite=True)
    fit(cap_dir, out=work_dir, config=cfg, resume=(work_dir / "fit" / "checkpoints").is_dir())
    asset_dir = _bake()(work_dir, cfg)
    return Path(asset_dir) if asset_dir is not None else work_dir / "asset"


def _bake() -> Callable:
    """The baker's entry point: ``bake(job_dir, config) -> asset folder`` (recon.bake)."""
    import recon.bake as bake_module

    for name in ("bake", "bake_asset"):
        fn = getattr(bake_module, name, None)
        if callable(fn):
            return fn
    raise ReconError("the bake stage (recon.bake.bake) is not available in this version of recon")


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
