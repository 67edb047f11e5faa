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

import time

import numpy as np
import torch
from torch import Tensor

from ..core.log import get_logger
from ..core.progress import progress_bar
from ..render.mesh_raster import edge_neighbours, silhouette_antialias, UniformLaplacian, weld
from .textured_mesh import TexturedMesh
from ..render.texture_lookup import ResidualPyramid, lookup_texture

log = get_logger(__name__)


class _Views:
    """Training views for the fit: cameras in original units and photos over white (H, W, 3) in [0, 1]."""

    def __init__(self, capture, normalization: np.ndarray, max_views: int):
        self.idx = capture.split_indices("train", max_views)
        self.cams = capture.cameras[self.idx].transformed(np.linalg.inv(normalization))
        self.capture = capture
        self._photos: dict[int, Tensor] = {}  # made once: a step would otherwise convert its photo again

    def __len__(self) -> int:
        return len(self.idx)

    def photo(self, k: int) -> Tensor:
        """(H, W, 3) the k-th photo composited over white with its mask."""
        if k not in self._photos:
            i = self.idx[k]
            img = torch.as_tensor(self.capture.images[i]).float() / 255
            m = torch.as_tensor(self.capture.masks[i]).float()[..., None] / 255
            self._photos[k] = img * m + (1 - m)
        return self._photos[k]


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
    whether the refined mesh was returned (only when it scores higher); the mean vertex move (original units);
    ``refine_seconds``: the wall time of the whole stage.
    """
    from ..ops.rasterize import rasterize
    from ..render.mesh_raster import screen_vertices

    if capture.cameras is None or capture.cameras.has_distortion or steps <= 0 or \
            len(capture.split_indices("train")) == 0:
        return mesh, {}
    if capture.masks is None:  # the photos' backgrounds are not the render's: silhouettes cannot be fitted
        log.info("mesh refinement skipped: the capture has no subject masks")
        return mesh, {}
    t_start = time.perf_counter()
    views = _Views(capture, normalization, max_views)
    index, welded = weld(mesh.positions, mesh.faces)
    n = int(index.max()) + 1
    pos0 = torch.zeros(n, 3)
    pos0[torch.as_tensor(index)] = torch.as_tensor(mesh.positions, dtype=torch.float32)
    edge_len = float(np.linalg.norm(mesh.positions[mesh.faces[:, 0]] - mesh.positions[mesh.faces[:, 1]], axis=1).mean())
    faces = torch.as_tensor(welded, dtype=torch.long)
    neighbours = torch.as_tensor(edge_neighbours(welded))
    lap = UniformLaplacian(welded, n)
    uv_faces = torch.as_tensor(mesh.uvs, dtype=torch.float32)[torch.as_tensor(mesh.faces, dtype=torch.long)]  # (F, 3, 2)
    offset = torch.nn.Parameter(torch.zeros(n, 3))  # in mean edge lengths
    pyramid = ResidualPyramid(mesh.base_color, levels)
    opt = torch.optim.Adam([{"params": [offset], "lr": lr_position},
                            {"params": pyramid.parameters(), "lr": lr_texture}], fused=True)  # one pass per tensor
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.1 ** (s / steps))
    gen = torch.Generator().manual_seed(seed)
    white = torch.ones(3)

    def render(k: int, pos: Tensor, colour) -> Tensor:
        """View k of the mesh at vertices pos, coloured by ``colour(uv (P, 2)) -> (P, 3)``."""
        H, W = int(views.cams.height[k]), int(views.cams.width[k])
        screen = screen_vertices(pos, views.cams, k)
        fid, bary, depth = rasterize(screen, faces, H, W)
        hit = fid >= 0
        f = fid[hit]
        uv = (bary[hit][..., None].float() * uv_faces[f]).sum(1)
        color = white.expand(H, W, 3).clone()
        color = color.index_put(torch.nonzero(hit, as_tuple=True), colour(uv))
        return silhouette_antialias(color, fid, depth, screen, faces, neighbours)

    def photo_psnr(pos: Tensor) -> float:
        """Training-view PSNR of the mesh as it would be written (the full texture, clamped)."""
        with torch.no_grad():
            tex = pyramid.texture().clamp(0, 1)
            err = [(render(k, pos, lambda uv: lookup_texture(tex, uv)) - views.photo(k)).pow(2).mean()
                   for k in range(0, len(views), 4)]
        return float(-10 * torch.log10(torch.stack(err).mean()))

    before = photo_psnr(pos0)
    with progress_bar("mesh refinement", total=steps) as bar:
        for _ in range(steps):
            pos = pos0 + offset * edge_len
            picks = torch.randint(len(views), (views_per_step,), generator=gen).tolist()
            loss = sum((render(k, pos, pyramid.sample) - views.photo(k)).pow(2).mean() for k in picks) / len(picks)
            reg = lap(offset).pow(2).sum(1).mean()
            opt.zero_grad(set_to_none=True)
            (loss + smoothness * reg * 1e-3).backward()
            opt.step()
            sched.step()
            bar.advance(1)
    with torch.no_grad():
        pos = (pos0 + offset * edge_len)
    after = photo_psnr(pos)
    kept = after > before
    stats = {"refine_psnr_before": before, "refine_psnr_after": after, "refine_kept": kept,
             "refine_mean_offset": float(offset.detach().norm(dim=1).mean() * edge_len),
             "refine_seconds": round(time.perf_counter() - t_start, 2)}
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
