"""Ground truth for relighting from a renderer recon did not write: Mitsuba 3 (CPU, LLVM), path traced.

Renders a glTF-style PBR mesh (base colour, roughness/metallic and normal maps; here the avocado in
../shared/data/meshes/avocado) under an equirectangular environment map from recon's cameras, plus
its albedo (Mitsuba's ``aov`` integrator) and alpha. Used by ``scripts/bench_materials.py``; needs
``pip install mitsuba`` (a benchmark dependency, not a recon one).

Conventions matched here: recon's OpenCV camera-to-world c2w becomes Mitsuba's sensor ``to_world`` by
flipping the camera's x and y axes (Mitsuba cameras look down +z with +y up and +x left); Mitsuba's
``envmap`` and recon's ``recon.render.environment`` use the same equirectangular mapping (+Y up).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np


def _mi():
    try:
        import mitsuba as mi
    except ImportError as exc:  # pragma: no cover - a benchmark dependency
        raise SystemExit("this benchmark renders its ground truth with Mitsuba 3: pip install mitsuba") from exc
    mi.set_variant("scalar_rgb")  # the LLVM variant fails to JIT on some CPUs ("Cannot select: fminimum")
    return mi


def load_gltf_pbr(folder: Path):
    """The avocado-style glTF in ``folder``: trimesh mesh (metres, +Y up) and its three texture images."""
    import trimesh
    from PIL import Image

    gltf = next(folder.glob("*.gltf"))
    mesh = trimesh.load(gltf, force="mesh", process=False)
    tex = folder / "textures"
    maps = {k: np.asarray(Image.open(next(tex.glob(f"*_{k}.png"))).convert("RGB"))
            for k in ("baseColor", "roughnessMetallic", "normal")}
    return mesh, maps


def _write_ply(path: Path, mesh) -> None:
    """Binary PLY with normals and texture coordinates (Mitsuba reads v downwards, as glTF does)."""
    v = np.asarray(mesh.vertices, np.float32)
    n = np.asarray(mesh.vertex_normals, np.float32)
    uv = np.asarray(mesh.visual.uv, np.float32) * [1, -1] + [0, 1]  # Mitsuba's texcoords: v down
    rec = np.empty(len(v), dtype=[(k, "<f4") for k in ("x", "y", "z", "nx", "ny", "nz", "u", "v")])
    for k, col in zip(("x", "y", "z", "nx", "ny", "nz", "u", "v"), np.concatenate([v, n, uv], 1).T):
        rec[k] = col
    faces = np.empty(len(mesh.faces), dtype=[("n", "u1"), ("i", "<i4", 3)])
    faces["n"], faces["i"] = 3, mesh.faces
    head = (f"ply\nformat binary_little_endian 1.0\nelement vertex {len(v)}\n"
            + "".join(f"property float {k}\n" for k in ("x", "y", "z", "nx", "ny", "nz", "u", "v"))
            + f"element face {len(faces)}\nproperty list uchar int vertex_indices\nend_header\n")
    path.write_bytes(head.encode() + rec.tobytes() + faces.tobytes())


def _scene_mesh(mi, mesh, maps, work: Path):
    """A Mitsuba mesh with a principled BSDF wrapped in a normal map, textures written into ``work``."""
    from PIL import Image

    work.mkdir(parents=True, exist_ok=True)
    Image.fromarray(maps["baseColor"]).save(work / "base.png")
    Image.fromarray(maps["roughnessMetallic"][..., 1]).save(work / "rough.png")
    Image.fromarray(maps["roughnessMetallic"][..., 2]).save(work / "metal.png")
    Image.fromarray(maps["normal"]).save(work / "normal.png")
    _write_ply(work / "mesh.ply", mesh)

    def bitmap(name, raw):
        return {"type": "bitmap", "filename": str(work / name), "raw": raw}

    bsdf = {"type": "normalmap", "normalmap": bitmap("normal.png", True),
            "bsdf": {"type": "principled", "base_color": bitmap("base.png", False),
                     "roughness": bitmap("rough.png", True), "metallic": bitmap("metal.png", True)}}
    return mi.load_dict({"type": "ply", "filename": str(work / "mesh.ply"), "bsdf": bsdf})


FLIP = [-1.0, -1.0, 1.0, 1.0]  # OpenCV x right, y down -> Mitsuba's x left, y up


def _sensor(mi, c2w: np.ndarray, fx: float, size: int, spp: int):
    to_world = np.asarray(c2w, np.float64) @ np.diag(FLIP)
    return mi.load_dict({
        "type": "perspective", "fov_axis": "x", "fov": math.degrees(2 * math.atan(size / (2 * fx))),
        "to_world": mi.ScalarTransform4f(to_world.tolist()), "near_clip": 1e-3, "far_clip": 100.0,
        "sampler": {"type": "independent", "sample_count": spp},
        "film": {"type": "hdrfilm", "width": size, "height": size, "pixel_format": "rgba",
                 "rfilter": {"type": "box"}}})


def render(mesh, maps, cams, env_path: Path, work: Path, spp: int = 128, seed: int = 0) -> list[dict]:
    """Per camera: ``rgb`` (H, W, 3) linear radiance (path traced, ``envmap`` at its own scale), ``albedo``
    (H, W, 3) linear base colour (aov), ``alpha`` (H, W)."""
    mi = _mi()
    shape = _scene_mesh(mi, mesh, maps, work)
    out = []
    for i in range(len(cams)):
        size = int(cams.width[i])
        sensor = _sensor(mi, cams.c2w[i], float(cams.fx[i]), size, spp)
        scene = mi.load_dict({"type": "scene", "integrator": {"type": "path", "max_depth": 8},
                              "emitter": {"type": "envmap", "filename": str(env_path)}, "shape": shape,
                              "sensor": sensor})
        rgba = np.asarray(mi.render(scene, seed=seed + i))
        aov_scene = mi.load_dict({"type": "scene", "integrator": {"type": "aov", "aovs": "a:albedo",
                                                              "integrator": {"type": "direct"}},
                                  "shape": shape, "sensor": _sensor(mi, cams.c2w[i], float(cams.fx[i]), size, 16)})
        aov = np.asarray(mi.render(aov_scene, seed=seed + i))  # R G B A (no emitter: A = coverage), albedo
        out.append({"rgb": rgba[..., :3].astype(np.float32), "alpha": aov[..., 3].astype(np.float32),
                    "albedo": aov[..., -3:].astype(np.float32)})
    return out
