"""The per-job pipeline: capture -> fit -> bake, in the job's work folder, returning the asset folder.

    work_dir/capture/   recon.capture.capture_to_folder (skipped when already complete)
    work_dir/fit/       recon.fit.api.fit (resumes from its last checkpoint)
    work_dir/asset/     recon.bake.bake_asset, plus provenance.json: what Library.add takes

``resolve_pipeline(spec)`` lets a batch use another function with the same signature
(``module:function`` or ``path/to/file.py:function``): tests inject a fast stand-in, and a
site can wrap the stages with its own.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import sys
from pathlib import Path
from typing import Callable

from ..core.errors import InputError
from .manifest import JobSpec

PipelineFn = Callable[[JobSpec, Path], Path]


def run_pipeline(job: JobSpec, work_dir: Path) -> Path:
    """Run capture, fit and bake for ``job`` in ``work_dir``; return the asset folder.

    Each stage whose output is complete is skipped, so a retried job resumes: the capture
    folder is written atomically, fit resumes from its last checkpoint, and a finished
    asset folder (with provenance.json, written last) is reused.
    """
    from ..bake import bake_asset
    from ..capture import capture_to_folder, load_capture
    from ..core.config import load_config
    from ..fit.api import fit, load_field

    work_dir = Path(work_dir)
    asset_dir = work_dir / "asset"
    if (asset_dir / "provenance.json").is_file():
        return asset_dir
    cfg = load_config(job.preset, job.config, list(job.overrides))
    cap_dir = work_dir / "capture"
    if not (cap_dir / "capture.json").is_file():
        capture_to_folder(job.source, cap_dir, cfg.capture, overwrite=True)
    result = fit(cap_dir, out=work_dir, config=cfg, resume=(work_dir / "fit" / "checkpoints").is_dir())
    capture = load_capture(cap_dir, cfg.capture)
    bake_asset(load_field(work_dir), None, work_dir, job.name, capture=capture, cfg=cfg.bake, overwrite=True)
    _complete_asset(asset_dir, job, cfg, cap_dir, result.eval)
    return asset_dir


def _complete_asset(asset_dir: Path, job: JobSpec, cfg, cap_dir: Path, fit_eval: dict) -> None:
    """Add the fit's held-out scores to metrics.json and write provenance.json (last: it marks
    the folder complete)."""
    from .. import __version__
    from ..core.config import config_hash
    from ..core.fsutil import atomic_write_bytes

    metrics_path = asset_dir / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    metrics["fit"] = fit_eval
    # "psnr": the baked asset's against held-out photos when bake measured it, else the field's.
    if metrics.get("psnr_heldout", fit_eval.get("psnr")) is not None:
        metrics.setdefault("psnr", metrics.get("psnr_heldout", fit_eval.get("psnr")))
    for key in ("ssim", "mask_iou"):
        if key in fit_eval:
            metrics.setdefault(key, fit_eval[key])
    atomic_write_bytes(metrics_path, json.dumps(metrics, indent=2).encode())
    capture = json.loads((cap_dir / "capture.json").read_text())
    source = capture.get("source") or {}
    provenance = {"name": job.name, "kind": job.kind, "source_path": job.source,
                  "source_hash": source.get("hash"), "source_kind": source.get("kind"),
                  "config_hash": config_hash(cfg), "preset": job.preset, "overrides": list(job.overrides),
                  "recon_version": __version__, "licence": job.licence, "operator": job.operator,
                  "notes": job.notes}
    atomic_write_bytes(asset_dir / "provenance.json",
                       json.dumps({k: v for k, v in provenance.items() if v is not None}, indent=2).encode())


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
