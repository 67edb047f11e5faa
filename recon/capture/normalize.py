"""Scene normalisation: a similarity that puts the subject inside the unit sphere.

Three estimates of the subject's bounding sphere, best first:

``visual_hull``  (masks) carve a voxel grid around the point the cameras look
                 at: a voxel survives if it projects inside the mask in (almost)
                 every view that sees it. Two passes of 64^3 (a coarse box from
                 the camera distances, then the coarse hull's bounding box), then
                 the smallest enclosing sphere of the hull, times a 1.1 margin.
``sfm_points``   (no masks, sparse points) points between the cameras, trimmed
                 by percentiles, around where the camera axes converge.
``cameras``      (neither) the look-at convergence point, and the radius the
                 cameras' field of view can hold at their distance.

The result is ``cap.normalized(T)`` with ``T`` a uniform scale + translation
(rotation is left alone so "up" stays up), and ``meta["normalization_method"]``.
Held-out (test) views are never used.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..core.log import get_logger
from ..core.types import Cameras, Capture

log = get_logger(__name__)

MARGIN = 1.1  # bounding sphere radius multiplier: the subject fills ~90% of the unit sphere
HULL_RES = 64  # voxels per side, per carving pass
HULL_MAX_VIEWS = 64  # views used to carve (evenly picked); fewer only loosens the hull
HULL_MIN_VISIBLE = 0.25  # a voxel must be seen by this fraction of views (at least 3) to count
HULL_TOLERANCE = 0.05  # fraction of seeing views allowed to disagree (imperfect masks)


def normalize_capture(cap: Capture, margin: float = MARGIN) -> Capture:
    """Return ``cap`` moved and scaled so its subject lies in the unit sphere.

    Only the training views' cameras and masks are used (all views when none is marked train),
    so held-out views cannot influence the transform.
    """
    if cap.cameras is None:
        raise ValueError("normalize_capture needs cameras (run structure-from-motion first)")
    train = cap.split_indices("train")
    views = cap.subset(train) if len(train) else cap
    sphere, method = None, None
    if views.masks is not None:
        sphere = visual_hull_sphere(views.cameras, views.masks)
        method = "visual_hull"
        if sphere is None:
            log.warning("the masks' visual hull is empty or unbounded; normalising without masks")
    if sphere is None and cap.points is not None and len(cap.points) >= 10:
        sphere, method = points_sphere(views.cameras, cap.points), "sfm_points"
    if sphere is None:
        sphere, method = cameras_sphere(views.cameras), "cameras"
        margin = 1.0  # the field-of-view radius is already generous
    center, radius = sphere
    radius *= margin
    T = similarity(center, radius)
    log.debug(f"normalisation ({method}): centre {np.round(center, 4).tolist()}, radius {radius:.4g}")
    out = cap.normalized(T)
    return replace(out, meta={**cap.meta, "normalized": True, "normalization_method": method})


def similarity(center: np.ndarray, radius: float) -> np.ndarray:
    """4x4 mapping the sphere (center, radius) onto the unit sphere."""
    s = 1.0 / float(radius)
    T = np.eye(4)
    T[:3, :3] *= s
    T[:3, 3] = -s * np.asarray(center, dtype=np.float64)
    return T


def _axes(cams: Cameras) -> tuple[np.ndarray, np.ndarray]:
    """Camera centres (N, 3) and unit viewing directions (N, 3) (OpenCV +z)."""
    d = cams.c2w[:, :3, 2]
    return cams.centers, d / np.linalg.norm(d, axis=1, keepdims=True)


def look_at_point(cams: Cameras) -> np.ndarray | None:
    """Least-squares point nearest every camera's optical axis, or None when ill-posed.

    Ill-posed: (nearly) parallel axes, or a point behind most cameras.
    """
    o, d = _axes(cams)
    if len(o) < 2:
        return None
    P = np.eye(3)[None] - d[:, :, None] * d[:, None, :]  # projectors orthogonal to each axis
    A, b = P.sum(0), np.einsum("nij,nj->i", P, o)
    w = np.linalg.eigvalsh(A)
    if w[0] < 1e-3 * len(o):  # axes nearly parallel: the point slides along them
        return None
    p = np.linalg.solve(A, b)
    if np.mean(np.einsum("ni,ni->n", p[None] - o, d) > 0) < 0.5:
        return None
    return p


def _center_guess(cams: Cameras, points: np.ndarray | None = None) -> np.ndarray:
    p = look_at_point(cams)
    if p is not None:
        return p
    if points is not None and len(points):
        return np.median(points, axis=0)
    # Parallel axes (forward-facing): a point ahead of the cameras at their spread's distance.
    o, d = _axes(cams)
    spread = float(np.linalg.norm(o - o.mean(0), axis=1).max())
    return o.mean(0) + d.mean(0) / max(np.linalg.norm(d.mean(0)), 1e-9) * max(spread, 1.0)


def cameras_sphere(cams: Cameras) -> tuple[np.ndarray, float]:
    """Sphere the cameras frame: centre where they look, radius their view holds there."""
    c = _center_guess(cams)
    dist = float(np.median(np.linalg.norm(cams.centers - c, axis=1)))
    half_fov = np.minimum(np.arctan2(cams.width / 2.0, cams.fx), np.arctan2(cams.height / 2.0, cams.fy))
    r = dist * float(np.sin(np.median(half_fov)))
    return c, max(r, 1e-6)


def points_sphere(cams: Cameras, points: np.ndarray) -> tuple[np.ndarray, float]:
    """Sphere holding the robust core of the sparse points that lie between the cameras."""
    pts = np.asarray(points, dtype=np.float64)
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    c0 = _center_guess(cams, pts)
    cam_dist = float(np.median(np.linalg.norm(cams.centers - c0, axis=1)))
    inner = pts[np.linalg.norm(pts - c0, axis=1) < cam_dist]
    if len(inner) >= 10:
        pts = inner
    lo, hi = np.percentile(pts, [2.0, 98.0], axis=0)
    core = pts[np.all((pts >= lo) & (pts <= hi), axis=1)]
    if len(core) < 4:
        core = pts
    # Centre: where the cameras look when that lies inside the points' core box, else the box centre.
    c = c0 if np.all((c0 >= lo) & (c0 <= hi)) else 0.5 * (core.min(0) + core.max(0))
    r = float(np.percentile(np.linalg.norm(core - c, axis=1), 99.0))
    r = min(r, cam_dist / MARGIN) if cam_dist > 0 else r
    return c, max(r, 1e-6)


def _subsample_views(n: int, k: int) -> np.ndarray:
    return np.arange(n) if n <= k else np.unique(np.linspace(0, n - 1, k).round().astype(np.int64))


def carve(cams: Cameras, dists: list[np.ndarray], lo: np.ndarray, hi: np.ndarray,
          res: int, tolerance: float = HULL_TOLERANCE) -> tuple[np.ndarray, np.ndarray, float]:
    """Carve the box [lo, hi] (cubic) at ``res``^3; returns occupancy (res^3 bool), voxel centres, voxel size.

    ``tolerance``: the fraction of the views seeing a voxel that may disagree (imperfect masks).
    ``dists[i]`` is view i's distance (pixels) from each pixel to the nearest mask
    pixel; a voxel is inside view i's mask when its projected centre is within
    the projected voxel radius of the mask, so thin parts are never carved away.
    """
    size = float((hi - lo).max()) / res
    axis = [lo[k] + (np.arange(res) + 0.5) * size for k in range(3)]
    grid = np.stack(np.meshgrid(*axis, indexing="ij"), axis=-1).reshape(-1, 3)
    n_views = len(cams)
    seen = np.zeros(len(grid), np.int32)
    inside = np.zeros(len(grid), np.int32)
    w2c = np.linalg.inv(cams.c2w)
    vox_r = 0.5 * np.sqrt(3.0) * size
    grid32 = grid.astype(np.float32)
    for i in range(n_views):
        pc = grid32 @ w2c[i, :3, :3].T.astype(np.float32) + w2c[i, :3, 3].astype(np.float32)
        z = pc[:, 2]
        front = z > 1e-9
        zs = np.where(front, z, 1.0)
        u = cams.fx[i] * pc[:, 0] / zs + cams.cx[i]
        v = cams.fy[i] * pc[:, 1] / zs + cams.cy[i]
        W, H = int(cams.width[i]), int(cams.height[i])
        vis = front & (u >= 0) & (u < W) & (v >= 0) & (v < H)
        ui = np.clip(u.astype(np.int64), 0, W - 1)
        vi = np.clip(v.astype(np.int64), 0, H - 1)
        r_pix = np.maximum(cams.fx[i], cams.fy[i]) * vox_r / zs
        hit = dists[i][vi, ui] <= r_pix + 0.5
        seen += vis
        inside += vis & hit
    min_seen = max(min(3, n_views), int(np.ceil(HULL_MIN_VISIBLE * n_views)))
    allowed = np.floor(tolerance * seen).astype(np.int32)
    occ = (seen >= min_seen) & (inside >= seen - allowed)
    return occ.reshape(res, res, res), grid.reshape(res, res, res, 3), size


def main_components(occ: np.ndarray, keep_fraction: float = 0.05) -> np.ndarray:
    """Drop specks: keep connected components at least ``keep_fraction`` of the largest."""
    from scipy import ndimage

    labels, n = ndimage.label(occ)
    if n <= 1:
        return occ
    sizes = np.bincount(labels.ravel())[1:]
    keep = np.flatnonzero(sizes >= keep_fraction * sizes.max()) + 1
    return np.isin(labels, keep)


def enclosing_sphere(points: np.ndarray, iters: int = 300) -> tuple[np.ndarray, float]:
    """Near-minimal enclosing sphere (Badoiu-Clarkson iterations, within ~1/sqrt(iters))."""
    c = 0.5 * (points.min(0) + points.max(0))
    for k in range(1, iters + 1):
        far = points[np.argmax(np.einsum("ni,ni->n", points - c, points - c))]
        c = c + (far - c) / (k + 1)
    # The iteration's centre is good; its radius is exact for that centre.
    return c, float(np.sqrt(np.einsum("ni,ni->n", points - c, points - c).max()))


def visual_hull_sphere(cams: Cameras, masks: list[np.ndarray]) -> tuple[np.ndarray, float] | None:
    """Bounding sphere (centre, radius) of the masks' visual hull, or None if it is empty/unbounded."""
    import cv2

    views = _subsample_views(len(cams), HULL_MAX_VIEWS)
    cams = cams[views]
    dists = []
    for i in views:
        m = masks[i]
        if not (m > 127).any():
            dists.append(np.full(m.shape, np.inf, np.float32))
            continue
        # Distance from every pixel to the nearest subject pixel (0 inside the mask).
        dists.append(cv2.distanceTransform(np.where(m > 127, 0, 255).astype(np.uint8), cv2.DIST_L2, 3))
    center = _center_guess(cams)
    half = float(np.median(np.linalg.norm(cams.centers - center, axis=1)))
    lo, hi = center - half, center + half
    occ, grid, size = carve(cams, dists, lo, hi, HULL_RES)
    occ = main_components(occ)
    if not occ.any():
        return None
    idx = np.argwhere(occ)
    if (idx.min(0) == 0).any() or (idx.max(0) == HULL_RES - 1).any():
        return None  # the hull runs into the box: the masks do not bound the subject
    # Second pass: the coarse hull's box, padded by a coarse voxel, as a cube.
    pts = grid[occ]
    lo2, hi2 = pts.min(0) - 1.5 * size, pts.max(0) + 1.5 * size
    mid, ext = 0.5 * (lo2 + hi2), float((hi2 - lo2).max())
    occ2, grid2, size2 = carve(cams, dists, mid - ext / 2, mid + ext / 2, HULL_RES)
    occ2 = main_components(occ2)
    if occ2.any():
        occ, grid, size = occ2, grid2, size2
    from scipy import ndimage

    surface = occ & ~ndimage.binary_erosion(occ)  # the sphere only depends on the outer voxels
    pts = grid[surface if surface.any() else occ]
    c, r = enclosing_sphere(pts)
    return c, r + 0.5 * np.sqrt(3.0) * size
