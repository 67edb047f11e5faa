"""A fitted head as an asset mesh: ICT topology, UVs, and the 57 expressions as morph targets.

The model's vertices are split where its UV layout has seams (one asset vertex per (vertex, uv) pair),
so every head written by recon shares the same vertex order and the same landmark definitions
(``recon.heads.landmarks``). ICT's UDIM layout (tile k spans u in [k, k+1]) becomes one atlas: the
tiles side by side (skin, sockets, then the eyeballs moved to a tile of their own), u / tiles, v flipped
to glTF's top-left origin.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import trimesh

from ..bake.texture import unit_vertex_normals
from ..bake.textured_mesh import TexturedMesh
from .model import HeadModel


def uv_tiles(model: HeadModel) -> int:
    """How many tiles the atlas holds side by side: ICT's UDIM tiles in use (skin; sockets), plus one for
    the eyeballs, whose UVs overlap the skin's tile in ICT (they have their own texture there)."""
    return int(np.floor(model.uvs[model.face_uvs.reshape(-1), 0].max())) + 2


def split_seams(model: HeadModel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """vertex (A,) model vertex of each asset vertex; uv (A, 2) its glTF atlas coordinate; faces (F, 3) the
    triangles over asset vertices (same order as ``model.faces``)."""
    pairs = np.stack([model.faces.numpy().reshape(-1), model.face_uvs.reshape(-1)], 1)
    unique, inverse = np.unique(pairs, axis=0, return_inverse=True)
    uv = model.uvs[unique[:, 1]].astype(np.float64)
    uv[unique[:, 0] >= model.soft_vertices, 0] += uv_tiles(model) - 1  # the eyeballs' own tile
    atlas = np.stack([uv[:, 0] / uv_tiles(model), 1.0 - uv[:, 1]], 1).astype(np.float32)
    return unique[:, 0], atlas, inverse.reshape(-1, 3).astype(np.int64)


def head_mesh(model: HeadModel, identity: np.ndarray, base_color: np.ndarray,
              times: np.ndarray | None = None, expressions: np.ndarray | None = None,
              growth: np.ndarray | None = None) -> TexturedMesh:
    """The head with ``identity`` (100,) at rest (neutral expression) as a TexturedMesh carrying the 57
    expression shapes as morph targets and, given ``times`` (T,) seconds and ``expressions`` (T, 57), their
    weights over time (the "expressions" animation); ``base_color`` (H, W, 3) uint8 sRGB over the atlas;
    ``growth`` (V, 3): shape beyond the model added to every vertex (``detail.growth``)."""
    vid, uv, faces = split_seams(model)
    v = model.vertices(torch.as_tensor(identity, dtype=torch.float32)).numpy()
    v = (v if growth is None else v + growth)[vid]
    normals = unit_vertex_normals(trimesh.Trimesh(v, faces, process=False)).astype(np.float32)
    morphs = model.expression_basis[:, torch.as_tensor(vid)].numpy().astype(np.float32)
    anim = {} if expressions is None else {"morph_times": np.asarray(times, np.float32),
                                           "morph_weights": np.asarray(expressions, np.float32)}
    return TexturedMesh(positions=v.astype(np.float32), normals=normals, uvs=uv, faces=faces,
                        base_color=base_color, morph_positions=morphs, morph_names=model.expression_names, **anim)


@dataclass(frozen=True)
class TextureView:
    """One photo of the fitted head: vertices (V, 3) the model's vertices in it (identity + its expression);
    head_to_camera (4, 4) OpenCV camera; intrinsics (fx, fy, cx, cy) pixels; photo (H, W, 3) uint8 sRGB."""

    vertices: np.ndarray
    head_to_camera: np.ndarray
    intrinsics: tuple[float, float, float, float]
    photo: np.ndarray


def photo_texture(model: HeadModel, views: list[TextureView], tile: int = 512, depth_tolerance: float = 0.004,
                  sharpness: float = 4.0) -> tuple[np.ndarray, float]:
    """The atlas texture (tile * tiles wide, tile high, uint8 sRGB) of the head seen in ``views``.

    Each texel takes the views that see it (depth test against the head itself), blended with weights
    cos(angle between its normal and the ray) ** ``sharpness`` so the most frontal view dominates; texels no
    view sees take the colour of their mirror point (x -> -x, ICT's symmetry plane) where that one is seen;
    the rest are filled from their neighbours (push-pull). Also returns the fraction of the atlas's covered
    texels seen directly."""
    from ..bake.texture import dilate
    from ..ops.rasterize import rasterize

    vid, uv, faces = split_seams(model)
    f_t = torch.as_tensor(faces)
    TW, TH = tile * uv_tiles(model), tile
    atlas = torch.as_tensor(np.concatenate([uv * [TW, TH], np.ones((len(uv), 1))], 1))
    tf, tb, _ = rasterize(atlas, f_t, TH, TW)
    covered = tf.numpy() >= 0
    fid, bary = tf.numpy()[covered], tb.numpy()[covered].astype(np.float64)
    n = len(fid)
    acc, wsum = np.zeros((2, n, 3)), np.zeros((2, n))  # [direct, mirrored]

    for view in views:
        v = np.asarray(view.vertices, np.float64)[vid]
        normals = unit_vertex_normals(trimesh.Trimesh(v, faces, process=False))
        fx, fy, cx, cy = [float(x) for x in view.intrinsics]
        R, t = view.head_to_camera[:3, :3], view.head_to_camera[:3, 3]
        photo = view.photo
        H, W = photo.shape[:2]

        def to_screen(p: np.ndarray) -> np.ndarray:
            c = p @ R.T + t
            return np.stack([fx * c[:, 0] / c[:, 2] + cx, fy * c[:, 1] / c[:, 2] + cy, c[:, 2]], 1)

        face_img, _, depth = rasterize(torch.as_tensor(to_screen(v)), f_t, H, W)
        depth = np.where(face_img.numpy() >= 0, depth.numpy(), np.inf).astype(np.float32)
        points = (v[faces[fid]] * bary[..., None]).sum(1)  # (T, 3) head frame
        nrm = (normals[faces[fid]] * bary[..., None]).sum(1)

        for k, mirror in enumerate((1.0, -1.0)):
            p = points * [mirror, 1.0, 1.0]
            s = to_screen(p)
            x, y = s[:, 0] - 0.5, s[:, 1] - 0.5  # pixel centres at +0.5
            inside = (x >= 0) & (y >= 0) & (x <= W - 1) & (y <= H - 1) & (s[:, 2] > 0)
            xi, yi = np.clip(np.rint(x).astype(int), 0, W - 1), np.clip(np.rint(y).astype(int), 0, H - 1)
            seen = inside & (s[:, 2] <= depth[yi, xi] + depth_tolerance)
            ray = p @ R.T + t
            cos = -np.einsum("nc,nc->n", (nrm * [mirror, 1.0, 1.0]) @ R.T, ray / np.linalg.norm(ray, axis=1,
                                                                                           keepdims=True))
            w = np.where(seen, np.clip(cos, 0.0, 1.0) ** sharpness + 1e-6, 0.0)
            rows = -(-n // 4096)  # remap's maps must stay under 32767 rows
            mx, my = (np.pad(c.astype(np.float32), (0, rows * 4096 - n)).reshape(rows, 4096) for c in (x, y))
            col = cv2.remap(photo, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).reshape(-1, 3)[:n]
            acc[k] += w[:, None] * col
            wsum[k] += w

    seen = wsum[0] > 0
    use_mirror = ~seen & (wsum[1] > 0)
    col = np.where(seen[:, None], acc[0] / np.maximum(wsum[0], 1e-12)[:, None],
                   acc[1] / np.maximum(wsum[1], 1e-12)[:, None])
    img = np.zeros((TH, TW, 3), np.float32)
    valid = np.zeros((TH, TW), bool)
    img[covered] = col
    valid[covered] = seen | use_mirror
    filled = dilate(torch.as_tensor(img), torch.as_tensor(valid)).numpy()
    return np.clip(filled, 0, 255).astype(np.uint8), float(seen.mean())
