"""Fit the baked mesh's vertices and base colour to the training photos (differentiable rasterization).

Marching cubes on a fused or level-set surface places the mesh where the field's
geometry is, blurred by the grid and the fusion; rendered, its silhouettes and texture
drift from the photos by a pixel here and there, which costs several dB on detailed
subjects (the lego's studs and rods). As nvdiffrec and NeRF2Mesh do, the mesh is
refined against the photos themselves: each step renders one training view with
``recon.ops.rasterize`` (perspective-correct barycentrics, differentiable inside faces),
looks the colour up in the texture (a residual pyramid over the baked one), and
anti-aliases the silhouette as nvdiffrast does: where a covered pixel borders an
uncovered one and the face's edge between them is a silhouette edge (its neighbour
faces away or is missing), the two pixels are blended by where that edge crosses the
line between their centres, which is differentiable in the edge's vertices. Adam
moves per-vertex offsets (seam copies welded, a Laplacian penalty keeps them smooth)
and the texture together against the photo composited over white with its mask.

Topology does not change, so a watertight mesh stays watertight. Held-out views are
never used.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..core.log import get_logger
from ..core.progress import progress_bar
from .textured_mesh import TexturedMesh
from .texture_refine import ResidualPyramid, lookup_texture

log = get_logger(__name__)


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


def uniform_laplacian(faces: np.ndarray, n: int) -> torch.Tensor:
    """Sparse (n, n) ``I - mean of the neighbours`` of a triangle mesh's vertices."""
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    e = np.unique(np.sort(np.concatenate([e, e[:, ::-1]]), axis=1), axis=0)
    e = np.concatenate([e, e[:, ::-1]])
    deg = np.bincount(e[:, 0], minlength=n).astype(np.float32)
    w = -1.0 / np.maximum(deg[e[:, 0]], 1)
    idx = np.concatenate([e.T, np.stack([np.arange(n)] * 2)], 1)
    val = np.concatenate([w, np.ones(n, np.float32)])
    return torch.sparse_coo_tensor(torch.as_tensor(idx), torch.as_tensor(val, dtype=torch.float32), (n, n),
                                   check_invariants=False).coalesce()


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
    far = torch.where(fid >= 0, depth.detach(), torch.full_like(depth, float("inf")))
    delta = torch.zeros_like(color)
    for axis in (0, 1):  # horizontal, then vertical neighbours
        first, second = (fid[:, :-1], fid[:, 1:]) if axis == 0 else (fid[:-1, :], fid[1:, :])
        rows, cols = torch.nonzero(first != second, as_tuple=True)
        r2, c2 = (rows, cols + 1) if axis == 0 else (rows + 1, cols)
        a_front = far[rows, cols] < far[r2, c2]  # the nearer pixel is the surface's side
        rs, cs = torch.where(a_front, rows, r2), torch.where(a_front, cols, c2)
        ro, co = torch.where(a_front, r2, rows), torch.where(a_front, c2, cols)
        f = fid[rs, cs]
        keep = f >= 0
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
        delta = delta.index_put((ro, co), torch.where(w > 0, w * diff, zero), accumulate=True)
        delta = delta.index_put((rs, cs), torch.where(w < 0, w * diff, zero), accumulate=True)
    return color + delta


class _Views:
    """Training views for the fit: cameras in original units and photos over white (H, W, 3) in [0, 1]."""

    def __init__(self, capture, normalization: np.ndarray, max_views: int):
        self.idx = capture.split_indices("train", max_views)
        self.cams = capture.cameras[self.idx].transformed(np.linalg.inv(normalization))
        self.capture = capture

    def __len__(self) -> int:
        return len(self.idx)

    def photo(self, k: int) -> Tensor:
        """(H, W, 3) the k-th photo composited over white with its mask."""
        i = self.idx[k]
        img = torch.as_tensor(self.capture.images[i]).float() / 255
        m = torch.as_tensor(self.capture.masks[i]).float()[..., None] / 255
        return img * m + (1 - m)


def refine_mesh(mesh: TexturedMesh, capture, normalization: np.ndarray, steps: int = 1500, lr_position: float = 0.07,
                lr_texture: float = 0.01, smoothness: float = 60.0, max_views: int = 100, views_per_step: int = 1,
                levels: int = 4, seed: int = 0) -> tuple[TexturedMesh, dict]:
    """``mesh`` with vertices and base colour fitted to the training photos; also returns its stats.

    lr_position: Adam's step for the vertex offsets, in mean edge lengths.
    smoothness: weight, in thousandths, of the offsets' mean squared Laplacian (in mean edge lengths)
        beside the photos' mean squared error.
    views_per_step: training views rendered per Adam step (their losses averaged).
    levels: levels of the texture's residual pyramid (``ResidualPyramid``).
    Stats: training-view PSNR (every 4th view) before and after the fit, both as measured; ``refine_kept``:
    whether the refined mesh was returned (only when it scores higher); the mean vertex move (original units).
    """
    from ..ops.rasterize import rasterize
    from ..synth.render import screen_vertices

    if capture.cameras is None or capture.cameras.has_distortion or steps <= 0 or \
            len(capture.split_indices("train")) == 0:
        return mesh, {}
    if capture.masks is None:  # the photos' backgrounds are not the render's: silhouettes cannot be fitted
        log.info("mesh refinement skipped: the capture has no subject masks")
        return mesh, {}
    views = _Views(capture, normalization, max_views)
    index, welded = weld(mesh.positions, mesh.faces)
    n = int(index.max()) + 1
    pos0 = torch.zeros(n, 3)
    pos0[torch.as_tensor(index)] = torch.as_tensor(mesh.positions, dtype=torch.float32)
    edge_len = float(np.linalg.norm(mesh.positions[mesh.faces[:, 0]] - mesh.positions[mesh.faces[:, 1]], axis=1).mean())
    faces = torch.as_tensor(welded, dtype=torch.long)
    neighbours = torch.as_tensor(edge_neighbours(welded))
    lap = uniform_laplacian(welded, n)
    uv_faces = torch.as_tensor(mesh.uvs, dtype=torch.float32)[torch.as_tensor(mesh.faces, dtype=torch.long)]  # (F, 3, 2)
    offset = torch.nn.Parameter(torch.zeros(n, 3))  # in mean edge lengths
    pyramid = ResidualPyramid(mesh.base_color, levels)
    opt = torch.optim.Adam([{"params": [offset], "lr": lr_position},
                            {"params": pyramid.parameters(), "lr": lr_texture}])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.1 ** (s / steps))
    gen = torch.Generator().manual_seed(seed)
    white = torch.ones(3)

    def render(k: int, pos: Tensor, tex: Tensor) -> Tensor:
        H, W = int(views.cams.height[k]), int(views.cams.width[k])
        screen = screen_vertices(pos, views.cams, k)
        fid, bary, depth = rasterize(screen, faces, H, W)
        hit = fid >= 0
        f = fid[hit]
        uv = (bary[hit][..., None].float() * uv_faces[f]).sum(1)
        color = white.expand(H, W, 3).clone()
        color = color.index_put(torch.nonzero(hit, as_tuple=True), lookup_texture(tex, uv))
        return silhouette_antialias(color, fid, depth, screen, faces, neighbours)

    def photo_psnr(pos: Tensor, tex: Tensor) -> float:
        with torch.no_grad():
            err = [(render(k, pos, tex) - views.photo(k)).pow(2).mean() for k in range(0, len(views), 4)]
        return float(-10 * torch.log10(torch.stack(err).mean()))

    before = photo_psnr(pos0, pyramid.texture().clamp(0, 1))
    with progress_bar("mesh refinement", total=steps) as bar:
        for _ in range(steps):
            pos = pos0 + offset * edge_len
            tex = pyramid.texture()
            picks = torch.randint(len(views), (views_per_step,), generator=gen).tolist()
            loss = sum((render(k, pos, tex) - views.photo(k)).pow(2).mean() for k in picks) / len(picks)
            reg = torch.sparse.mm(lap, offset).pow(2).sum(1).mean()
            opt.zero_grad(set_to_none=True)
            (loss + smoothness * reg * 1e-3).backward()
            opt.step()
            sched.step()
            bar.advance(1)
    with torch.no_grad():
        pos = (pos0 + offset * edge_len)
    after = photo_psnr(pos, pyramid.texture().clamp(0, 1))
    kept = after > before
    stats = {"refine_psnr_before": before, "refine_psnr_after": after, "refine_kept": kept,
             "refine_mean_offset": float(offset.detach().norm(dim=1).mean() * edge_len)}
    if not kept:
        log.info("mesh refinement discarded: training-view PSNR %.2f -> %.2f dB", before, after)
        return mesh, stats
    log.info("mesh refined on %d views: PSNR %.2f -> %.2f dB on the training views", len(views), before, after)
    return _moved(mesh, pos.numpy(), index, welded).with_(base_color=pyramid.to_u8()), stats


def _moved(mesh: TexturedMesh, welded_positions: np.ndarray, index: np.ndarray, welded_faces: np.ndarray
           ) -> TexturedMesh:
    """``mesh`` with its vertices at ``welded_positions[index]``, normals and tangents recomputed."""
    import trimesh

    from .texture import unit_vertex_normals, vertex_tangents

    shape = trimesh.Trimesh(welded_positions, welded_faces, process=False)
    normals = unit_vertex_normals(shape)[index].astype(np.float32)
    positions = welded_positions[index].astype(np.float32)
    tangents = None if mesh.tangents is None else vertex_tangents(positions, normals, mesh.uvs, mesh.faces)
    return mesh.with_(positions=positions, normals=normals, tangents=tangents)
