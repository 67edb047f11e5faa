"""capture -> fit -> bake in one job folder: what ``recon fit``, ``from recon import fit`` and
every ingestion job run.

    from recon import fit
    result = fit("cat.mp4", out="out/cat")       # a video, image folder, transforms.json, ...
    result.asset_dir / "cat.glb", result.metrics["psnr_heldout_baked"], result.eval["psnr"]
    result.kind                                  # the model that was fitted: "object", "articulated" or "head"
    fit("photo.jpg", out="out/me", subject="head")  # a head: ICT-FaceKit fitted to face landmarks (recon.heads.job)

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
from .core.log import get_logger, log_event
from .core.types import SUBJECT_KINDS, Capture
from .ops.backend import use_backend

log = get_logger(__name__)

SUBJECT_MODELS = ("object", "articulated", "head")  # subjects with their own model; the others are fitted as static objects
STAGES = ("capture", "fit", "asset")


def fitted_kind(subject: str) -> str:
    """The model that really fits a capture of ``subject``: its own when it has one, else ``object``
    (``auto`` is decided from the capture: ``pick_subject``)."""
    return subject if subject in SUBJECT_MODELS or subject == "auto" else "object"


def pick_subject(cap: Capture) -> tuple[str, str]:
    """The model for ``subject="auto"`` and why: a subject that moves against the background and does not
    register as one rigid body (SfM on it alone failed, so the cameras are the scene's) is articulated;
    anything else is an object."""
    masks = (cap.meta.get("masks") or {}).get("method")
    region = (cap.meta.get("sfm") or {}).get("region")
    if masks == "motion" and region == "background":
        return "articulated", ("the subject moves against the background and SfM on it alone did not register "
                               "(it is not one rigid body): articulated model")
    if masks == "motion":
        return "object", "the subject moves, but rigidly (SfM on it alone registered): object model"
    return "object", "the subject holds still: object model"


def still_subject(cap: Capture, cfg: Config) -> bool:
    """Whether the subject never moves against the background (``articulated_init.still_hull_iou`` of the
    training frames at the articulated model's size reaches ``articulated.still_iou``); says so when it does."""
    from .fit.trainer import split_indices
    from .models.articulated_init import capture_hull_iou

    need = cfg.articulated.still_iou
    if need <= 0 or cap.masks is None:
        return False
    train, _, _ = split_indices(cap)
    iou = capture_hull_iou(cap, train, cfg.articulated.train_size)
    log_event("still_check", hull_iou=round(iou, 3), threshold=need)
    if iou < need:
        return False
    log.warning("the subject never moves against the background: one motionless visual hull explains its masks "
                "(silhouette IoU %.2f >= articulated.still_iou %.2f): it is static; fitting it as a static object "
                "(kind 'object')", iou, need)
    return True


def rigid_check(cfg: Config):
    """The visual-hull check the capture layer's SfM uses to tell a subject that registers and holds still
    in its own cameras from one that bends (``recon.capture.sfm.solve_cameras_for``)."""
    from .models.articulated_init import capture_hull_iou

    return lambda cap: capture_hull_iou(cap, size=cfg.articulated.train_size)


def _is_photo(data) -> bool:
    from .core.imageio import IMAGE_SUFFIXES

    return not isinstance(data, Capture) and Path(data).is_file() and Path(data).suffix.lower() in IMAGE_SUFFIXES


def _fit_head(data, out: Path, name: str, cfg: Config, subject: str, resume: bool, bake: bool, preset, overrides,
              provenance) -> "PipelineResult":
    """The head model's job (``recon.heads.job``) in ``out``."""
    from . import __version__
    from .heads.job import fit_head_job

    src = None if isinstance(data, Capture) else str(Path(data).resolve())
    prov = {"name": name, "source_path": src, "config_hash": config_hash(cfg), "preset": preset,
            "overrides": overrides, "recon_version": __version__, **(provenance or {}), "requested_subject": subject}
    ev, metrics = fit_head_job(data, out, name, cfg, resume=resume, bake=bake,
                               provenance={k: v for k, v in prov.items() if v is not None})
    return PipelineResult(out, ev, out / "asset" if metrics is not None else None, metrics, "head", subject)


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


def _model_budget(cfg: Config, kind: str, overrides) -> Config:
    """The articulated model's own fit budget (``articulated.iterations`` / ``minutes``) in place of the
    preset's object budget, except where the caller set ``fit.iterations`` / ``fit.minutes`` itself."""
    if kind != "articulated":
        return cfg
    given = {o.split("=", 1)[0].strip() for o in overrides}
    ac = cfg.articulated
    update = {k: getattr(ac, k) for k in ("iterations", "minutes") if f"fit.{k}" not in given}
    return cfg.model_copy(update={"fit": cfg.fit.model_copy(update=update)}) if update else cfg


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


def fit(data, out: str | Path | None = None, *, subject: str = "auto", name: str | None = None,
        preset: str | None = "object-fast", overrides: list[str] | tuple[str, ...] = (),
        config: Config | None = None, config_file: str | Path | None = None, bake: bool = True,
        resume: bool = False, overwrite: bool = False, provenance: dict | None = None) -> PipelineResult:
    """Capture -> fit -> bake ``data`` into the job folder ``out`` (default ``out/<name>``).

    data: anything ``recon.load_capture`` reads (video, image folder, transforms.json,
        COLMAP, IDR/DTU), a recon capture folder, or an in-memory Capture (then ``out`` is required).
    subject: auto (``pick_subject``: articulated for a subject that moves and bends, else object; a
        single photo: head), object, articulated, head (one photo or a video of a face: ICT-FaceKit fitted
        to its landmarks, ``recon.heads.job``), body or garment (body and garment have no model of their
        own yet: they are fitted as static objects, with a warning, and recorded as ``kind: object``
        with ``requested_subject`` saying what was asked for). A subject headed for the articulated
        model that never moves (``still_subject``) is fitted as a static object, and the run says so.
    config: a resolved Config; else ``preset`` + ``config_file`` + ``overrides``.
    bake: False stops after the fit (no asset folder).
    resume: reuse finished stages and continue an unfinished fit; overwrite: replace an
        earlier job in ``out``; without either, an existing job in ``out`` is an error.
    provenance: extra fields for provenance.json (licence, operator, notes, ...).
    """
    from .capture import capture_to_folder, load_capture
    from .fit.api import default_out, fit as fit_field, load_model

    if subject not in SUBJECT_KINDS + ("auto",):
        raise InputError(None, f"unknown subject '{subject}' (auto or one of {', '.join(SUBJECT_KINDS)})")
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
    if kind == "auto" and _is_photo(data):
        kind = "head"
        log.info("subject: one photo: head model (the only model one photo fits)")
    elif kind != "head" and _is_photo(data):
        raise InputError(data, f"one photo fits only a head (--subject head); a {kind} needs a video or a "
                               "capture folder (--video / --data)")
    in_place = kind != "head" and (isinstance(data, Capture) or _is_capture_folder(data))
    _prepare_out(out, resume, overwrite, uses_capture_dir=not in_place)
    if kind == "head":
        return _fit_head(data, out, name, cfg, subject, resume, bake, preset if config is None else None,
                         list(overrides), provenance)

    # capture
    cap_dir = None if isinstance(data, Capture) else Path(data) if in_place else out / "capture"
    if isinstance(data, Capture):
        cap = data
    else:
        if not in_place and not (resume and (cap_dir / "capture.json").is_file()):
            capture_to_folder(data, cap_dir, cfg.capture, overwrite=True, hull_iou=rigid_check(cfg))
        # the folder we wrote holds the segmenter's masks already: do not segment again
        reread = cfg.capture if in_place else cfg.capture.model_copy(update={"segmenter": "none", "masks": "auto"})
        cap = load_capture(cap_dir, reread)
    if kind == "auto":
        kind, why = pick_subject(cap)
        log.info("subject: %s", why)
    if kind == "articulated" and still_subject(cap, cfg):
        kind = "object"
    cfg = _model_budget(cfg, kind, overrides)

    # fit
    fit_eval = _finished_fit(out / "fit" / "eval.json", cfg) if resume else None
    if fit_eval is None:
        fit_eval = fit_field(cap, out=out, config=cfg, resume=resume, subject=kind).eval
    motion = fit_eval.get("motion") or {}
    if motion.get("moves") is False:
        log.warning("the subject holds still (root moved %.3f radii and turned %.1f deg, bones turned %.1f deg): "
                    "it is static; --subject object fits it as a static object", motion["root_travel_radii"],
                    motion["root_turn_deg"], motion["bone_turn_deg_p95"])
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
        gt = cap_dir / "gt_mesh.ply" if cap_dir is not None and (cap_dir / "gt_mesh.ply").is_file() else None
        common = dict(capture=cap, cfg=cfg.bake, materials=cfg.materials, gt_mesh=gt, fit_eval=fit_eval,
                      provenance={k: v for k, v in prov.items() if v is not None}, overwrite=True)
        if hasattr(model, "rest_mesh"):  # a fitted mesh with a skeleton: rigged and animated as it is
            import numpy as np

            N = model.normalization.numpy()
            rest = model.rest_mesh().apply_transform(np.linalg.inv(N))
            metrics = bake_asset(model, N, out, name, surface_mesh=rest, rig_source=model, **common)
            return PipelineResult(out, fit_eval, asset_dir, metrics, kind, subject)
        surface = model.field
        if model.field.kind == "density" and cfg.bake.density_surface == "depth_fusion":
            from .bake.depth_fusion import fused_surface

            surface = fused_surface(model, cap, cfg.bake.resolution, cfg.bake.bound,
                                    max_views=cfg.bake.fusion_views, trunc_voxels=cfg.bake.fusion_trunc_voxels)
        metrics = bake_asset(surface, model.field.normalization, out, name, occupancy=model.grid, **common)
    return PipelineResult(out, fit_eval, asset_dir, metrics, kind, subject)
