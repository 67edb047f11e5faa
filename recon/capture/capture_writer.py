"""Write a Capture as a capture folder that recon and nerfstudio both read.

    <out>/frames/<name>.png     RGB, sRGB uint8
    <out>/masks/<name>.png      0/255, when the capture has masks
    <out>/points3D.ply          sparse points (normalised world), when present
    <out>/transforms.json       nerfstudio format: per-frame OPENCV intrinsics, OpenGL
                                camera-to-world in the normalised world, "split" per frame,
                                "train/val/test_filenames" (what nerfstudio's dataparser
                                reads for a fixed split), "ply_file_path", and a "recon"
                                block with the normalisation (original -> normalised)
    <out>/capture.json          provenance: source path and content hash, frame picks
                                (name, source, index, timestamp, split), SfM statistics,
                                normalisation method

``read_transforms`` reads the folder back to the same cameras and
normalisation. The caller makes the folder atomic (``capture_to_folder`` writes
into a temporary folder and renames it).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..core.conventions import opencv_to_opengl
from ..core.imageio import write_image, write_mask
from ..core.progress import track
from ..core.types import Capture

PLY_NAME = "points3D.ply"


def _jsonable(x: Any) -> Any:
    """numpy scalars/arrays and Paths -> plain JSON values (recursively)."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, Path):
        return str(x)
    if isinstance(x, float) and not np.isfinite(x):
        return None
    if x is None or isinstance(x, (str, int, float, bool)):
        return x
    return str(x)


def write_ply_points(path: Path, xyz: np.ndarray, rgb: np.ndarray | None) -> None:
    """Binary little-endian PLY point cloud: float x y z, uchar red green blue."""
    xyz = np.asarray(xyz, dtype=np.float64)
    rgb = np.full((len(xyz), 3), 128, np.uint8) if rgb is None else np.asarray(rgb, np.uint8)
    rec = np.empty(len(xyz), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"),
                                    ("red", "u1"), ("green", "u1"), ("blue", "u1")])
    rec["x"], rec["y"], rec["z"] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    rec["red"], rec["green"], rec["blue"] = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    header = ("ply\nformat binary_little_endian 1.0\n"
              f"element vertex {len(xyz)}\n"
              "property float x\nproperty float y\nproperty float z\n"
              "property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n")
    with open(path, "wb") as f:
        f.write(header.encode("ascii"))
        f.write(rec.tobytes())


def transforms_dict(cap: Capture) -> dict[str, Any]:
    """The transforms.json content for ``cap`` (frames at frames/<name>.png)."""
    cams = cap.cameras
    if cams is None:
        raise ValueError("cannot write a capture folder without cameras")
    c2w_gl = opencv_to_opengl(cams.c2w)
    frames = []
    for i, fr in enumerate(cap.frames):
        k1, k2, p1, p2, k3 = (float(x) for x in cams.dist[i])
        entry: dict[str, Any] = {
            "file_path": f"frames/{fr.name}.png",
            "transform_matrix": c2w_gl[i].tolist(),
            "fl_x": float(cams.fx[i]), "fl_y": float(cams.fy[i]),
            "cx": float(cams.cx[i]), "cy": float(cams.cy[i]),
            "w": int(cams.width[i]), "h": int(cams.height[i]),
            "k1": k1, "k2": k2, "p1": p1, "p2": p2, "k3": k3,
            "camera_model": "OPENCV",
            "split": fr.split,
        }
        if cap.masks is not None:
            entry["mask_path"] = f"masks/{fr.name}.png"
        frames.append(entry)
    out: dict[str, Any] = {"camera_model": "OPENCV", "frames": frames}
    train = [f"frames/{f.name}.png" for f in cap.frames if f.split == "train"]
    test = [f"frames/{f.name}.png" for f in cap.frames if f.split == "test"]
    if train and test:
        # nerfstudio needs every split it asks for once any "*_filenames" is present;
        # it evaluates on "val" and "test", both are the held-out frames.
        out.update(train_filenames=train, val_filenames=test, test_filenames=test)
    if cap.points is not None and len(cap.points):
        out["ply_file_path"] = PLY_NAME
    out["recon"] = {
        "version": __version__,
        "convention": "transform_matrix: OpenGL camera-to-world in the normalised world; "
                      "normalization: 4x4 similarity original world -> normalised world",
        "normalization": np.asarray(cap.normalization, dtype=np.float64).tolist(),
        "normalization_method": cap.meta.get("normalization_method"),
        "up": cap.meta.get("up"),  # the subject's up direction in this world (recon.capture.upright)
        "up_method": cap.meta.get("up_method"),
    }
    return out


def capture_record(cap: Capture) -> dict[str, Any]:
    """The capture.json content: provenance of the capture folder."""
    meta = dict(cap.meta)
    N = np.asarray(cap.normalization, dtype=np.float64)
    handled = {"source", "source_kind", "source_hash", "sfm", "normalization_method", "normalized"}
    return _jsonable({
        "recon_version": __version__,
        "source": {"path": meta.get("source"), "kind": meta.get("source_kind"), "hash": meta.get("source_hash")},
        "counts": {"frames": len(cap), "train": int(len(cap.split_indices("train"))),
                   "test": int(len(cap.split_indices("test"))), "masks": cap.masks is not None,
                   "points": 0 if cap.points is None else int(len(cap.points))},
        "frames": [{"name": f.name, "source": f.source, "index": f.index, "timestamp": f.timestamp,
                    "split": f.split} for f in cap.frames],
        "normalization": {"method": meta.get("normalization_method"), "matrix": N,
                          "scale": float(np.cbrt(np.linalg.det(N[:3, :3])))},
        "sfm": meta.get("sfm"),
        "meta": {k: v for k, v in meta.items() if k not in handled},
    })


def write_capture_folder(cap: Capture, out: Path) -> None:
    """Write ``cap`` into the (existing or new) folder ``out``; see the module docstring."""
    out = Path(out)
    names = [f.name for f in cap.frames]
    if len(set(names)) != len(names):
        raise ValueError("frame names must be unique to be written as frames/<name>.png")
    transforms = transforms_dict(cap)  # validates (cameras present) before writing anything
    (out / "frames").mkdir(parents=True, exist_ok=True)
    for i in track(range(len(cap)), "writing frames"):
        name = cap.frames[i].name
        write_image(out / "frames" / f"{name}.png", cap.images[i])
        if cap.masks is not None:
            write_mask(out / "masks" / f"{name}.png", cap.masks[i])
    if "ply_file_path" in transforms:
        write_ply_points(out / PLY_NAME, cap.points, cap.points_rgb)
    (out / "transforms.json").write_text(json.dumps(transforms, indent=2) + "\n")
    (out / "capture.json").write_text(json.dumps(capture_record(cap), indent=2) + "\n")
