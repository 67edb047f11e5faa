"""capture -> fit -> bake in one job folder: what ``recon fit``, ``from recon import fit`` and
every ingestion job run.

    from recon import fit
    result = fit("cat.mp4", out="out/cat")       # a video, image folder, transforms.json, ...
    result.asset_dir / "cat.glb", result.metrics["psnr_heldout_baked"], result.eval["psnr"]
    result.kind                                  # the model that was fitted: "object" for now

The job folder (DESIGN.md):

    out/capture/  the source read, cameras solved and normalised (a recon capture folder
                  given as the source is used in place; an in-memory Capture is not written)
    out/fit/      checkpoints/, config.yaml, log.jsonl, eval.json (recon.fit)
    out/asset/    <name>.glb/.obj/.ply, metrics.json, thumb.png, turntable.mp4, report.html,
                  provenance.json (recon.bake; written all at once). A capture with ground
                  truth (recon synth's gt_mesh.ply) adds Chamfer / F-score to metrics.json.

With ``resume`` every stage whose output is complete is reused and an unfinished fit
continues from its last checkpoint, so a rerun after a crash picks up where it stopped.
This module sits above recon.bake and below recon.jobs (which runs it per job).
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from .core.config import Config, config_hash, load_config
from .core.errors import START_AGAIN, InputError, read_json_object
from .core.log import get_logger
from .core.types import SUBJECT_KINDS, Capture
from .ops.backend import use_backend

log = get_logger(__name__)

SUBJECT_MODELS = ("object",)  # subjects with their own model; the others are fitted as static objects for now
STAGES = ("capture", "fit", "asset")


def fitted_kind(subject: str) -> str:
    """The model that really fits a capture of ``subject``: its own when it has one, else ``object``."""
    return subject if subject in SUBJECT_MODELS else "object"


@dataclass(frozen=True)
class PipelineResult:
    out: Path  # the job folder
    eval: dict  # the field's held-out scores (fit/eval.json)
    asset_dir: Path | None  # out/asset, None when not baked
    metrics: dict | None  # asset/metrics.json
    kind: str = "object"  # the model that was fitted (what the asset is recorded as)
    requested_subject: str = "object"  # what the caller asked for

    @property
    def fit_dir(self) -> Path:
        return self.out / "fit"


def _is_capture_folder(data) -> bool:
    return not isinstance(data, Capture) and Path(data).is_dir() and (Path(data) / "capture.json").is_file() \
        and (Path(data) / "transforms.json").is_file()


def _prepare_out(out: Path, resume: bool, overwrite: bool, uses_capture_dir: bool) -> None:
    held = [out / s for s in STAGES if (out / s).exists() and (s != "capture" or uses_capture_dir)]
    if not held or resume:
        return
    if not overwrite:
        raise InputError(out, f"already holds a job ({', '.join(p.name + '/' for p in held)}): pass --resume to "
                              "continue it or --overwrite to start again")
    for p in held:
        shutil.rmtree(p)


def _source_info(data, cap: Capture, cap_dir: Path | None) -> dict:
    meta = {}
    if cap_dir is not None and (cap_dir / "capture.json").is_file():
        fix = "write it again (recon capture --overwrite)" if cap_dir == Path(data) else START_AGAIN
        meta = read_json_object(cap_dir / "capture.json", fix).get("source")
        meta = meta if isinstance(meta, dict) else {}
    src = None if isinstance(data, Capture) else str(Path(data).resolve())
    return {"source_path": src, "source_hash": meta.get("hash") or cap.meta.get("source_hash"),
            "source_kind": meta.get("kind") or cap.meta.get("source_kind")}


def _finished_fit(eval_path: Path, cfg: Config) -> dict | None:
    """eval.json's scores when that fit already met this config's budget, else None."""
    if not eval_path.is_file():
        return None
    ev = read_json_object(eval_path)
    fc = cfg.fit
    if ev.get("iterations", 0) >= fc.iterations or (fc.minutes and ev.get("train_seconds", 0) >= 60 * fc.minutes):
        log.info("fit already finished: %s", eval_path)
        return ev
    return None


def fit(data, out: str | Path | None = None, *, subject: str = "object", name: str | None = None,
        preset: str | None = "object-fast", overrides: list[str] | tuple[str, ...] = (),
        config: Config | None = None, config_file: str | Path | None = None, bake: bool = True,
        resume: bool = False, overwrite: bool = False, provenance: dict | None = None) -> PipelineResult:
    """Capture -> fit -> bake ``data`` into the job folder ``out`` (default ``out/<name>``).

    data: anything ``recon.load_capture`` reads (video, image folder, transforms.json,
        COLMAP, IDR/DTU), a recon capture folder, or an in-memory Capture (then ``out`` is required).
    subject: object, articulated, head, body or garment (only object has its own model yet;
        the others are fitted as static objects, with a warning, and recorded as ``kind: object``
        with ``requested_subject`` saying what was asked for).
    config: a resolved Config; else ``preset`` + ``config_file`` + ``overrides``.
    bake: False stops after the fit (no asset folder).
    resume: reuse finished stages and continue an unfinished fit; overwrite: replace an
        earlier job in ``out``; without either, an existing job in ``out`` is an error.
    provenance: extra fields for provenance.json (licence, operator, notes, ...).
    """
    from .capture import capture_to_folder, load_capture
    from .fit.api import default_out, fit as fit_field, load_model

    if subject not in SUBJECT_KINDS:
        raise InputError(None, f"unknown subject '{subject}' (one of {', '.join(SUBJECT_KINDS)})")
    kind = fitted_kind(subject)
    if kind != subject:
        log.warning("no %s model yet: fitting the capture as a static object (recorded as kind 'object', "
                    "requested_subject '%s')", subject, subject)
    cfg = config or load_config(preset, config_file, list(overrides))
    if isinstance(data, Capture):
        if out is None:
            raise InputError(None, "fit: 'out' is required when data is an in-memory Capture")
        name = name or Path(out).name
    else:
        if not Path(data).exists():
            raise InputError(data, "no such file or folder")
        name = name or default_out(data).name
    out = Path(out) if out is not None else Path("out") / name
    in_place = isinstance(data, Capture) or _is_capture_folder(data)
    _prepare_out(out, resume, overwrite, uses_capture_dir=not in_place)

    # capture
    cap_dir = None if isinstance(data, Capture) else Path(data) if in_place else out / "capture"
    if isinstance(data, Capture):
        cap = data
    else:
        if not in_place and not (resume and (cap_dir / "capture.json").is_file()):
            capture_to_folder(data, cap_dir, cfg.capture, overwrite=True)
        # the folder we wrote holds the segmenter's masks already: do not segment again
        reread = cfg.capture if in_place else cfg.capture.model_copy(update={"segmenter": "none", "masks": "auto"})
        cap = load_capture(cap_dir, reread)

    # fit
    fit_eval = _finished_fit(out / "fit" / "eval.json", cfg) if resume else None
    if fit_eval is None:
        fit_eval = fit_field(cap, out=out, config=cfg, resume=resume).eval
    if not bake:
        return PipelineResult(out, fit_eval, None, None, kind, subject)

    # bake
    from .bake import bake_asset

    asset_dir = out / "asset"
    if resume and (asset_dir / "provenance.json").is_file():
        log.info("asset already baked: %s", asset_dir)
        return PipelineResult(out, fit_eval, asset_dir, read_json_object(asset_dir / "metrics.json"), kind, subject)
    from . import __version__

    prov = {"name": name, **_source_info(data, cap, cap_dir), "config_hash": config_hash(cfg),
            "preset": preset if config is None else None, "overrides": list(overrides), "recon_version": __version__,
            **(provenance or {}), "kind": kind, "requested_subject": subject}  # extras cannot restate the kind
    with use_backend(cfg.backend):  # the bake renders the field with the kernels the fit used
        model = load_model(out)
        surface = model.field
        if model.field.kind == "density" and cfg.bake.density_surface == "depth_fusion":
            from .bake.depth_fusion import fused_surface

            surface = fused_surface(model, cap, cfg.bake.resolution, cfg.bake.bound,
                                    max_views=cfg.bake.fusion_views, trunc_voxels=cfg.bake.fusion_trunc_voxels)
        gt = cap_dir / "gt_mesh.ply" if cap_dir is not None and (cap_dir / "gt_mesh.ply").is_file() else None
        metrics = bake_asset(surface, model.field.normalization, out, name, capture=cap, cfg=cfg.bake,
                             occupancy=model.grid, gt_mesh=gt, fit_eval=fit_eval,
                             provenance={k: v for k, v in prov.items() if v is not None}, overwrite=True)
    return PipelineResult(out, fit_eval, asset_dir, metrics, kind, subject)
