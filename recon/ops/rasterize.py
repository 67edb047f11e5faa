"""Triangle rasterization with a z-buffer and perspective-correct barycentrics.

Contract (shared by ``rasterize_torch`` and any compiled kernel behind ``rasterize``):

Inputs
  verts: (V, 3) float32/float64 screen-space vertices ``(u, v, z)``: ``u, v`` are
      continuous pixel coordinates (OpenCV: u right, v down; pixel ``(row i, col j)``
      covers ``[j, j+1] x [i, i+1]``, so its centre, where it is sampled, is
      ``(j + 0.5, i + 0.5)``), and ``z`` is the vertex's camera-space depth (> 0).
      For a pinhole camera ``u = fx * x / z + cx``, ``v = fy * y / z + cy``.
  faces: (F, 3) int64 vertex indices.
  height, width: output size in pixels.

Outputs
  face_id: (H, W) int64, the visible face at each pixel centre, -1 for background.
  bary: (H, W, 3) perspective-correct barycentrics of the pixel centre in that face
      (weights of ``faces[f, 0..2]``; they sum to 1; interpolating a vertex
      attribute with them gives its value at the 3D surface point), 0 for background.
  depth: (H, W) camera-space depth z of the surface at the pixel centre, 0 for background.

Rules
  * A pixel centre is covered by a face when all three edge functions, taken with
    the sign of the face's screen area, are >= 0 (edges inclusive). Each edge's
    function is evaluated with its endpoints in a canonical (lexicographic) order,
    so two faces sharing an edge compute bitwise-opposite values there: meshes
    render without cracks, also across UV seams where vertices are duplicated.
  * Both windings are drawn (no back-face culling). Faces with zero screen area
    or with a vertex at ``z <= 0`` are skipped (there is no near-plane clipping;
    the caller keeps the mesh in front of the camera).
  * Nearest wins: the smallest depth, compared in float32; ties go to the lower
    face index, so the result is deterministic.
  * ``bary`` and ``depth`` are differentiable with respect to ``verts`` (inside
    each face; there are no silhouette gradients). ``face_id`` is not.
"""
from __future__ import annotations

import torch
from torch import Tensor

# (face, pixel) candidate pairs processed at once by the torch twin; bounds peak memory
# to roughly 100 bytes per pair.
CHUNK_PAIRS = 1 << 20


def _corners(verts: Tensor, faces: Tensor) -> Tensor:
    """(F, 3, 3) corner positions of ``faces`` (index_select: fast, differentiable)."""
    return verts.index_select(0, faces.reshape(-1)).view(-1, 3, verts.shape[1])


def _edge_setup(tri: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per-face edge data. tri: (F, 3, 2) screen xy.

    For the edge opposite vertex k (from vertex k+1 to k+2) returns its canonical start
    point ``a`` (F, 3, 2), direction ``d = b - a`` (F, 3, 2) and sign ``s`` (F, 3) such that
    ``e_k(p) = s * (d.x * (p.y - a.y) - d.y * (p.x - a.x))``.
    """
    p = torch.roll(tri, -1, 1)  # edge k starts at vertex k+1 ...
    q = torch.roll(tri, -2, 1)  # ... and ends at vertex k+2
    # canonical order: the lexicographically smaller endpoint first
    swap = (p[..., 0] > q[..., 0]) | ((p[..., 0] == q[..., 0]) & (p[..., 1] > q[..., 1]))
    a = torch.where(swap[..., None], q, p)
    b = torch.where(swap[..., None], p, q)
    s = 1.0 - 2.0 * swap.to(tri.dtype)
    return a, b - a, s


def _edge_functions(a: Tensor, d: Tensor, s: Tensor, px: Tensor, py: Tensor) -> Tensor:
    """Edge functions (…, 3) at points px, py (…,) for per-point edge data a, d (…, 3, 2), s (…, 3)."""
    return s * (d[..., 0] * (py[..., None] - a[..., 1]) - d[..., 1] * (px[..., None] - a[..., 0]))


def _interpolate(e: Tensor, inv_z: Tensor) -> tuple[Tensor, Tensor]:
    """Perspective-correct barycentrics and depth from edge functions e (…, 3) and 1/z (…, 3)."""
    w = e * inv_z  # screen barycentrics (unnormalised) divided by z
    wsum = w.sum(-1, keepdim=True)
    return w / wsum, e.sum(-1) / wsum[..., 0]


def rasterize_torch(verts: Tensor, faces: Tensor, height: int, width: int) -> tuple[Tensor, Tensor, Tensor]:
    """Pure-PyTorch rasterizer (see the module docstring for the contract).

    Each face's bounding box of pixel centres gives (face, pixel) candidate pairs,
    processed in chunks of about ``CHUNK_PAIRS``; covered pairs are depth-tested with
    one ``scatter_reduce(amin)`` of a packed int64 key ``(float32 depth bits << 32) | face``
    (positive float32 bit patterns order like the floats, so the minimum key is the
    nearest face, ties to the lower index). The winners' barycentrics are then
    recomputed per pixel with the same formula, which keeps them differentiable.
    """
    if verts.ndim != 2 or verts.shape[1] != 3:
        raise ValueError(f"verts must be (V, 3), got {tuple(verts.shape)}")
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"faces must be (F, 3), got {tuple(faces.shape)}")
    device, dtype = verts.device, verts.dtype
    H, W = int(height), int(width)
    faces = faces.long()
    face_id = torch.full((H * W,), -1, dtype=torch.long, device=device)
    bary = verts.new_zeros(H * W, 3)
    depth = verts.new_zeros(H * W)

    with torch.no_grad():
        tri = _corners(verts.detach(), faces)
        xy, z = tri[..., :2], tri[..., 2]
        a, d, s = _edge_setup(xy)
        area = _edge_functions(a[:, :1], d[:, :1], s[:, :1], xy[:, 0, 0], xy[:, 0, 1])[:, 0]
        # bounding box of covered pixel centres: j + 0.5 in [xmin, xmax]
        lo = torch.ceil(xy.amin(1) - 0.5).clamp(min=0)
        hi = torch.floor(xy.amax(1) - 0.5)
        hi = torch.minimum(hi, torch.tensor([W - 1, H - 1], dtype=dtype, device=device))
        n = (hi - lo + 1).clamp(min=0)
        valid = (area != 0) & (z > 0).all(1) & (n > 0).all(1) & torch.isfinite(tri).all(2).all(1)
        fids = torch.nonzero(valid)[:, 0]
        key_buf = torch.full((H * W,), torch.iinfo(torch.long).max, dtype=torch.long, device=device)
        if fids.numel():
            # per-face tables, gathered per candidate pair with index_select (one row copy each):
            # floats a.x a.y (3 edges), d.x d.y (3 edges), s * sign(area) (3), 1/z (3)
            s_in = s * torch.sign(area)[:, None]  # inside <=> all e >= 0; ratios are unchanged
            ftab = torch.cat([a[..., 0], a[..., 1], d[..., 0], d[..., 1], s_in, 1.0 / z], 1)[fids]
            ints = torch.stack([n[fids, 0], lo[fids, 0], lo[fids, 1]], 1).long()  # box width, x0, y0
            count = ints[:, 0] * n[fids, 1].long()
            # split the faces into chunks of about CHUNK_PAIRS candidate pixels
            csum = torch.cumsum(count, 0)
            marks = torch.arange(CHUNK_PAIRS, max(int(csum[-1]), CHUNK_PAIRS), CHUNK_PAIRS, device=device)
            bounds = torch.searchsorted(csum, marks, right=True).tolist()
            for c0, c1 in zip([0] + bounds, bounds + [fids.numel()]):
                if c1 <= c0:
                    continue
                cnt = count[c0:c1]
                total = int(cnt.sum())
                g = torch.repeat_interleave(torch.arange(c0, c1, device=device), cnt, output_size=total)
                k = torch.arange(total, device=device) - (torch.cumsum(cnt, 0) - cnt).index_select(0, g - c0)
                box = ints.index_select(0, g)
                col = box[:, 1] + k % box[:, 0]
                row = box[:, 2] + torch.div(k, box[:, 0], rounding_mode="floor")
                t = ftab.index_select(0, g)
                px, py = col.to(dtype) + 0.5, row.to(dtype) + 0.5
                # same expression as _edge_functions, on the packed columns
                e = t[:, 12:15] * (t[:, 6:9] * (py[:, None] - t[:, 3:6]) - t[:, 9:12] * (px[:, None] - t[:, 0:3]))
                idx = torch.nonzero((e >= 0).all(1))[:, 0]
                e = e.index_select(0, idx)
                g = g.index_select(0, idx)
                _, zpix = _interpolate(e, ftab[:, 15:18].index_select(0, g))
                keep = torch.nonzero(zpix > 0)[:, 0]  # guards against rounding at degenerate slivers
                zbits = zpix.index_select(0, keep).float().view(torch.int32).long()
                key = (zbits << 32) | fids.index_select(0, g.index_select(0, keep))
                pix = (row * W + col).index_select(0, idx).index_select(0, keep)
                key_buf.scatter_reduce_(0, pix, key, reduce="amin", include_self=True)

        hit = torch.nonzero(key_buf != torch.iinfo(torch.long).max)[:, 0]
        f_hit = key_buf[hit] & 0xFFFFFFFF

    if hit.numel():
        # recompute the winners' values with autograd, by the same formula as above
        tri_g = _corners(verts, faces.index_select(0, f_hit))
        a_g, d_g, s_g = _edge_setup(tri_g[..., :2])
        px = (hit % W).to(dtype) + 0.5
        py = torch.div(hit, W, rounding_mode="floor").to(dtype) + 0.5
        e = _edge_functions(a_g, d_g, s_g, px, py)
        b, zz = _interpolate(e, 1.0 / tri_g[..., 2])
        face_id[hit] = f_hit
        bary = bary.index_put((hit,), b)
        depth = depth.index_put((hit,), zz)
    return face_id.view(H, W), bary.view(H, W, 3), depth.view(H, W)


def rasterize(verts: Tensor, faces: Tensor, height: int, width: int) -> tuple[Tensor, Tensor, Tensor]:
    """Rasterize one view with the active backend (see the module docstring for the contract).

    verts: (V, 3) screen-space ``(u, v, z)``; faces: (F, 3) int64.
    Returns face_id (H, W) int64 (-1 background), bary (H, W, 3), depth (H, W).
    """
    from .backend import get_kernel

    kernel = get_kernel("rasterize", verts.device)
    if kernel is None:
        return rasterize_torch(verts, faces, height, width)
    return kernel(verts, faces, height, width)
