"""Mesh rasterization helpers shared by everything that renders a mesh (synth, bake, subject models):
world vertices to screen, mesh adjacency, a uniform Laplacian, and nvdiffrast-style silhouette
anti-aliasing that makes coverage differentiable in the vertices (``recon.ops.rasterize`` itself has
gradients inside faces only).
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..core.types import Cameras


def screen_vertices(vertices: Tensor, cams: Cameras, i: int) -> Tensor:
    """(V, 3) world vertices -> screen (u, v, z) in camera i (pinhole, OpenCV)."""
    c2w = torch.as_tensor(cams.c2w[i], dtype=torch.float64)
    pc = (vertices - c2w[:3, 3]) @ c2w[:3, :3]  # R^T (x - t), row-wise
    z = pc[:, 2]
    zs = torch.where(z.abs() < 1e-12, torch.full_like(z, 1e-12), z)
    u = float(cams.fx[i]) * pc[:, 0] / zs + float(cams.cx[i])
    v = float(cams.fy[i]) * pc[:, 1] / zs + float(cams.cy[i])
    return torch.stack([u, v, z], 1).float()


@dataclass(frozen=True)
class CoveredPixels:
    """The pixels of one photo that a mesh covers (and its mask keeps): what a texture or material fit sees.

    view: the capture's frame index; eye: (3,) camera centre (mesh frame); face: (P,) face ids;
    bary: (P, 3) float64 barycentrics at the pixel centres; rgb: (P, 3) float32 photo colour in [0, 1].
    """

    view: int
    eye: Tensor
    face: Tensor
    bary: Tensor
    rgb: Tensor


def covered_pixels(vertices: np.ndarray, faces: np.ndarray, capture, normalization: np.ndarray,
                   max_views: int = 100, erode: int = 0) -> Iterator[CoveredPixels]:
    """Rasterize the mesh (vertices (V, 3) in the capture's original frame, faces (F, 3)) into up to
    ``max_views`` training photos of the normalised ``capture``; yields each photo's covered, in-mask pixels.
    erode: drop pixels within this many pixels of the coverage's or the mask's edge (their colour mixes
    subject and background)."""
    from ..ops.rasterize import rasterize

    idx = capture.split_indices("train", max_views)
    cams = capture.cameras[idx].transformed(np.linalg.inv(normalization))
    verts = torch.as_tensor(vertices, dtype=torch.float64)
    faces_t = torch.as_tensor(faces, dtype=torch.long)
    for k, i in enumerate(idx):
        H, W = int(cams.height[k]), int(cams.width[k])
        fid, bary, _ = rasterize(screen_vertices(verts, cams, k), faces_t, H, W)
        hit = fid >= 0
        if capture.masks is not None:
            hit &= torch.as_tensor(capture.masks[i] > 127)
        if erode > 0:  # a min-filter of the coverage
            hit = -F.max_pool2d(-hit.float()[None, None], 2 * erode + 1, 1, erode)[0, 0] > 0.5
        yield CoveredPixels(view=int(i), eye=torch.as_tensor(cams.c2w[k, :3, 3], dtype=torch.float64),
                            face=fid[hit], bary=bary[hit].double(),
                            rgb=torch.as_tensor(capture.images[i])[hit].float() / 255)


def weld(positions: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Seam copies merged: ``index`` (V,) into unique positions, and the faces (F, 3) on them."""
    _, index = np.unique(positions, axis=0, return_inverse=True)
    index = index.reshape(-1)
    return index, index[faces]


def edge_neighbours(faces: np.ndarray) -> np.ndarray:
    """(F, 3) the face across edge k (from corner k+1 to k+2) of each face, -1 on a boundary."""
    F_ = len(faces)
    a = faces[:, [1, 2, 0]].reshape(-1)
    b = faces[:, [2, 0, 1]].reshape(-1)
    key = np.minimum(a, b).astype(np.int64) * (int(faces.max()) + 1) + np.maximum(a, b)
    order = np.argsort(key, kind="stable")
    ks = key[order]
    nb = np.full(3 * F_, -1, np.int64)
    same = np.nonzero(ks[1:] == ks[:-1])[0]  # consecutive pairs share an edge
    nb[order[same]] = order[same + 1] // 3
    nb[order[same + 1]] = order[same] // 3
    return nb.reshape(F_, 3)


class UniformLaplacian:
    """``I - mean of the neighbours`` on the vertices of a triangle mesh: ``lap(x)`` maps (n, C) -> (n, C).

    Applied as a gather and an ``index_add`` over the directed edges: on the CPU about 3x faster than a
    sparse matrix product, forward and backward (the refinement applies it every step).
    """

    def __init__(self, faces: np.ndarray, n: int):
        e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
        e = np.unique(np.sort(e, axis=1), axis=0)
        e = np.concatenate([e, e[:, ::-1]])
        self.src = torch.as_tensor(e[:, 0], dtype=torch.long)
        self.dst = torch.as_tensor(e[:, 1], dtype=torch.long)
        self.inv_deg = 1.0 / torch.bincount(self.src, minlength=n).clamp_min(1).float()[:, None]

    def __call__(self, x: Tensor) -> Tensor:
        total = torch.zeros_like(x).index_add_(0, self.src, x.index_select(0, self.dst))
        return x - total * self.inv_deg.to(x.dtype)


def _edge_values(xy: Tensor, p: Tensor) -> Tensor:
    """Edge functions (P, 3) of triangles xy (P, 3, 2) at points p (P, 2); edge k runs corner k+1 -> k+2.

    Positive inside for a counter-clockwise screen triangle (the caller flips the sign otherwise).
    """
    a = torch.roll(xy, -1, 1)
    b = torch.roll(xy, -2, 1)
    d = b - a
    q = p[:, None] - a
    return d[..., 0] * q[..., 1] - d[..., 1] * q[..., 0]


def silhouette_antialias(color: Tensor, fid: Tensor, depth: Tensor, screen: Tensor, faces: Tensor,
                         neighbours: Tensor) -> Tensor:
    """Blend pixels across silhouette edges by where the edge crosses between them (differentiable).

    color: (H, W, 3) the rendered colour (background where ``fid`` < 0); fid: (H, W) face ids;
    depth: (H, W) camera depth (0 on background); screen: (V, 3) screen vertices (u, v, z);
    faces: (F, 3); neighbours: (F, 3) from ``edge_neighbours``. Returns (H, W, 3).

    For two neighbouring pixels on different faces, the nearer one's face (s) is followed from
    its pixel centre towards the other's (o): if it leaves through a silhouette edge (the face
    across it faces the other way, or there is none) at a fraction t of the way, the surface
    covers o by t - 1/2 when t > 1/2 (o takes that much of s's colour), and s is uncovered by
    1/2 - t otherwise (s takes that much of o's colour), as nvdiffrast's antialias does.
    """
    xy = screen[:, :2]
    corners = xy[faces]  # (F, 3, 2)
    e1, e2 = corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]
    area = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]  # screen orientation of each face
    front = area.detach() > 0
    # faces with a silhouette edge (no face across it, or one facing the other way): only pixels on
    # them can blend, so the pairs of all other faces (most of a mesh's inside) are dropped early
    rim = ((neighbours < 0) | (front[neighbours.clamp_min(0)] != front[:, None])).any(1)
    far = torch.where(fid >= 0, depth.detach(), torch.full_like(depth, float("inf")))
    # every pair of neighbouring pixels on different faces, horizontal and vertical together
    rh, ch = torch.nonzero(fid[:, :-1] != fid[:, 1:], as_tuple=True)
    rv, cv = torch.nonzero(fid[:-1, :] != fid[1:, :], as_tuple=True)
    rows, cols = torch.cat([rh, rv]), torch.cat([ch, cv])
    r2, c2 = torch.cat([rh, rv + 1]), torch.cat([ch + 1, cv])
    a_front = far[rows, cols] < far[r2, c2]  # the nearer pixel is the surface's side
    rs, cs = torch.where(a_front, rows, r2), torch.where(a_front, cols, c2)
    ro, co = torch.where(a_front, r2, rows), torch.where(a_front, c2, cols)
    f = fid[rs, cs]
    keep = (f >= 0) & rim[f.clamp_min(0)]
    rs, cs, ro, co, f = rs[keep], cs[keep], ro[keep], co[keep], f[keep]
    ps = torch.stack([cs, rs], 1).to(xy.dtype) + 0.5
    po = torch.stack([co, ro], 1).to(xy.dtype) + 0.5
    sign = torch.where(area[f] > 0, 1.0, -1.0).to(xy.dtype)[:, None]
    es = _edge_values(corners[f], ps) * sign
    eo = _edge_values(corners[f], po) * sign
    den = es - eo
    t = es / torch.where(den.abs() > 1e-12, den, torch.full_like(den, 1e-12))
    t = torch.where(eo.detach() < 0, t, torch.full_like(t, 2.0))  # only edges the segment leaves through
    t, k = t.min(1)
    nb = neighbours[f, k]
    sil = (nb < 0) | (front[nb.clamp_min(0)] != front[f])
    keep = sil & (t.detach() >= 0) & (t.detach() <= 1)
    t, rs, cs, ro, co = t[keep], rs[keep], cs[keep], ro[keep], co[keep]
    diff = color[rs, cs] - color[ro, co]  # surface minus the other side
    w = (t - 0.5)[:, None].to(color.dtype)
    zero = torch.zeros_like(diff)
    # o takes w of s's colour where the surface covers it (w > 0); s takes -w of o's where it does not
    delta = torch.zeros_like(color).index_put((torch.cat([ro, rs]), torch.cat([co, cs])),
                                              torch.cat([torch.where(w > 0, w * diff, zero),
                                                         torch.where(w < 0, w * diff, zero)]), accumulate=True)
    return color + delta
