"""recon.bake: a fitted field -> a watertight, UV-mapped, PBR-textured asset with metrics.

    from recon.bake import bake_asset
    metrics = bake_asset(field, capture.normalization, "out/cat", "cat", capture=capture)

writes ``out/cat/asset/``: ``cat.glb``, ``cat.obj`` + ``.mtl`` + PNG textures, ``cat.ply``,
``metrics.json``, ``thumb.png``, ``turntable.mp4`` and ``report.html``, all at once (a
temporary folder renamed into place), in the capture's original units, stood upright as
glTF wants (the capture's up along +Y, lowest point at y = 0, centred in x/z; the rigid
transform from the capture's frame is recorded as ``frame`` in metrics.json).

A model that fits a mesh with a skeleton (``recon.models.articulated_model``) hands over its
rest mesh (``surface_mesh``) and itself as ``rig_source``: the asset is then rigged and
animated (``rigging.rig_from``: joints, 4 skin weights per vertex, a glTF ``motion``
animation), held-out photos are compared with it posed at their instant, and ``motion.mp4``
(each input frame beside the asset posed at it) joins the previews.

The baked base colour is the field's view-averaged radiance: the capture's light is in it. With
``materials.mode: radiance`` the asset keeps it and is written unlit (``material: radiance``, glTF
``KHR_materials_unlit``, previews unlit). With ``pbr`` (``recon.materials``) albedo, roughness and
metallic textures and the capture's environment light are fitted to the training photos: the asset is
written lit (``material: pbr``, ORM texture), with ``environment.hdr`` (the recovered light, +Y up),
held-out photos are compared with it under that light (``psnr_heldout_baked``; the radiance asset's
score beside it as ``psnr_heldout_baked_radiance``), and the report shows it turning under other
lights. Every PSNR names what it measured: ``psnr_heldout_baked``
(the baked mesh against held-out photos; ``psnr_train_baked`` when the capture has no
held-out views), ``psnr_heldout_field`` / ``psnr_train_field`` (the fitted field, from
the fit's eval.json), each with ``_views``, ``_split`` and ``_region``.

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

from ..core.config import BakeConfig, MaterialsConfig
from ..core.errors import InputError
from ..core.log import get_logger
from .asset_writer import input_strip, write_asset_folder
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


def _capture_up(capture, normalization: np.ndarray) -> tuple[np.ndarray, str]:
    """The capture's up direction in its original world and where it came from (``recon.capture.upright``);
    +Y without a capture."""
    from ..capture.upright import with_up

    meta = {} if capture is None else with_up(capture.meta, capture.cameras, normalization=normalization)
    if meta.get("up") is None:
        return np.array([0.0, 1.0, 0.0]), "none (the field's +Y)"
    return np.asarray(meta["up"], np.float64), meta.get("up_method", "?")


def _heldout(mesh: TexturedMesh, capture, normalization: np.ndarray, light: np.ndarray | None = None,
             to_light: np.ndarray | None = None, key_suffix: str = "") -> tuple[dict, list]:
    """PSNR of the baked mesh (over white) against held-out photos (composited over white with masks);
    against training photos, named so, when the capture holds none out. A radiance mesh is rendered unlit,
    a pbr one under the recovered capture ``light`` (``preview.render``). A rigged mesh is posed at each
    photo's instant (``rigging.posed_at``). ``key_suffix`` is appended to the metric names."""
    from ..eval.metrics import mask_iou, psnr
    from .preview import render
    from .rigging import posed_at

    if capture.cameras is None:
        return {}, []
    split = "test" if len(capture.split_indices("test")) else "train"
    idx = capture.split_indices(split, HELDOUT_VIEWS)
    if len(idx) == 0:
        return {}, []
    cams = capture.cameras[idx].transformed(np.linalg.inv(normalization))
    lit = light is not None and not mesh.unlit
    if mesh.rig is None:
        views = render(mesh, cams, lit=lit, light=light, to_light=to_light)
    else:
        views = [render(posed_at(mesh, capture.frames[i].index), cams[[k]], lit=False)[0] for k, i in enumerate(idx)]
    scores, ious, pairs = [], [], []
    for k, (i, v) in enumerate(zip(idx, views)):
        photo = capture.images[i].astype(np.float32) / 255
        if capture.masks is not None:
            m = (capture.masks[i].astype(np.float32) / 255)[..., None]
            photo = photo * m + (1 - m)
            scores.append(psnr(v["rgb"], photo))
            ious.append(mask_iou(v["alpha"] > 0.5, capture.masks[i] > 127))
        else:  # no mask: compare where the asset covers the image
            scores.append(psnr(v["rgb"], photo, mask=v["alpha"] > 0.5))
        pairs.append(((photo * 255 + 0.5).astype(np.uint8), (np.clip(v["rgb"], 0, 1) * 255 + 0.5).astype(np.uint8),
                      f"{capture.frames[i].name}: PSNR {scores[-1]:.2f} dB"))
    key = ("psnr_heldout_baked" if split == "test" else "psnr_train_baked") + key_suffix
    region = "full frame, photo over white outside its mask" if capture.masks is not None else \
        "inside the asset's silhouette (no masks)"
    out = {key: float(np.mean(scores)), f"{key}_views": len(scores), f"{key}_split": split, f"{key}_region": region}
    if ious:  # the baked silhouette against the capture's masks
        out[f"mask_iou_{key[5:]}"] = float(np.mean(ious))
    if lit:
        out[f"{key}_shading"] = "PBR materials under the light recovered from the training photos"
    return out, pairs


def _report_camera(capture, normalization: np.ndarray, A: np.ndarray, asset: TexturedMesh) -> dict | None:
    """The report's 3D view opens at the first held-out photo's camera (in the asset's frame)."""
    from .report import viewer_camera

    idx = capture.split_indices("test", 1) if capture is not None and capture.cameras is not None else []
    if len(idx) == 0:
        return None
    cam = capture.cameras[idx].transformed(A @ np.linalg.inv(normalization))
    center = (asset.positions.min(0) + asset.positions.max(0)) / 2
    return viewer_camera(cam.c2w[0], float(cam.fy[0]), int(cam.height[0]), center)


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
    """The field's scores (eval.json) under "fit", and as ``<score>_<heldout|train>_field`` figures
    that say which split, how many views and which region they measured."""
    metrics["fit"] = {k: v for k, v in fit_eval.items() if k != "views"}  # per-view scores stay in eval.json
    if fit_eval.get("psnr") is None:
        return
    key = "heldout" if fit_eval.get("split") == "test" else "train"
    for score in ("psnr", "ssim", "mask_iou"):
        if score in fit_eval:
            metrics[f"{score}_{key}_field"] = fit_eval[score]
    metrics[f"psnr_{key}_field_views"] = fit_eval.get("n_views")
    metrics[f"psnr_{key}_field_split"] = fit_eval.get("split")
    metrics[f"psnr_{key}_field_region"] = fit_eval.get("region") or (
        "inside the masks" if fit_eval.get("mask_mode") == "weight" else "full frame")
    if "psnr_subject" in fit_eval:
        metrics[f"psnr_{key}_field_subject"] = fit_eval["psnr_subject"]


def bake_asset(field, normalization: np.ndarray | None, out_dir: str | Path, name: str, capture=None,
               cfg: BakeConfig | None = None, *, gt_mesh=None, occupancy=None, fit_eval: dict | None = None,
               provenance: dict | None = None, overwrite: bool = False, surface_mesh=None,
               rig_source=None, materials: MaterialsConfig | None = None) -> dict:
    """Bake ``field`` into ``out_dir/asset/`` (see the module docstring); returns the metrics.

    field: a ``SurfaceField`` or anything ``as_surface_field`` accepts (recon.fields).
    normalization: the capture's 4x4 original -> normalised similarity (None: the field's
        ``normalization`` buffer when it has one, as recon.fields do, else identity).
    capture: the (normalised) Capture the field was fitted to: refinement, held-out PSNR, the
        report's photos and the asset's up direction come from it (photos with lens distortion
        are undistorted first).
    gt_mesh: ground truth in original units (trimesh or path) for Chamfer / F-score; a
        synthetic capture's source mesh is used when not given.
    occupancy: the fit's occupancy grid (``.binary`` (G, G, G) bool, ``.bound``): only the
        space the fit found occupied is meshed, so floaters it never rendered are dropped.
    fit_eval: the field's held-out scores (eval.json), kept in metrics.json under "fit".
    provenance: written as provenance.json (what the library records about the source); its
        ``kind`` / ``requested_subject`` are copied into metrics.json, and ``frame`` is added.
    overwrite: replace an existing non-empty asset folder.
    surface_mesh: the surface already as a mesh (a trimesh in the capture's original units, from a model
        that fits a mesh): used instead of extracting one from ``field``, which then only gives the colour
        (no normal map: there is no finer surface than the mesh).
    rig_source: a model with a skeleton (``skeleton()``, ``skin(x)``; ``recon.models.articulated_model``):
        the asset is rigged and animated (``rigging.rig_from``), photos are compared with it posed at
        their instant, and the rest mesh is not refined against the (posed) photos.
    materials: ``mode: pbr`` fits albedo, roughness, metallic and the capture's light to the training
        photos (``recon.materials``; not for a rigged asset, whose photos show it posed): the asset is
        written lit, with ``environment.hdr`` and a relit turntable per installed light in the report;
        None or ``radiance``: the captured colour, written unlit.
    """
    import trimesh

    from ..capture.undistort import undistort_capture
    from ..capture.upright import upright_transform
    from ..eval.metrics import mesh_chamfer_fscore
    from .mesh_refine import refine_mesh

    cfg = cfg or BakeConfig()
    if normalization is None:
        normalization = getattr(field, "normalization", None)
    N = np.eye(4) if normalization is None else _as_matrix(normalization)
    surface = as_surface_field(field, cfg.density_threshold)
    dest = Path(out_dir) / "asset"
    t0 = time.perf_counter()
    if capture is not None and capture.cameras is not None and capture.cameras.has_distortion:
        log.info("undistorting the photos for the mesh renderer (pinhole only)")
        capture = undistort_capture(capture)

    occ = {} if occupancy is None else {"occupancy": occupancy.binary, "occupancy_bound": float(occupancy.bound)}
    fine = surface_mesh if surface_mesh is not None else \
        extract_surface(surface, N, cfg.resolution, cfg.bound, cfg.level, cfg.chunk_points,
                        cfg.min_component_fraction, cfg.narrow_band, **occ)
    mesh = decimate(fine, cfg.target_triangles)
    layout = unwrap(mesh, cfg.texture_size, cfg.uv_padding)
    voxel = 2 * cfg.bound / (cfg.resolution - 1)
    asset, stats = bake_textures(surface, N, mesh, layout, cfg.texture_size, voxel=voxel,
                                 normal_map=cfg.normal_map and surface_mesh is None, fd_step=cfg.fd_step, roughness=cfg.roughness,
                                 metallic=cfg.metallic, chunk_points=cfg.chunk_points)
    # the colour is captured radiance; roughness/metallic are not fitted, so none are written
    asset = baked = asset.with_(material="radiance", orm=None)
    fit_stats = {}
    if rig_source is not None:
        from .rigging import rig_from

        asset = baked = asset.with_(rig=rig_from(rig_source, asset.positions, N, capture))
    elif capture is not None and cfg.refine_steps > 0:
        asset, fit_stats = refine_mesh(asset, capture, N, cfg.refine_steps, cfg.refine_lr, cfg.texture_fit_lr,
                                       smoothness=cfg.refine_smoothness)
        if asset is not baked:  # the vertices moved: measure the refined shape
            mesh = trimesh.Trimesh(asset.positions, asset.faces)  # merges the seam copies
    if capture is not None and cfg.texture_fit_steps > 0 and asset is baked and asset.rig is None:  # refinement fits the colour too
        asset, tex_stats = refine_base_color(asset, capture, N, cfg.texture_fit_steps, cfg.texture_fit_lr)
        fit_stats.update(tex_stats)
    scale = _scale(N)
    up, up_method = _capture_up(capture, N)
    A = upright_transform(up, asset.positions)  # capture's frame (original units) -> the asset's
    light, radiance_asset = None, None
    if materials is not None and materials.mode == "pbr":
        if capture is None or capture.cameras is None or asset.rig is not None:
            log.warning("materials: no PBR fit for %s (kept the captured radiance)",
                        "a rigged asset" if asset.rig is not None else "an asset without photos")
        else:
            from ..materials import fit_materials

            fit = fit_materials(asset, capture, N, materials, to_light=A[:3, :3])
            radiance_asset, light = asset, fit.environment
            asset = asset.with_(base_color=fit.albedo, orm=fit.orm, material="pbr",
                                normal_map=fit.normal_map if fit.normal_map is not None else asset.normal_map)
            fit_stats.update(fit.stats)
    frame = {"up": [float(v) for v in up], "up_method": up_method, "asset_from_capture": A.round(9).tolist(),
             "note": "asset = asset_from_capture @ capture-frame point (rigid, units kept); "
                     "its inverse returns the asset to the capture's frame"}
    prov = {k: provenance[k] for k in ("kind", "requested_subject") if k in (provenance or {})}
    metrics: dict = {
        "name": name, **prov, "material": asset.material, "triangles": int(len(mesh.faces)),
        "vertices": int(len(mesh.vertices)),
        "watertight": bool(mesh.is_watertight), "extracted_triangles": int(len(fine.faces)),
        "extracted_watertight": bool(fine.is_watertight), "extraction_resolution": cfg.resolution,
        "texture_size": cfg.texture_size, "uv_charts": layout.charts, "uv_coverage": stats.uv_coverage,
        "texels_moved_mean": stats.mean_projection, "area": float(mesh.area),
        "volume": float(mesh.volume) if mesh.is_watertight else None,
        "units": "capture (original)", "frame": frame, **fit_stats,
    }
    if asset.rig is not None:
        metrics.update(joints=asset.rig.num_joints, animation_keys=asset.rig.num_keys,
                       animation_seconds=float(asset.rig.times[-1]), skin_influences=int(asset.rig.joints.shape[1]))
    gt = _ground_truth(gt_mesh, capture)
    if gt is not None:
        thr = cfg.fscore_threshold / scale
        cf = mesh_chamfer_fscore(mesh, gt, thr)
        metrics.update(chamfer=cf["chamfer"], fscore=cf["fscore"], fscore_threshold=thr)
    pairs = []
    if capture is not None:
        heldout, pairs = _heldout(asset, capture, N, light, A)
        metrics.update(heldout)
        if radiance_asset is not None:  # the same capture's radiance asset, for comparison
            metrics.update(_heldout(radiance_asset, capture, N, key_suffix="_radiance")[0])
    if fit_eval is not None:
        _fold_fit_scores(metrics, fit_eval)
    asset = asset.transformed(A)
    metrics["extent"] = [float(v) for v in asset.positions.max(0) - asset.positions.min(0)]  # x, y (up), z
    procedural = None
    if asset.material == "pbr" and materials is not None and materials.procedural:
        from ..materials.procedural import fit_procedural

        procedural = fit_procedural(asset, materials.procedural_regions)
        metrics["procedural"] = procedural.summary()

    motion = None
    if asset.rig is not None and capture is not None and capture.cameras is not None and len(capture):
        motion = (capture, N @ np.linalg.inv(A))  # the asset's frame -> the normalised world of the cameras
    inputs, masks_note = input_strip(capture)
    write_asset_folder(dest, name, asset, metrics, cfg, started=t0, frame=frame, provenance=provenance,
                       overwrite=overwrite, inputs=inputs, masks_note=masks_note, pairs=pairs,
                       camera=_report_camera(capture, N, A, asset), light=light, motion=motion,
                       procedural=procedural)
    log.info("baked %s: %d triangles, watertight %s, %s", name, metrics["triangles"], metrics["watertight"], dest)
    return metrics


def export_asset(asset_dir: str | Path, fmt: str, out: str | Path, texture_size: int | None = None) -> list[Path]:
    """Write the asset in ``asset_dir`` (its .glb) as ``fmt`` to ``out``; returns the files written.

    texture_size: textures of that many texels a side: the regions with procedural materials
    (``materials.json``) are regenerated at that size, the rest of the textures resampled.
    """
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
    mesh = read_mesh(glbs[0])
    if texture_size is not None:
        from ..materials.procedural import resize_textures

        mesh = resize_textures(mesh, asset_dir / "materials.json", texture_size)
    return write_mesh(mesh, out, format_of(out, fmt))
