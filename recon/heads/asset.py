"""A fitted head as an asset mesh: ICT topology, UVs, and the 57 expressions as morph targets.

The model's vertices are split where its UV layout has seams (one asset vertex per (vertex, uv) pair),
so every head written by recon shares the same vertex order and the same landmark definitions
(``recon.heads.landmarks``). ICT's UDIM layout (tile k spans u in [k, k+1]) becomes one atlas: the
tiles side by side (skin, sockets, then the eyeballs moved to a tile of their own), u / tiles, v flipped
to glTF's top-left origin.
"""
from __future__ import annotations

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
              times: np.ndarray | None = None, expressions: np.ndarray | None = None) -> TexturedMesh:
    """The head with ``identity`` (100,) at rest (neutral expression) as a TexturedMesh carrying the 57
    expression shapes as morph targets and, given ``times`` (T,) seconds and ``expressions`` (T, 57), their
    weights over time (the "expressions" animation); ``base_color`` (H, W, 3) uint8 sRGB over the atlas."""
    vid, uv, faces = split_seams(model)
    v = model.vertices(torch.as_tensor(identity, dtype=torch.float32)).numpy()[vid]
    normals = unit_vertex_normals(trimesh.Trimesh(v, faces, process=False)).astype(np.float32)
    morphs = model.expression_basis[:, torch.as_tensor(vid)].numpy().astype(np.float32)
    anim = {} if expressions is None else {"morph_times": np.asarray(times, np.float32),
                                           "morph_weights": np.asarray(expressions, np.float32)}
    return TexturedMesh(positions=v.astype(np.float32), normals=normals, uvs=uv, faces=faces,
                        base_color=base_color, morph_positions=morphs, morph_names=model.expression_names, **anim)


def photo_texture(model: HeadModel, vertices: np.ndarray, head_to_camera: np.ndarray, intrinsics,
                  photo: np.ndarray, tile: int = 512, depth_tolerance: float = 0.004) -> tuple[np.ndarray, float]:
    """The atlas texture (tile * tiles wide, tile high, uint8 sRGB) of the head with model ``vertices``
    (V, 3) seen in ``photo`` (H, W, 3 uint8) from ``head_to_camera`` (4, 4; OpenCV camera) with intrinsics
    (fx, fy, cx, cy). Texels the photo sees (depth test against the head itself) take its colour; texels it
    does not see take the colour of their mirror point (x -> -x, ICT's symmetry plane) where that one is
    seen; the rest are filled from their neighbours (push-pull). Also returns the fraction of the atlas's
    covered texels seen directly."""
    from ..bake.texture import dilate
    from ..ops.rasterize import rasterize

    vid, uv, faces = split_seams(model)
    v = np.asarray(vertices, np.float64)[vid]
    fx, fy, cx, cy = [float(x) for x in intrinsics]
    R, t = head_to_camera[:3, :3], head_to_camera[:3, 3]

    def to_screen(p: np.ndarray) -> np.ndarray:
        c = p @ R.T + t
        return np.stack([fx * c[:, 0] / c[:, 2] + cx, fy * c[:, 1] / c[:, 2] + cy, c[:, 2]], 1)

    H, W = photo.shape[:2]
    f_t = torch.as_tensor(faces)
    face_img, _, depth = rasterize(torch.as_tensor(to_screen(v)), f_t, H, W)
    depth = np.where(face_img.numpy() >= 0, depth.numpy(), np.inf).astype(np.float32)
    tiles = uv_tiles(model)
    TW, TH = tile * tiles, tile
    atlas = torch.as_tensor(np.concatenate([uv * [TW, TH], np.ones((len(uv), 1))], 1))
    tf, tb, _ = rasterize(atlas, f_t, TH, TW)
    covered = tf.numpy() >= 0
    fid, bary = tf.numpy()[covered], tb.numpy()[covered].astype(np.float64)
    points = (v[faces[fid]] * bary[..., None]).sum(1)  # (T, 3) head frame

    def sample(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s = to_screen(p)
        x, y = s[:, 0] - 0.5, s[:, 1] - 0.5  # pixel centres at +0.5
        inside = (x >= 0) & (y >= 0) & (x <= W - 1) & (y <= H - 1) & (s[:, 2] > 0)
        xi, yi = np.clip(np.rint(x).astype(int), 0, W - 1), np.clip(np.rint(y).astype(int), 0, H - 1)
        seen = inside & (s[:, 2] <= depth[yi, xi] + depth_tolerance)
        n = len(x)
        rows = -(-n // 4096)  # remap's maps must stay under 32767 rows
        mx, my = (np.pad(c.astype(np.float32), (0, rows * 4096 - n)).reshape(rows, 4096) for c in (x, y))
        col = cv2.remap(photo, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).reshape(-1, 3)[:n]
        return col.astype(np.float32), seen

    col, seen = sample(points)
    mcol, mseen = sample(points * [-1.0, 1.0, 1.0])
    use_mirror = ~seen & mseen
    col[use_mirror] = mcol[use_mirror]
    img = np.zeros((TH, TW, 3), np.float32)
    valid = np.zeros((TH, TW), bool)
    img[covered] = col
    valid[covered] = seen | use_mirror
    filled = dilate(torch.as_tensor(img), torch.as_tensor(valid)).numpy()
    return np.clip(filled, 0, 255).astype(np.uint8), float(seen.mean())
