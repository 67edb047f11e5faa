"""Write a finished asset (a TexturedMesh in the asset's frame) into its folder, all at once: the mesh as
glb/obj/ply, thumb.png, turntable.mp4, report.html, metrics.json, provenance.json and whatever extra files
its model adds (a head's landmarks.json). Every model's bake ends here (``bake_asset`` for fields and fitted
meshes, ``recon.heads.job`` for heads), so every asset folder has the same files and report.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ..core.config import BakeConfig
from ..core.fsutil import atomic_dir
from .textured_mesh import TexturedMesh
from .writers import write_mesh

RELIT_LIGHTS = ("studio", "sunset")  # installed environment maps a PBR asset's report shows it under


def input_strip(capture, count: int = 12) -> tuple[list[np.ndarray], str | None]:
    """Up to ``count`` frames spread over ``capture`` for the report (its masks overlaid when it has
    them) and where the masks came from."""
    from .report import mask_overlay

    if capture is None or not len(capture):
        return [], None
    pick = np.unique(np.linspace(0, len(capture) - 1, min(count, len(capture))).round().astype(int))
    inputs = [capture.images[i] for i in pick]
    if capture.masks is None:
        return inputs, None
    inputs = [mask_overlay(im, capture.masks[i]) for im, i in zip(inputs, pick)]
    return inputs, (capture.meta.get("masks") or {}).get("method", "the capture's own")


def write_asset_folder(dest: Path, name: str, asset: TexturedMesh, metrics: dict, cfg: BakeConfig, *,
                       started: float, frame: dict, provenance: dict | None = None, overwrite: bool = False,
                       inputs: list[np.ndarray] = (), masks_note: str | None = None, pairs: list = (),
                       camera: dict | None = None, light: np.ndarray | None = None, motion=None,
                       animation: str | None = None, extra_files: dict[str, bytes] | None = None,
                       procedural=None) -> None:
    """Write ``dest`` (atomically: a temporary folder renamed into place).

    metrics: completed here with the turntable codec, ``bake_seconds`` (since ``started``,
    ``time.perf_counter()``) and the file list. frame: how the asset's frame relates to the capture's
    (provenance.json records it). inputs / masks_note / pairs / camera: the report's input strip, its
    (photo, render, caption) pairs and where its 3D view opens. light: a pbr asset's recovered capture light
    (environment.hdr, relit turntables). motion: (capture, asset -> capture world 4x4) for a rigged asset
    (motion.mp4: each frame beside the asset posed at it). animation: the glb animation the report's 3D view
    plays (a rig's "motion" is implied by ``asset.rig``; a head's "expressions"). extra_files: name -> bytes.
    procedural: a ``recon.materials.procedural.ProceduralFit`` of the asset (materials.json, and its regions
    and their scores in the report).
    """
    with atomic_dir(dest, overwrite=overwrite) as tmp:
        files = []
        for fmt in ("glb", "obj", "ply"):
            files += [p.name for p in write_mesh(asset, tmp / f"{name}.{fmt}")]
        if asset.rig is not None and cfg.posed_meshes:
            from .writers import write_posed_meshes

            files += [f"posed/{p.name}" for p in write_posed_meshes(asset, tmp / "posed")]
        extra_files = dict(extra_files or {})
        if procedural is not None:
            extra_files["materials.json"] = json.dumps(procedural.to_json(), indent=1).encode()
        for fname, data in extra_files.items():
            (tmp / fname).write_bytes(data)
            files.append(fname)
        from .preview import write_previews

        previews = write_previews(asset, tmp, cfg.turntable_frames, cfg.preview_size, light=light)
        metrics["turntable_codec"] = previews["turntable_codec"]
        relit = {}
        if light is not None:
            from ..render.environment import builtin_environments, load_environment, save_environment
            from .preview import relit_turntables

            save_environment(tmp / "environment.hdr", light)
            files.append("environment.hdr")
            maps = builtin_environments()
            lights = {"the recovered capture light": light}
            lights.update({n: load_environment(maps[n]) for n in RELIT_LIGHTS if n in maps})
            relit = relit_turntables(asset, cfg.turntable_frames, cfg.preview_size // 2, lights)
        videos = {}  # an animated asset's report plays its animation and shows its rest pose (and its motion)
        if asset.rig is not None:
            from .writers.glb import ANIMATION

            animation = ANIMATION
        if animation is not None:
            videos = {"animation": animation, "turntable": (tmp / "turntable.mp4").read_bytes()}
        if motion is not None:
            from .preview import write_motion_video

            capture, to_world = motion
            metrics.update(write_motion_video(asset, capture, to_world, tmp / "motion.mp4"))
            files.append("motion.mp4")
            videos["motion"] = (tmp / "motion.mp4").read_bytes()
        metrics["bake_seconds"] = round(time.perf_counter() - started, 2)
        metrics["files"] = sorted(files + ["thumb.png", "turntable.mp4", "report.html", "metrics.json"]
                                  + (["provenance.json"] if provenance is not None else []))
        textures = {"albedo" if asset.material == "pbr" else "base colour": asset.base_color}
        if asset.orm is not None:
            textures["occlusion / roughness / metallic"] = asset.orm
        if asset.normal_map is not None:
            textures["normal"] = asset.normal_map
        from .report import build_report

        regions = None
        if procedural is not None:
            from ..materials.procedural import region_map, regenerate

            size = asset.base_color.shape[0]
            regions = (procedural.summary(), region_map(asset, procedural, min(size, 512)),
                       regenerate(asset, procedural, min(size, 512), accepted_only=False).base_color)
        page = build_report(name, (tmp / f"{name}.glb").read_bytes(), metrics, previews["thumb"], inputs, pairs,
                            textures, camera, masks_note, relit=relit, procedural=regions, **videos)
        (tmp / "report.html").write_text(page, encoding="utf-8")
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2))
        if provenance is not None:
            (tmp / "provenance.json").write_text(json.dumps({**provenance, "frame": frame}, indent=2))
