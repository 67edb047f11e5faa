"""A fitted head as an asset mesh: ICT topology, UVs, and the 57 expressions as morph targets.

The model's vertices are split where its UV layout has seams (one asset vertex per (vertex, uv) pair),
so every head written by recon shares the same vertex order and the same landmark definitions
(``recon.heads.landmarks``). ICT's UDIM layout (tile k spans u in [k, k+1]) becomes one atlas: the
tiles side by side, u / tiles, v flipped to glTF's top-left origin.
"""
from __future__ import annotations

import numpy as np
import torch
import trimesh

from ..bake.texture import unit_vertex_normals
from ..bake.textured_mesh import TexturedMesh
from .model import HeadModel


def uv_tiles(model: HeadModel) -> int:
    """How many UDIM tiles the layout uses (side by side in the atlas)."""
    return int(np.floor(model.uvs[:, 0].max())) + 1


def split_seams(model: HeadModel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """vertex (A,) model vertex of each asset vertex; uv (A, 2) its glTF atlas coordinate; faces (F, 3) the
    triangles over asset vertices (same order as ``model.faces``)."""
    pairs = np.stack([model.faces.numpy().reshape(-1), model.face_uvs.reshape(-1)], 1)
    unique, inverse = np.unique(pairs, axis=0, return_inverse=True)
    uv = model.uvs[unique[:, 1]].astype(np.float64)
    atlas = np.stack([uv[:, 0] / uv_tiles(model), 1.0 - uv[:, 1]], 1).astype(np.float32)
    return unique[:, 0], atlas, inverse.reshape(-1, 3).astype(np.int64)


def head_mesh(model: HeadModel, identity: np.ndarray, base_color: np.ndarray,
              expression: np.ndarray | None = None) -> TexturedMesh:
    """The head with ``identity`` (100,) (and ``expression`` (57,) baked in, default neutral) as a
    TexturedMesh carrying the 57 expression shapes as morph targets; ``base_color`` (H, W, 3) uint8 sRGB
    over the atlas."""
    vid, uv, faces = split_seams(model)
    expr = None if expression is None else torch.as_tensor(expression, dtype=torch.float32)
    v = model.vertices(torch.as_tensor(identity, dtype=torch.float32), expr).numpy()[vid]
    normals = unit_vertex_normals(trimesh.Trimesh(v, faces, process=False)).astype(np.float32)
    morphs = model.expression_basis[:, torch.as_tensor(vid)].numpy().astype(np.float32)
    return TexturedMesh(positions=v.astype(np.float32), normals=normals, uvs=uv, faces=faces,
                        base_color=base_color, morph_positions=morphs, morph_names=model.expression_names)
