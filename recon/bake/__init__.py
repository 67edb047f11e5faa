"""recon.bake: a fitted field -> a watertight, UV-mapped, PBR-textured asset with metrics.

    from recon.bake import bake_asset
    metrics = bake_asset(field, capture.normalization, "out/cat", "cat", capture=capture)

writes ``out/cat/asset/``: ``cat.glb``, ``cat.obj`` + ``.mtl`` + PNG textures, ``cat.ply``,
``metrics.json``, ``thumb.png``, ``turntable.mp4`` and ``report.html``, all at once (a
temporary folder renamed into place), in the capture's original units.

Stages, each usable alone: ``extract_surface`` (marching cubes, clean-up), ``decimate``,
``unwrap`` (xatlas), ``bake_textures`` (base colour, normal, ORM maps from the field),
``refine_mesh`` (vertices and base colour fitted to the training photos by differentiable
rasterization), ``refine_base_color`` (the base colour alone fitted to them),
``write_mesh`` / ``read_mesh`` (glb, obj, ply), previews and the report.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ..core.config import BakeConfig
from ..core.errors import InputError
from ..core.fsutil import atomic_dir
from ..core.log import get_logger
from .extract import extract_surface
from .field_protocol import SurfaceField, as_surface_field
from .simplify import decimate
from .texture import bake_textures
from .texture_refine import refine_base_color
from .textured_mesh import TexturedMesh
from .uv import unwrap
from .writers import read_mesh, write_mesh

__all__ = ["bake_asset", "export_asset", "SurfaceField", "as_surface_field", "extract_surface", "decimate",
           "unwrap", "bake_textures", "TexturedMesh", "read_mesh", "write_mesh"]

log = get_logger(__name__)

HELDOUT_VIEWS = 8  # held-out views rendered for PSNR and shown in the report


def _as_matrix(t) -> np.ndarray:
    if hasattr(t, "detach"):  # a torch buffer
        t = t.detach().cpu().numpy()
    return np.asarray(t, np.float64).reshape(4, 4)


def _scale(normalization: np.ndarray) -> float:
    return float(abs(np.linalg.det(np.asarray(normalization, np.float64)[:3, :3])) ** (1 / 3))


def _capture_up(capture, normalization: np.ndarray) -> np.ndarray:
    """The mean image-up direction of the capture's cameras, in original units (people hold cameras upright)."""
    if capture is None or capture.cameras is None:
        return np.array([0.0, 1.0, 0.0])
    up_n = -capture.cameras.c2w[:, :3, 1].mean(0)  # OpenCV: y points down the image
    up = np.linalg.inv(np.asarray(normalization, np.float64)[:3, :3]) @ up_n
    n = np.linalg.norm(up)
    return up / n if n > 1e-9 else np.array([0.0, 1.0, 0.0])


def _heldout(mesh: TexturedMesh, capture, normalization: np.ndarray) -> tuple[dict, list]:
    """PSNR of the baked mesh (unlit, over white) against held-out photos (composited over white with masks)."""
    from ..eval.metrics import psnr
    from .preview import render

    idx = capture.split_indices("test")[:HELDOUT_VIEWS] if capture.cameras is not None else []
    if len(idx) == 0:
        return {}, []
    cams = capture.cameras[idx].transformed(np.linalg.inv(normalization))
    if cams.has_distortion:
        log.warning("held-out PSNR skipped: the capture's cameras have lens distortion")
        return {}, []
    views = render(mesh, cams, lit=False)
    scores, pairs = [], []
    for k, (i, v) in enumerate(zip(idx, views)):
        photo = capture.images[i].astype(np.float32) / 255
        if capture.masks is not None:
            m = (capture.masks[i].astype(np.float32) / 255)[..., None]
            photo = photo * m + (1 - m)
            scores.append(psnr(v["rgb"], photo))
        else:  # no mask: compare where the asset covers the image
            scores.append(psnr(v["rgb"], photo, mask=v["alpha"] > 0.5))
        pairs.append(((photo * 255 + 0.5).astype(np.uint8), (np.clip(v["rgb"], 0, 1) * 255 + 0.5).astype(np.uint8),
                      f"{capture.frames[i].name}: PSNR {scores[-1]:.2f} dB"))
    return {"psnr_heldout": float(np.mean(scores)), "psnr_heldout_views": len(scores)}, pairs


def _ground_truth(gt_mesh, capture):
    """The ground-truth mesh (original units): ``gt_mesh`` (trimesh or path), or a synthetic capture's source mesh."""
    import trimesh

    if gt_mesh is None and capture is not None:
        gt_mesh = capture.meta.get("synthetic", {}).get("mesh")
        if gt_mesh is not None and not Path(gt_mesh).is_file():
            gt_mesh = None
    if gt_mesh is None or isinstance(gt_mesh, trimesh.Trimesh):
        return gt_mesh
    loaded = trimesh.load(gt_mesh, force="mesh")
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0:
        raise InputError(gt_mesh, "ground-truth mesh has no triangles")
    return loaded


def _fold_fit_scores(metrics: dict, fit_eval: dict) -> None:
    """Keep the field's held-out scores under "fit"; "psnr" is the baked asset's when measured, else the field's."""
    metrics["fit"] = {k: v for k, v in fit_eval.items() if k != "views"}  # per-view scores stay in eval.json
    psnr = metrics.get("psnr_heldout", fit_eval.get("psnr"))
    if psnr is not None:
        metrics["psnr"] = psnr
    for key in ("ssim", "mask_iou"):
        if key in fit_eval:
            metrics.setdefault(key, fit_eval[key])


def bake_asset(field, normalization: np.ndarray | None, out_dir: str | Path, name: str, capture=None,
               cfg: BakeConfig | None = None, *, gt_mesh=None, occupancy=None, fit_eval: dict | None = None,
               provenance: dict | None = None, overwrite: bool = False) -> dict:
    """Bake ``field`` into ``out_dir/asset/`` (see the module docstring); returns the metrics.

    field: a ``SurfaceField`` or anything ``as_surface_field`` accepts (recon.fields).
    normalization: the capture's 4x4 original -> normalised similarity (None: the field's
        ``normalization`` buffer when it has one, as recon.fields do, else identity).
    capture: the (normalised) Capture the field was fitted to: held-out PSNR, the report's
        photos and the turntable's up direction come from it.
    gt_mesh: ground truth in original units (trimesh or path) for Chamfer / F-score; a
        synthetic capture's source mesh is used when not given.
    occupancy: the fit's occupancy grid (``.binary`` (G, G, G) bool, ``.bound``): only the
        space the fit found occupied is meshed, so floaters it never rendered are dropped.
    fit_eval: the field's held-out scores (eval.json), kept in metrics.json under "fit".
    provenance: written as provenance.json (what the library records about the source).
    overwrite: replace an existing non-empty asset folder.
    """
    import trimesh

    from ..eval.metrics import mesh_chamfer_fscore
    from .mesh_refine import refine_mesh
    from .preview import write_previews
    from .report import build_report

    cfg = cfg or BakeConfig()
    if normalization is None:
        normalization = getattr(field, "normalization", None)
    N = np.eye(4) if normalization is None else _as_matrix(normalization)
    surface = as_surface_field(field, cfg.density_threshold)
    dest = Path(out_dir) / "asset"
    t0 = time.perf_counter()

    occ = {} if occupancy is None else {"occupancy": occupancy.binary, "occupancy_bound": float(occupancy.bound)}
    fine = extract_surface(surface, N, cfg.resolution, cfg.bound, cfg.level, cfg.chunk_points,
                           cfg.min_component_fraction, cfg.narrow_band, **occ)
    mesh = decimate(fine, cfg.target_triangles)
    layout = unwrap(mesh, cfg.texture_size, cfg.uv_padding)
    voxel = 2 * cfg.bound / (cfg.resolution - 1)
    asset, stats = bake_textures(surface, N, mesh, layout, cfg.texture_size, voxel=voxel,
                                 normal_map=cfg.normal_map, fd_step=cfg.fd_step, roughness=cfg.roughness,
                                 metallic=cfg.metallic, chunk_points=cfg.chunk_points)
    baked = asset
    fit_stats = {}
    if capture is not None and cfg.refine_steps > 0:
        asset, fit_stats = refine_mesh(asset, capture, N, cfg.refine_steps, cfg.refine_lr, cfg.texture_fit_lr,
                                       smoothness=cfg.refine_smoothness)
        if asset is not baked:  # the vertices moved: measure the refined shape
            mesh = trimesh.Trimesh(asset.positions, asset.faces)  # merges the seam copies
    if capture is not None and cfg.texture_fit_steps > 0 and asset is baked:  # refinement fits the colour too
        asset, tex_stats = refine_base_color(asset, capture, N, cfg.texture_fit_steps, cfg.texture_fit_lr)
        fit_stats.update(tex_stats)
    scale = _scale(N)
    metrics: dict = {
        "name": name, "triangles": int(len(mesh.faces)), "vertices": int(len(mesh.vertices)),
        "watertight": bool(mesh.is_watertight), "extracted_triangles": int(len(fine.faces)),
        "extracted_watertight": bool(fine.is_watertight), "extraction_resolution": cfg.resolution,
        "texture_size": cfg.texture_size, "uv_charts": layout.charts, "uv_coverage": stats.uv_coverage,
        "texels_moved_mean": stats.mean_projection, "area": float(mesh.area),
        "volume": float(mesh.volume) if mesh.is_watertight else None,
        "extent": [float(v) for v in mesh.extents], "units": "capture (original)", **fit_stats,
    }
    gt = _ground_truth(gt_mesh, capture)
    if gt is not None:
        thr = cfg.fscore_threshold / scale
        cf = mesh_chamfer_fscore(mesh, gt, thr)
        metrics.update(chamfer=cf["chamfer"], fscore=cf["fscore"], fscore_threshold=thr)
    pairs = []
    if capture is not None:
        heldout, pairs = _heldout(asset, capture, N)
        metrics.update(heldout)
    if fit_eval is not None:
        _fold_fit_scores(metrics, fit_eval)

    with atomic_dir(dest, overwrite=overwrite) as tmp:
        files = []
        for fmt in ("glb", "obj", "ply"):
            files += [p.name for p in write_mesh(asset, tmp / f"{name}.{fmt}")]
        previews = write_previews(asset, tmp, cfg.turntable_frames, cfg.preview_size, _capture_up(capture, N))
        metrics["turntable_codec"] = previews["turntable_codec"]
        metrics["bake_seconds"] = round(time.perf_counter() - t0, 2)
        metrics["files"] = sorted(files + ["thumb.png", "turntable.mp4", "report.html", "metrics.json"]
                                  + (["provenance.json"] if provenance is not None else []))
        inputs = []
        if capture is not None and len(capture):
            pick = np.unique(np.linspace(0, len(capture) - 1, min(12, len(capture))).round().astype(int))
            inputs = [capture.images[i] for i in pick]
        textures = {"base colour": asset.base_color}
        if asset.normal_map is not None:
            textures["normal"] = asset.normal_map
        page = build_report(name, (tmp / f"{name}.glb").read_bytes(), metrics, previews["thumb"], inputs, pairs,
                            textures)
        (tmp / "report.html").write_text(page, encoding="utf-8")
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2))
        if provenance is not None:
            (tmp / "provenance.json").write_text(json.dumps(provenance, indent=2))
    log.info("baked %s: %d triangles, watertight %s, %s", name, metrics["triangles"], metrics["watertight"], dest)
    return metrics


def export_asset(asset_dir: str | Path, fmt: str, out: str | Path) -> list[Path]:
    """Write the asset in ``asset_dir`` (its .glb) as ``fmt`` to ``out``; returns the files written."""
    from .writers import format_of

    asset_dir = Path(asset_dir)
    if not asset_dir.is_dir():
        raise InputError(asset_dir, "asset folder not found")
    name = None
    if (asset_dir / "metrics.json").is_file():
        name = json.loads((asset_dir / "metrics.json").read_text()).get("name")
    glbs = [asset_dir / f"{name}.glb"] if name else sorted(asset_dir.glob("*.glb"))
    if not glbs or not glbs[0].is_file():
        raise InputError(asset_dir, "no .glb asset in the folder")
    return write_mesh(read_mesh(glbs[0]), out, format_of(out, fmt))
