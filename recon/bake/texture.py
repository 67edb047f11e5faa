"""Texture baking: for every texel, its point on the decimated mesh, queried in the fine field.

1. Rasterize the triangles in UV space (``recon.ops.rasterize`` with every vertex at depth
   1, so its barycentrics are the affine ones): each covered texel gets a face and
   barycentrics, hence a surface point, a smooth normal and a tangent frame.
2. Move the point onto the fine surface (a few clamped Newton steps along the SDF
   gradient): the decimated mesh deviates from the field by up to a few grid cells.
3. Base colour = ``albedo(x)``; the fine normal ``grad sdf(x)`` (central differences),
   carried to original units and expressed in the decimated mesh's tangent frame,
   is the normal map; occlusion/roughness/metallic are constants until materials
   are fitted.
4. Texels outside every chart are filled by dilation and push-pull so bilinear
   filtering and mip-maps never reach an unbaked texel (no visible seams).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
import trimesh
from torch import Tensor

from ..core.log import get_logger
from .extract import transform_points
from .field_protocol import SurfaceField, field_device
from .textured_mesh import TexturedMesh
from .uv import UVLayout

log = get_logger(__name__)


# ---------------------------------------------------------------------------------------------
# geometry helpers


def vertex_tangents(positions: np.ndarray, normals: np.ndarray, uvs: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V, 4) unit tangents along +u with handedness w, for uvs in glTF convention (v down).

    Per face, the tangent ``dP/du`` and the "up the image" bitangent ``-dP/dv`` are summed
    per vertex weighted by face area, the tangent is orthogonalised against the vertex
    normal (Gram-Schmidt), and ``w = sign(dot(cross(N, T), B))`` so that a renderer's
    ``B = cross(N, T) * w`` points up the image, as glTF's normal textures expect.
    """
    p = positions.astype(np.float64)[faces]  # (F, 3, 3)
    t = uvs.astype(np.float64)[faces]  # (F, 3, 2)
    e1, e2 = p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]
    d1, d2 = t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]
    det = d1[:, 0] * d2[:, 1] - d2[:, 0] * d1[:, 1]
    det = np.where(np.abs(det) < 1e-20, 1e-20, det)
    tan = (e1 * d2[:, 1:2] - e2 * d1[:, 1:2]) / det[:, None]  # dP/du
    bit = -(e2 * d1[:, 0:1] - e1 * d2[:, 0:1]) / det[:, None]  # -dP/dv: up the image
    area = 0.5 * np.linalg.norm(np.cross(e1, e2), axis=1, keepdims=True)

    def unit(a):
        return a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-20)

    V = len(positions)
    T = np.zeros((V, 3))
    B = np.zeros((V, 3))
    for k in range(3):
        np.add.at(T, faces[:, k], unit(tan) * area)
        np.add.at(B, faces[:, k], unit(bit) * area)
    n = unit(normals.astype(np.float64))
    T = T - n * (T * n).sum(-1, keepdims=True)
    # a vertex whose tangent vanished (degenerate uvs) gets any vector orthogonal to n
    bad = np.linalg.norm(T, axis=-1) < 1e-12
    if bad.any():
        alt = np.where(np.abs(n[bad, :1]) < 0.9, [[1.0, 0, 0]], [[0, 1.0, 0]])
        T[bad] = alt - n[bad] * (alt * n[bad]).sum(-1, keepdims=True)
    T = unit(T)
    w = np.sign((np.cross(n, T) * B).sum(-1))
    w[w == 0] = 1.0
    return np.concatenate([T, w[:, None]], -1).astype(np.float32)


def unit_vertex_normals(mesh: trimesh.Trimesh) -> np.ndarray:
    """(V, 3) unit vertex normals; where the faces around a vertex cancel out (a closed fan over a
    folded hole), the direction from the mesh's centre stands in (glTF requires unit normals)."""
    n = np.asarray(mesh.vertex_normals, np.float64).copy()
    bad = ~(np.linalg.norm(n, axis=1) > 0.5)
    if bad.any():
        d = np.asarray(mesh.vertices, np.float64)[bad] - np.asarray(mesh.vertices).mean(0)
        n[bad] = d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
        n[bad & (np.linalg.norm(n, axis=1) < 0.5)] = [0.0, 0.0, 1.0]
    return n


def rasterize_uv(uvs: Tensor, faces: Tensor, size: int) -> tuple[Tensor, Tensor]:
    """Which face covers each texel centre, and where.

    uvs: (V, 2) glTF-convention texture coordinates; faces: (F, 3).
    Returns face_id (S, S) int64 (-1: no face) and barycentrics (S, S, 3).
    """
    from ..ops.rasterize import rasterize

    screen = torch.cat([uvs.double() * size, torch.ones_like(uvs[:, :1], dtype=torch.float64)], -1)
    face_id, bary, _ = rasterize(screen, faces.long(), size, size)
    return face_id, bary


def dilate(img: Tensor, mask: Tensor, iterations: int = 8) -> Tensor:
    """Fill the texels outside ``mask`` from the texels inside.

    img: (H, W, C) float; mask: (H, W) bool. First ``iterations`` rings are grown by
    averaging valid 3x3 neighbours (faithful next to the charts, where bilinear
    filtering reads), then push-pull (a mean pyramid of the valid texels, upsampled
    back) fills the rest smoothly, so mip-maps stay seam free too.
    """
    x = img.permute(2, 0, 1)[None].float() * mask[None, None]
    w = mask[None, None].float()
    for _ in range(iterations):
        if bool(w.min() > 0):
            break
        # 3x3 box sums (the 1/9 cancels in sx / sw)
        sx = F.avg_pool2d(x, 3, stride=1, padding=1)
        sw = F.avg_pool2d(w, 3, stride=1, padding=1)
        grow = (w == 0) & (sw > 0)
        x = torch.where(grow, sx / sw.clamp(min=1e-12), x)
        w = torch.where(grow, torch.ones_like(w), w)
    x = _push_pull(x, w)
    return x[0].permute(1, 2, 0).to(img.dtype)


def _push_pull(x: Tensor, w: Tensor) -> Tensor:
    """Fill the texels of ``x`` (1, C, H, W) where the validity ``w`` (1, 1, H, W) is 0."""
    if min(x.shape[-2:]) <= 1 or bool(w.min() > 0):
        return x
    H, W = x.shape[-2:]
    xp = F.pad(x * w, (0, W % 2, 0, H % 2))
    wp = F.pad(w, (0, W % 2, 0, H % 2))
    sx, sw = F.avg_pool2d(xp, 2), F.avg_pool2d(wp, 2)
    coarse = _push_pull(sx / sw.clamp(min=1e-12), (sw > 0).to(sw.dtype))
    up = F.interpolate(coarse, scale_factor=2, mode="bilinear", align_corners=False)[..., :H, :W]
    return torch.where(w > 0, x, up)


# ---------------------------------------------------------------------------------------------
# field queries


def _batched(fn, x: Tensor, chunk: int) -> Tensor:
    return torch.cat([fn(c) for c in x.split(chunk)]) if len(x) else fn(x)


@torch.no_grad()
def sdf_gradient(field: SurfaceField, x: Tensor, step: float, chunk: int = 1 << 18) -> tuple[Tensor, Tensor]:
    """SDF values (N,) and central-difference gradients (N, 3) at x (N, 3)."""
    offs = torch.eye(3, dtype=x.dtype, device=x.device) * step
    sd = lambda p: field.sdf(p).reshape(-1).to(x.dtype)  # noqa: E731
    vals = _batched(sd, x, chunk)
    grad = torch.empty_like(x)
    for k in range(3):
        plus = _batched(sd, x + offs[k], chunk)
        minus = _batched(sd, x - offs[k], chunk)
        grad[:, k] = (plus - minus) / (2 * step)
    return vals, grad


@torch.no_grad()
def project_to_surface(field: SurfaceField, x: Tensor, step: float, max_move: float, iterations: int = 2,
                       chunk: int = 1 << 18) -> tuple[Tensor, Tensor]:
    """Newton steps ``x - s * g / |g|^2`` onto the zero level set, the total move clamped to ``max_move``.

    Returns the projected points and the SDF gradient (N, 3) at the last step's start,
    within a fraction of a cell of the final point after the first step.
    """
    x0 = x
    for _ in range(iterations):
        s, g = sdf_gradient(field, x, step, chunk)
        x = x - (s / (g * g).sum(-1).clamp(min=1e-12))[:, None] * g
        d = x - x0
        n = d.norm(dim=-1, keepdim=True)
        x = x0 + d * (max_move / n.clamp(min=max_move))
    return x, g


# ---------------------------------------------------------------------------------------------
# baking


@dataclass(frozen=True)
class BakeStats:
    uv_coverage: float  # fraction of texels inside a chart
    mean_projection: float  # mean distance texel points moved onto the fine surface (original units)


def bake_textures(field: SurfaceField, normalization: np.ndarray, mesh: trimesh.Trimesh, layout: UVLayout,
                  texture_size: int = 1024, voxel: float = 2.0 / 255, normal_map: bool = True,
                  fd_step: float = 0.0, roughness: float = 0.8, metallic: float = 0.0,
                  chunk_points: int = 1 << 18, dilate_iterations: int = 8) -> tuple[TexturedMesh, BakeStats]:
    """Bake base colour, normal and ORM textures of ``field`` onto ``mesh`` cut by ``layout``.

    mesh: the decimated mesh in original units; normalization: 4x4 original -> normalised.
    voxel: the extraction grid's cell size in normalised units: sets the finite-difference
        step (half a cell unless ``fd_step``) and how far texel points may move (4 cells).
    """
    device = field_device(field)
    A = np.asarray(normalization, np.float64)
    scale = float(abs(np.linalg.det(A[:3, :3])) ** (1 / 3))
    step = fd_step if fd_step > 0 else 0.5 * voxel

    vmap = layout.vmapping
    positions = np.asarray(mesh.vertices, np.float64)[vmap]
    normals = unit_vertex_normals(mesh)[vmap]
    faces = layout.faces
    tangents = vertex_tangents(positions, normals, layout.uvs, faces)

    S = int(texture_size)
    uv_t = torch.as_tensor(layout.uvs, device=device)
    face_id, bary = rasterize_uv(uv_t, torch.as_tensor(faces, device=device), S)
    hit = face_id >= 0
    f = face_id[hit]
    b = bary[hit].double()  # (P, 3)
    fv = torch.as_tensor(faces, device=device)[f]  # (P, 3)

    def interp(attr: np.ndarray) -> Tensor:
        a = torch.as_tensor(attr, dtype=torch.float64, device=device)[fv]  # (P, 3, C)
        return (b[..., None] * a).sum(1)

    A_t = torch.as_tensor(A, dtype=torch.float64, device=device)
    x = (interp(positions) @ A_t[:3, :3].T + A_t[:3, 3]).float()  # texel points, normalised frame
    x_s, grad = project_to_surface(field, x, step, max_move=4 * voxel, chunk=chunk_points)
    moved = float((x_s - x).norm(dim=-1).mean()) / scale if len(x) else 0.0

    with torch.no_grad():
        color = _batched(lambda q: field.albedo(q).float().clamp(0, 1), x_s, chunk_points)
    base = torch.zeros(S, S, 3, dtype=torch.float32, device=device)
    base[hit] = color
    base_u8 = _to_u8(dilate(base, hit, dilate_iterations))

    normal_u8 = None
    if normal_map:
        # the fine normal in original units: gradients transform by A^T
        n_fine = F.normalize(grad.double() @ A_t[:3, :3], dim=-1)
        n_s = F.normalize(interp(normals), dim=-1)
        t_s = F.normalize(interp(tangents[:, :3]), dim=-1)
        w = torch.as_tensor(tangents[:, 3], dtype=torch.float64, device=device)[fv][:, 0]
        b_s = torch.cross(n_s, t_s, dim=-1) * w[:, None]
        # solve n_fine = x*T + y*B + z*N for the frame the renderer builds
        M = torch.stack([t_s, b_s, n_s], -1)  # (P, 3, 3) columns T, B, N
        n_ts = torch.linalg.solve(M, n_fine[..., None])[..., 0]
        n_ts = F.normalize(torch.nan_to_num(n_ts), dim=-1)
        n_ts[:, 2] = n_ts[:, 2].clamp(min=0)  # a normal facing away from the surface is noise
        nm = torch.zeros(S, S, 3, dtype=torch.float32, device=device)
        nm[..., 2] = 1.0
        nm[hit] = F.normalize(n_ts, dim=-1).float()
        nm = F.normalize(dilate(nm, hit, dilate_iterations), dim=-1)
        normal_u8 = _to_u8(nm * 0.5 + 0.5)

    orm = np.empty((S, S, 3), np.uint8)
    orm[...] = np.array([255, round(roughness * 255), round(metallic * 255)], np.uint8)

    with torch.no_grad():
        vx = torch.as_tensor(transform_points(A, np.asarray(mesh.vertices, np.float64)), device=device).float()
        vcol = _batched(lambda q: field.albedo(q).float().clamp(0, 1), vx, chunk_points)
    vertex_colors = _to_u8(vcol)[vmap]

    out = TexturedMesh(
        positions=positions.astype(np.float32), normals=normals.astype(np.float32), uvs=layout.uvs,
        faces=faces.astype(np.int64), base_color=base_u8, normal_map=normal_u8, orm=orm, tangents=tangents,
        vertex_colors=vertex_colors)
    stats = BakeStats(uv_coverage=float(hit.float().mean()), mean_projection=moved)
    log.info("baked %dx%d textures: uv coverage %.3f, texel points moved %.3g on average",
             S, S, stats.uv_coverage, stats.mean_projection)
    return out, stats


def _to_u8(x: Tensor) -> np.ndarray:
    return (x.clamp(0, 1) * 255 + 0.5).to(torch.uint8).cpu().numpy()
