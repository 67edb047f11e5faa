"""Shape beyond the head model where the model cannot reach: hair volume, a cap, ears (the JIFF idea, as a
surface offset on the fitted mesh).

ICT-FaceKit's scalp is bald and its ears average, so a fitted head's silhouette misses the hair or the hat
around it. Here every skin vertex outside the face region moves along its normal by an offset fitted to
the person's silhouettes (MediaPipe selfie segmentation, ``recon.capture.people_masks``) above the chin in
each frame: the head is rasterized (``recon.ops.rasterize``) and its silhouette anti-aliased
(``render.mesh_raster.silhouette_antialias``: differentiable in the vertices), Adam fits the offsets
against the masks, and a Laplacian over the whole mesh keeps them smooth and fading to zero into the
face region, which stays the landmark fit's (every head keeps ICT's face). The offsets are a free
parameter averaged over ``smooth_iters`` rings of neighbours (a low-pass: one vertex cannot spike out alone),
bounded before the averaging: a head grows up to ``max_out`` and shrinks up to ``max_in``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .fit import HeadFit
from .model import FACE_VERTICES, HeadModel
from .observe import crop_intrinsics, face_crop, warp_crop


@dataclass
class DetailConfig:
    steps: int = 300  # Adam steps, one frame each (0: no detail)
    size: int = 128  # pixels across each frame's head crop
    crop: float = 2.4  # crop side over the face landmarks' box's larger side (hair and hat fit inside)
    lr: float = 0.002  # metres per Adam step
    smooth_iters: int = 30  # the offsets are a parameter averaged over this many rings of neighbours: no spikes
    smoothness: float = 10.0  # weight of the offsets' mean squared Laplacian (per cm^2) beside the mask error
    max_out: float = 0.06  # metres the surface may move out
    max_in: float = 0.01  # metres it may move in


@dataclass(frozen=True)
class Detail:
    """offset: (V,) metres along each vertex's normal (0 on the face region, eyes and mouth); iou_before /
    iou_after: the head's silhouette against the masks above the chin, mean over the frames fitted."""

    offset: np.ndarray
    iou_before: float
    iou_after: float


def identity_normals(model: HeadModel, identity: np.ndarray) -> Tensor:
    """(V, 3) float32 unit vertex normals of the neutral head with ``identity``: the offsets' directions."""
    import trimesh

    from ..bake.texture import unit_vertex_normals

    base = model.vertices(torch.as_tensor(identity, dtype=torch.float32))
    return torch.as_tensor(unit_vertex_normals(trimesh.Trimesh(base.numpy(), model.faces.numpy(), process=False)),
                           dtype=torch.float32)


def growth(model: HeadModel, identity: np.ndarray, offset: np.ndarray | None) -> np.ndarray:
    """(V, 3) float32: what the offsets add to every vertex of the head (zeros without offsets)."""
    if offset is None:
        return np.zeros((model.num_vertices, 3), np.float32)
    return (identity_normals(model, identity) * torch.as_tensor(offset, dtype=torch.float32)[:, None]).numpy()


def fit_detail(model: HeadModel, fit: HeadFit, masks: list[np.ndarray], boxes: list, intrinsics: np.ndarray,
               chin_y: list[float], cfg: DetailConfig, given: np.ndarray | None = None) -> Detail:
    """Offsets fitted to ``masks`` ((H, W) uint8 0/255 person masks of the fitted frames, in ``fit.frames``
    order), with the face ``boxes`` (x0, y0, x1, y1), ``intrinsics`` (N, 4) and the chin's image row in each
    (pixels below it are the neck and body, which the head model does not claim). given: offsets (V,) fitted
    elsewhere, measured on these frames instead of fitting any (``iou_after``)."""
    from ..ops.rasterize import rasterize
    from ..render.mesh_raster import UniformLaplacian, edge_neighbours, silhouette_antialias

    n = len(masks)
    faces = model.faces
    neighbours = torch.as_tensor(edge_neighbours(faces.numpy()))
    lap = UniformLaplacian(faces.numpy(), model.num_vertices)
    free = torch.zeros(model.num_vertices, dtype=torch.bool)
    free[FACE_VERTICES:model.skin_vertices] = True
    ident = torch.as_tensor(fit.identity, dtype=torch.float32)
    normals = identity_normals(model, fit.identity)
    posed = [model.vertices(ident, torch.as_tensor(fit.expression[k], dtype=torch.float32)) for k in range(n)]
    R = torch.as_tensor(fit.rotation, dtype=torch.float32)
    t = torch.as_tensor(fit.translation, dtype=torch.float32)
    targets, Ks, regions = [], [], []
    for m, box, intr, cy in zip(masks, boxes, intrinsics, chin_y):
        A = face_crop(box, cfg.crop, cfg.size)
        targets.append(torch.as_tensor(warp_crop(m, A, cfg.size), dtype=torch.float32) / 255)
        Ks.append(torch.as_tensor(crop_intrinsics(intr, A), dtype=torch.float32))
        region = torch.zeros(cfg.size, cfg.size, dtype=torch.bool)
        region[:max(0, min(cfg.size, int(A[1, 1] * cy + A[1, 2]))), :] = True  # above the chin
        regions.append(region)
    d = torch.zeros(model.num_vertices, requires_grad=True)

    def silhouette(k: int, offset: Tensor) -> Tensor:
        v = posed[k] + normals * offset[:, None]
        c = v @ R[k].T + t[k]
        z = c[:, 2].clamp_min(1e-3)
        K = Ks[k]
        screen = torch.stack([K[0] * c[:, 0] / z + K[2], K[1] * c[:, 1] / z + K[3], z], 1)
        fid, _, depth = rasterize(screen, faces, cfg.size, cfg.size)
        colour = (fid >= 0).float()[..., None].expand(-1, -1, 3).contiguous()
        return silhouette_antialias(colour, fid, depth, screen, faces, neighbours)[..., 0]

    def iou(offset: Tensor) -> float:
        with torch.no_grad():
            out = []
            for k in range(n):
                s, m, r = silhouette(k, offset) > 0.5, targets[k] > 0.5, regions[k]
                out.append(float((s & m & r).sum()) / max(float(((s | m) & r).sum()), 1.0))
        return float(np.mean(out))

    def smoothed(x: Tensor) -> Tensor:
        x = torch.where(free, x, torch.zeros_like(x))[:, None]
        for _ in range(cfg.smooth_iters):
            x = x - lap(x)  # each vertex takes its neighbours' mean
        return torch.where(free, x[:, 0], torch.zeros_like(x[:, 0]))

    before = iou(torch.zeros(model.num_vertices))
    if given is not None:
        return Detail(np.asarray(given), before, iou(torch.as_tensor(given, dtype=torch.float32)))
    opt = torch.optim.Adam([d], lr=cfg.lr)
    for step in range(cfg.steps):
        offset = smoothed(d)
        k = step % n
        err = ((silhouette(k, offset) - targets[k]) ** 2)[regions[k]].mean()
        smooth = (lap(offset[:, None] * 100) ** 2).mean()  # centimetres
        opt.zero_grad()
        (err + cfg.smoothness * 1e-3 * smooth).backward()
        opt.step()
        with torch.no_grad():
            d.clamp_(-cfg.max_in, cfg.max_out)
    with torch.no_grad():
        offset = smoothed(d)
    return Detail(offset.numpy(), before, iou(offset))
