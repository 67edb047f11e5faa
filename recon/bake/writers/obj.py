"""Wavefront OBJ + MTL + PNG textures.

Texture coordinates are written OpenGL-style (v up: ``vt u 1-v``). The material uses
``map_Kd`` (sRGB base colour), ``norm`` (tangent-space normal map; ``map_Bump`` for
readers that only know that), and the PBR extension's ``Pr``/``Pm`` with ``map_Pr`` /
``map_Pm`` reading the roughness (G) and metallic (B) channels of the ORM texture. A
``radiance`` mesh (captured light as colour) gets ``illum 0``: constant colour, no lighting.
"""
from __future__ import annotations

import io

import numpy as np

from ..textured_mesh import TexturedMesh
from ._png import encode_png


def _rows(fmt: str, arr: np.ndarray) -> str:
    buf = io.StringIO()
    np.savetxt(buf, arr, fmt=fmt)
    return buf.getvalue()


def encode_obj(mesh: TexturedMesh, stem: str) -> dict[str, bytes]:
    """``{"<stem>.obj", "<stem>.mtl", "<stem>_basecolor.png", ...}`` -> bytes."""
    files: dict[str, bytes] = {}
    mtl = [f"newmtl {stem}_material", "Ka 1 1 1", "Kd 1 1 1", "Ks 0 0 0", "d 1",
           "illum 0" if mesh.unlit else "illum 2", f"map_Kd {stem}_basecolor.png"]
    textures = {f"{stem}_basecolor.png": encode_png(mesh.base_color)}
    if mesh.normal_map is not None:
        textures[f"{stem}_normal.png"] = encode_png(mesh.normal_map)
        mtl += [f"norm {stem}_normal.png", f"map_Bump {stem}_normal.png"]
    if mesh.orm is not None and not mesh.unlit:
        textures[f"{stem}_orm.png"] = encode_png(mesh.orm)
        rough, metal = (float(np.median(mesh.orm[..., c])) / 255 for c in (1, 2))
        mtl += [f"Pr {rough:.4f}", f"Pm {metal:.4f}",
                f"map_Pr -imfchan g {stem}_orm.png", f"map_Pm -imfchan b {stem}_orm.png"]
    f = mesh.faces + 1
    tri = np.repeat(f, 3, axis=1)  # v/vt/vn share one index per corner
    obj = "".join([
        f"# recon asset\nmtllib {stem}.mtl\no {stem}\n",
        _rows("v %.7g %.7g %.7g", mesh.positions),
        _rows("vt %.7g %.7g", np.stack([mesh.uvs[:, 0], 1.0 - mesh.uvs[:, 1]], -1)),
        _rows("vn %.6f %.6f %.6f", mesh.normals),
        f"usemtl {stem}_material\ns 1\n",
        _rows("f %d/%d/%d %d/%d/%d %d/%d/%d", tri),
    ])
    files[f"{stem}.obj"] = obj.encode()
    files[f"{stem}.mtl"] = ("\n".join(mtl) + "\n").encode()
    files.update(textures)
    return files
