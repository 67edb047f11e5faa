"""``recon synth``: render a mesh into a capture folder with ground truth.

Folder layout (the capture writer's, plus ground truth):

  frames/<name>.png     sRGB colour composited over white (train r_000…, then test)
  masks/<name>.png      coverage >= 0.5
  transforms.json       cameras in the normalised world (the writer's "recon" block holds
  capture.json          the normalisation: mesh world -> unit sphere); capture.json's
                        meta.synthetic records the mesh (path, sha256), views, size, seed
  depth/<name>.npz      "depth": float32 camera-space depth at pixel centres, in mesh units,
                        0 = background (compressed; ``read_depth``)
  normals/<name>.png    16-bit RGB world-space normals encoded (n + 1) / 2, 0 = background
  gt_mesh.ply           the rendered geometry in mesh units (apply the normalisation to compare
                        with a reconstruction in the normalised world)
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from ..core.errors import InputError
from ..core.fsutil import atomic_dir, atomic_write_bytes, sha256_file
from ..core.imageio import to_uint8
from ..core.log import get_logger
from ..core.progress import track
from ..core.types import Capture, FrameInfo
from .cameras import train_test_cameras
from .mesh import load_mesh
from ..render.mesh_render import render_views

log = get_logger(__name__)


def write_normals_png(path: Path, normal: np.ndarray) -> None:
    """(H, W, 3) unit normals (0 = none) -> 16-bit RGB PNG of (n + 1) / 2; background stays 0."""
    import cv2

    valid = np.any(normal != 0, axis=-1, keepdims=True)
    enc = np.where(valid, np.round((normal + 1.0) * 0.5 * 65535.0), 0).astype(np.uint16)
    ok, buf = cv2.imencode(".png", enc[..., ::-1])  # OpenCV writes BGR
    if not ok:
        raise OSError(f"cannot encode {path}")
    atomic_write_bytes(path, buf.tobytes())


def read_normals_png(path: str | Path) -> np.ndarray:
    """Inverse of ``write_normals_png``: (H, W, 3) float32 unit normals, 0 on background."""
    import cv2

    enc = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)[..., ::-1].astype(np.float32)
    n = enc / 65535.0 * 2.0 - 1.0
    return np.where(np.any(enc != 0, axis=-1, keepdims=True), n, 0.0).astype(np.float32)


def read_depth(path: str | Path) -> np.ndarray:
    """(H, W) float32 depth written by ``synth_capture`` (mesh units, 0 = background)."""
    with np.load(path) as data:
        return data["depth"]


def synth_capture(mesh_path: str | Path, out: str | Path, views: int = 60, test_views: int = 10,
                  size: int = 256, seed: int = 0, overwrite: bool = False, up=(0.0, 1.0, 0.0)) -> Capture:
    """Render ``views`` training and ``test_views`` test views of a mesh into the capture folder ``out``.

    Cameras lie on a sphere around the mesh (see ``recon.synth.cameras``), jittered
    by ``seed`` and held level with respect to ``up`` (the mesh's up axis, +Y for glTF/OBJ/PLY
    files; recorded as the capture's up); meshes without a texture get the procedural pattern of ``seed``.
    The returned Capture is normalised: the mesh's bounding sphere (times the
    capture normaliser's margin) maps to the unit sphere. The folder is written
    atomically: on any error ``out`` is left as it was.
    """
    from ..capture.capture_writer import write_capture_folder
    from ..capture.normalize import MARGIN, similarity

    if views < 1 or test_views < 0 or size < 8:
        raise InputError(None, f"need --views >= 1, --test-views >= 0 and --size >= 8 "
                               f"(got {views}, {test_views}, {size})")
    mesh_path = Path(mesh_path)
    mesh = load_mesh(mesh_path, seed=seed)
    up = np.asarray(up, np.float64) / np.linalg.norm(up)
    cams = train_test_cameras(views, test_views, mesh.center, mesh.radius, size, seed=seed, up=up)
    n = len(cams)
    digits = max(3, len(str(n - 1)))
    frames = [FrameInfo(name=f"r_{i:0{digits}d}", source=str(mesh_path), index=i,
                        split="train" if i < views else "test") for i in range(n)]

    rendered = []
    for i in track(range(n), f"rendering {mesh_path.name}", total=n):
        rendered.append(render_views(mesh, cams[i])[0])
    synthetic = {"mesh": str(mesh_path), "mesh_sha256": sha256_file(mesh_path), "views": views,
                 "test_views": test_views, "size": size, "seed": seed, "up": up.tolist(), "appearance": mesh.appearance,
                 "depth": "depth/<name>.npz['depth']: float32 camera z at pixel centres in mesh units, "
                          "0 = background",
                 "normals": "normals/<name>.png: 16-bit RGB world normals as (n+1)/2, 0 = background",
                 "gt_mesh": "gt_mesh.ply in mesh units"}
    cap = Capture(
        images=[to_uint8(r["rgb"]) for r in rendered],
        cameras=cams,
        frames=frames,
        masks=[np.where(r["alpha"] >= 0.5, 255, 0).astype(np.uint8) for r in rendered],
        meta={"source": str(mesh_path), "source_kind": "synthetic", "source_hash": synthetic["mesh_sha256"],
              "synthetic": synthetic, "up": up.tolist(), "up_method": "synthetic (the mesh's up axis)"},
    )
    cap = cap.normalized(similarity(mesh.center, mesh.radius * MARGIN))
    cap = replace(cap, meta={**cap.meta, "normalized": True, "normalization_method": "mesh_bounding_sphere"})

    with atomic_dir(out, overwrite=overwrite) as tmp:
        write_capture_folder(cap, tmp)
        for f, r in zip(frames, rendered):
            (tmp / "depth").mkdir(exist_ok=True)
            np.savez_compressed(tmp / "depth" / f"{f.name}.npz", depth=r["depth"].astype(np.float32))
            write_normals_png(tmp / "normals" / f"{f.name}.png", r["normal"])
        mesh.to_trimesh().export(tmp / "gt_mesh.ply")
    log.info(f"wrote {views} train + {test_views} test views of {mesh_path} to {out}")
    return cap
