"""Binary PLY with per-vertex normals and sRGB colours (no textures).

PLY has no UVs here, so vertices split along UV seams are welded back by position:
the PLY mesh is closed wherever the textured mesh is.
"""
from __future__ import annotations

import numpy as np

from ..textured_mesh import TexturedMesh


def weld(mesh: TexturedMesh) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(positions, normals, colours, faces) with vertices of equal position merged."""
    _, first, inverse = np.unique(mesh.positions, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    colors = mesh.colors_at_vertices()
    return mesh.positions[first], mesh.normals[first], colors[first], inverse[mesh.faces]


def encode_ply(mesh: TexturedMesh, stem: str) -> dict[str, bytes]:
    """``{"<stem>.ply": bytes}``."""
    pos, nrm, col, faces = weld(mesh)
    vdt = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("nx", "<f4"), ("ny", "<f4"), ("nz", "<f4"),
                    ("red", "u1"), ("green", "u1"), ("blue", "u1")])
    v = np.empty(len(pos), vdt)
    v["x"], v["y"], v["z"] = pos.T
    v["nx"], v["ny"], v["nz"] = nrm.T
    v["red"], v["green"], v["blue"] = col.T
    fdt = np.dtype([("n", "u1"), ("i", "<i4", (3,))])
    f = np.empty(len(faces), fdt)
    f["n"] = 3
    f["i"] = faces
    header = "\n".join([
        "ply", "format binary_little_endian 1.0", f"comment recon asset {stem}",
        f"element vertex {len(v)}", "property float x", "property float y", "property float z",
        "property float nx", "property float ny", "property float nz",
        "property uchar red", "property uchar green", "property uchar blue",
        f"element face {len(f)}", "property list uchar int vertex_indices", "end_header", ""])
    return {f"{stem}.ply": header.encode() + v.tobytes() + f.tobytes()}
