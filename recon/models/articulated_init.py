"""Starting points for the articulated model, from masks and cameras alone.

- ``instants_of``: which moment of the clip each frame shows (the source video frame index).
- ``root_translations``: where the subject is at each instant: the ray through each mask's
  centroid, every instant's point held close to its rays and to its neighbours' points (linear
  least squares), and the subject's radius from the masks' extent at that depth.
- ``ground_plane`` / ``contact_depths``: the floor among the scene's sparse points and, per frame,
  the depth where the subject's lowest pixels meet it (a single camera cannot triangulate a subject
  that moves; one that stands on a floor it sees can be placed on it).
- ``carve``: the canonical shape as a posed visual hull: a voxel of the canonical box is kept
  when, posed into each training frame by the current model, it falls inside the (dilated)
  mask in at least ``consensus`` of the frames; marching cubes and Taubin smoothing give a mesh.
- ``relative_motion``: the subject's rigid motion between two frames from its optical flow and the
  current surface (PnP), which the model chains into root rotations before any gradient step.
- ``init_bones``: bone centres and extents by k-means over the hull's interior voxels, and a
  skeleton tree (minimum spanning tree from the bone nearest the centroid).
- ``still_hull_iou``: whether the subject moves at all: a subject that holds still is explained by one
  visual hull carved with no motion; one that moves is not (its masks disagree, the hull erodes).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import Tensor

from ..core.types import Capture
from ..render.rays import CameraTensors


def instants_of(cap: Capture) -> np.ndarray:
    """(N,) int64 instant of each frame: ``FrameInfo.index`` when every frame has one, else its position."""
    idx = [f.index for f in cap.frames]
    if all(i is not None for i in idx):
        return np.asarray(idx, np.int64)
    return np.arange(len(cap), dtype=np.int64)


def world_up(cap: Capture) -> np.ndarray:
    """(3,) unit up direction in the capture's normalised world (``recon.capture.upright``)."""
    from ..capture.upright import with_up

    meta = with_up(cap.meta, cap.cameras, normalization=cap.normalization)
    up = np.asarray(meta.get("up", [0.0, 1.0, 0.0]), np.float64)
    up = np.asarray(cap.normalization, np.float64)[:3, :3] @ up
    return up / np.linalg.norm(up)


def mask_stats(mask: np.ndarray) -> tuple[np.ndarray, float] | None:
    """Centroid (u, v) in pixels (centres at +0.5) and half the larger side of the mask's box; None if empty."""
    ys, xs = np.nonzero(mask > 127)
    if len(xs) == 0:
        return None
    half = 0.5 * max(xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
    return np.array([xs.mean() + 0.5, ys.mean() + 0.5]), float(half)


def scene_depths(cams, masks: list[np.ndarray], points: np.ndarray | None, grow: float = 0.25) -> np.ndarray:
    """(N,) the subject's likely depth in each frame from the scene's sparse points: the median camera
    depth of the points that project into the mask's box (grown by ``grow`` of its size), where the
    subject stands among them; NaN without points there."""
    out = np.full(len(masks), np.nan)
    if points is None or len(points) == 0:
        return out
    uv, z = cams.project(np.asarray(points, np.float64))  # (N, P, 2), (N, P)
    for n, m in enumerate(masks):
        ys, xs = np.nonzero(m > 127)
        if len(xs) == 0:
            continue
        w, h = xs.max() - xs.min() + 1, ys.max() - ys.min() + 1
        x0, x1 = xs.min() - grow * w, xs.max() + 1 + grow * w
        y0, y1 = ys.min() - grow * h, ys.max() + 1 + grow * h
        inside = (z[n] > 0) & (uv[n, :, 0] >= x0) & (uv[n, :, 0] <= x1) & (uv[n, :, 1] >= y0) & (uv[n, :, 1] <= y1)
        if inside.sum() >= 5:
            out[n] = float(np.median(z[n][inside]))
    return out


def ground_plane(points: np.ndarray | None, up: np.ndarray, seed: int = 0, iterations: int = 1000,
                 min_share: float = 0.25, max_tilt_deg: float = 30.0) -> np.ndarray | None:
    """The floor among the scene's sparse points (P, 3): the plane within ``max_tilt_deg`` of ``up`` that
    holds the most points (RANSAC; inliers within 1.5% of the points' 5-95% spread), refitted to its
    inliers by least squares. Returns (4,) [n, d] with n the unit normal on ``up``'s side, so that
    ``x @ n + d`` is a point's height above the floor; None when no such plane holds ``min_share`` of
    the points (and at least 30)."""
    if points is None or len(points) < 30:
        return None
    P = np.asarray(points, np.float64)
    up = np.asarray(up, np.float64) / np.linalg.norm(up)
    spread = np.linalg.norm(np.percentile(P, 95, axis=0) - np.percentile(P, 5, axis=0))
    tol, cos_tilt = 0.015 * spread, np.cos(np.radians(max_tilt_deg))
    rng = np.random.default_rng(seed)
    best, best_inl = 0, None
    for _ in range(iterations):
        a, b, c = P[rng.choice(len(P), 3, replace=False)]
        n = np.cross(b - a, c - a)
        norm = np.linalg.norm(n)
        if norm < 1e-12 or abs(n @ up) / norm < cos_tilt:
            continue
        n /= norm
        inl = np.abs((P - a) @ n) < tol
        if inl.sum() > best:
            best, best_inl = int(inl.sum()), inl
    if best_inl is None or best < max(30, min_share * len(P)):
        return None
    Q = P[best_inl]
    centre = Q.mean(0)
    n = np.linalg.svd(Q - centre, full_matrices=False)[2][-1]  # least-squares normal
    n = n if n @ up >= 0 else -n
    return np.concatenate([n, [-n @ centre]])


def contact_depths(cams, masks: list[np.ndarray], plane: np.ndarray, share: float = 0.05) -> np.ndarray:
    """(N,) depth along each camera's view axis where the subject meets the floor ``plane`` ([n, d],
    ``ground_plane``): every mask pixel's ray is cut with the plane, and the nearest cuts (``share`` of
    them) are where the lowest pixels, the feet, stand; NaN for a camera under the floor or an empty mask."""
    n, d = np.asarray(plane[:3], np.float64), float(plane[3])
    out = np.full(len(masks), np.nan)
    for i, m in enumerate(masks):
        c2w = cams.c2w[i]
        o = c2w[:3, 3]
        if o @ n + d <= 0:
            continue
        ys, xs = np.nonzero(m > 127)
        if len(xs) == 0:
            continue
        dirs = np.stack([(xs + 0.5 - cams.cx[i]) / cams.fx[i], (ys + 0.5 - cams.cy[i]) / cams.fy[i],
                         np.ones(len(xs))], 1)  # camera frame, z = 1: t is the depth itself
        down = dirs @ (c2w[:3, :3].T @ n)  # n . (R dir) per pixel
        ok = down < -1e-9
        if ok.sum() < 3:
            continue
        t = -(o @ n + d) / down[ok]
        out[i] = float(np.median(np.sort(t)[:max(3, int(share * len(t)))]))
    return out


def root_translations(cams, masks: list[np.ndarray], frame_instant: np.ndarray, n_instants: int,
                      smooth: float = 1.0, motions: dict | None = None, ray_weight: float = 1.0,
                      depths: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """(K, 3) subject centre per instant and the subject's radius, from mask centroids (world units).

    cams: Cameras of the frames; frame_instant: (N,) instant slot 0..K-1 of each frame.
    Minimises ray_weight * sum |(I - d d^T)(T_k - o)|^2 over frames (the centre on the ray through
    the mask's centroid) + smooth * sum |T_{k+1} - 2 T_k + T_{k-1}|^2 (acceleration: a steady walk
    costs nothing), + a little of the same on velocity and a tiny pull towards the origin so a clip
    filmed from one point stays determined. ``depths`` (N,): where a frame has one (not NaN), the centre's
    depth along the camera's view axis is held near it (``scene_depths``: a camera that hardly moves
    cannot triangulate a subject that does). ``motions`` {k: (R, t)}: the subject's rigid motion from
    instant k to k+1 (tracked), adding |T_{k+1} - (R T_k + t)|^2: the centre then moves as a point
    of the body does.
    """
    K = n_instants
    A = np.zeros((3 * K, 3 * K))
    b = np.zeros(3 * K)
    radii = []
    for n, m in enumerate(masks):
        st = mask_stats(m)
        if st is None:
            continue
        (u, v), half = st
        c2w = cams.c2w[n]
        d = c2w[:3, :3] @ np.array([(u - cams.cx[n]) / cams.fx[n], (v - cams.cy[n]) / cams.fy[n], 1.0])
        d /= np.linalg.norm(d)
        P = ray_weight * (np.eye(3) - np.outer(d, d))
        k = frame_instant[n]
        A[3 * k:3 * k + 3, 3 * k:3 * k + 3] += P
        b[3 * k:3 * k + 3] += P @ c2w[:3, 3]
        if depths is not None and np.isfinite(depths[n]):  # (T_k - o) . axis = depth
            a = c2w[:3, 2]
            A[3 * k:3 * k + 3, 3 * k:3 * k + 3] += 0.1 * np.outer(a, a)
            b[3 * k:3 * k + 3] += 0.1 * a * (depths[n] + a @ c2w[:3, 3])
        radii.append((n, half))
    D1 = np.diff(np.eye(K), axis=0)
    D2 = np.diff(np.eye(K), 2, axis=0)
    A += np.kron(smooth * D2.T @ D2 + 1e-4 * smooth * D1.T @ D1, np.eye(3))
    for k, (R, t) in (motions or {}).items():  # rows [-R, I] on (T_k, T_k+1) with right side t
        row = np.zeros((3, 3 * K))
        row[:, 3 * k:3 * k + 3] = -R
        row[:, 3 * k + 3:3 * k + 6] = np.eye(3)
        A += row.T @ row
        b += row.T @ t
    A += 1e-6 * np.eye(3 * K)
    T = np.linalg.solve(A, b).reshape(K, 3)
    # radius: the mask's half extent at the centre's depth
    r = []
    for n, half in radii:
        depth = (T[frame_instant[n]] - cams.c2w[n, :3, 3]) @ cams.c2w[n, :3, 2]
        if depth > 0:
            r.append(half / float(cams.fx[n]) * depth)
    return T, float(np.median(r)) if r else 0.5


def _dilate(mask: np.ndarray, px: int) -> np.ndarray:
    import cv2

    if px <= 0:
        return mask
    return cv2.dilate(mask, np.ones((2 * px + 1, 2 * px + 1), np.uint8))


@torch.no_grad()
def carve(pose_fn: Callable[[Tensor, int], Tensor], cams: CameraTensors, masks: list[np.ndarray],
          bound: float, resolution: int, consensus: float, dilate_px: int = 2):
    """The posed visual hull in canonical space: (mesh as a trimesh, interior voxel centres (M, 3)).

    pose_fn(x (M, 3) canonical, frame n) -> (M, 3) world points of frame n; cams: the frames'
    cameras; masks: their (H, W) uint8 masks; the canonical box is [-bound, bound]^3.
    """
    import trimesh
    from scipy import ndimage
    from skimage.measure import marching_cubes

    G = resolution
    lin = torch.linspace(-bound, bound, G)
    grid = torch.stack(torch.meshgrid(lin, lin, lin, indexing="ij"), -1).reshape(-1, 3)
    votes = torch.zeros(len(grid))
    for n, m in enumerate(masks):
        inside = torch.from_numpy(_dilate(m, dilate_px) > 127)
        X = pose_fn(grid, n)
        c2w = cams.c2w[n].to(X.dtype)
        pc = (X - c2w[:3, 3]) @ c2w[:3, :3]
        z = pc[:, 2].clamp_min(1e-6)
        u = (cams.fx[n] * pc[:, 0] / z + cams.cx[n]).floor().long()
        v = (cams.fy[n] * pc[:, 1] / z + cams.cy[n]).floor().long()
        H, W = inside.shape
        ok = (pc[:, 2] > 1e-6) & (u >= 0) & (u < W) & (v >= 0) & (v < H)
        hit = torch.zeros(len(grid), dtype=torch.bool)
        hit[ok] = inside[v[ok], u[ok]]
        votes += hit.float()
    occ = (votes / max(len(masks), 1) >= consensus).reshape(G, G, G).numpy()
    labels, n_lab = ndimage.label(occ)
    if n_lab == 0:
        raise ValueError("the masks agree on no part of the canonical box: the subject cannot be carved")
    sizes = ndimage.sum(occ, labels, range(1, n_lab + 1))
    occ = labels == (1 + int(np.argmax(sizes)))
    occ = ndimage.binary_fill_holes(occ)
    field = ndimage.gaussian_filter(np.pad(occ.astype(np.float32), 2), 0.8)
    verts, faces, _, _ = marching_cubes(field, 0.5)
    step = 2 * bound / (G - 1)
    verts = (verts - 2) * step - bound
    mesh = trimesh.Trimesh(verts, faces[:, ::-1], process=True)  # outward winding
    if mesh.volume < 0:
        mesh.invert()
    trimesh.smoothing.filter_taubin(mesh, iterations=10)
    interior = grid.reshape(G, G, G, 3)[torch.from_numpy(occ)]
    return mesh, interior


@torch.no_grad()
def capture_hull_iou(cap: Capture, frames: np.ndarray | None = None, size: int = 160) -> float:
    """``still_hull_iou`` of ``cap``'s ``frames`` (default all) with cameras and masks brought to ``size``
    pixels on the longer side: how well one visual hull explains the masks in these cameras."""
    from ..capture.frame_files import resize_image

    frames = np.arange(len(cap)) if frames is None else np.asarray(frames)
    h, w = cap.images[frames[0]].shape[:2]
    cams = cap.cameras[frames].scaled(min(1.0, size / max(h, w)))
    shape = (int(cams.width[0]), int(cams.height[0]))
    return still_hull_iou(cams, [resize_image(cap.masks[i], shape) for i in frames])


@torch.no_grad()
def still_hull_iou(cams, masks: list[np.ndarray], resolution: int = 64, consensus: float = 0.9,
                   margin: float = 1.6, dilate_px: int = 0) -> float:
    """Mean silhouette IoU, over the frames, of the visual hull carved as if the subject never moved.

    cams: the frames' Cameras (numpy); masks: their (H, W) uint8 masks. The hull is carved in a box of
    ``margin`` subject radii around the point where the rays through the masks' centroids meet
    (``root_translations`` with a single instant), then rasterized back into every frame. A subject
    that holds still while the camera moves scores near its masks' own consistency (0.8-0.95); one that
    walks or turns leaves a hull that fits no frame well. 0 when the masks agree on nothing.
    """
    from ..ops.rasterize import rasterize
    from ..render.mesh_raster import screen_vertices

    N = len(masks)
    T, radius = root_translations(cams, masks, np.zeros(N, np.int64), 1)
    centre = torch.as_tensor(T[0], dtype=torch.float32)
    try:
        mesh, _ = carve(lambda x, n: x + centre, CameraTensors.from_cameras(cams, "cpu"), masks,
                        margin * radius, resolution, consensus, dilate_px)
    except ValueError:
        return 0.0
    verts = torch.as_tensor(np.asarray(mesh.vertices), dtype=torch.float32) + centre
    faces = torch.as_tensor(np.asarray(mesh.faces), dtype=torch.int64)
    ious = []
    for n, m in enumerate(masks):
        H, W = m.shape
        fid, _, _ = rasterize(screen_vertices(verts, cams, n), faces, H, W)
        a, b = fid.numpy() >= 0, m > 127
        ious.append((a & b).sum() / max((a | b).sum(), 1))
    return float(np.mean(ious))


def init_bones(points: np.ndarray, n_bones: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Bone centres (B, 3) by k-means over ``points`` (M, 3) and per-axis extents (B, 3) from each cluster."""
    from scipy.cluster.vq import kmeans2

    pts = np.asarray(points, np.float64)
    B = min(n_bones, len(pts))
    centers, label = kmeans2(pts, B, minit="++", seed=seed)
    extents = np.zeros((B, 3))
    for b in range(B):
        own = pts[label == b]
        extents[b] = own.std(0) if len(own) > 1 else 0.05
    spacing = np.median(np.linalg.norm(centers[:, None] - centers[None], axis=-1) + 1e9 * np.eye(B), axis=1)
    extents = np.maximum(extents, 0.25 * spacing[:, None])
    return centers, extents


def skeleton_parents(centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A tree over bone centres (B, 3): order (B,) with the root first (the bone nearest the centroid)
    and parents (B,) indexing into ``order`` (-1 for the root; each parent precedes its children).
    Edges are the minimum spanning tree of the centres' distances."""
    from scipy.sparse.csgraph import breadth_first_order, minimum_spanning_tree

    c = np.asarray(centers, np.float64)
    D = np.linalg.norm(c[:, None] - c[None], axis=-1)
    mst = minimum_spanning_tree(D + 1e-9 * (1 - np.eye(len(c))))
    sym = mst + mst.T
    root = int(np.argmin(np.linalg.norm(c - c.mean(0), axis=1)))
    order, pred = breadth_first_order(sym, root, directed=False, return_predecessors=True)
    pos = {int(b): i for i, b in enumerate(order)}
    parents = np.array([-1 if pred[b] < 0 else pos[int(pred[b])] for b in order], np.int64)
    return order.astype(np.int64), parents


def relative_motion(points: np.ndarray, pixels: np.ndarray, cams, j: int, min_inliers: int = 20,
                    error_px: float = 2.0) -> np.ndarray | None:
    """The rigid motion M (4x4, world) that takes surface points (N, 3) seen in one frame to where frame j
    sees them at ``pixels`` (N, 2) (their optical flow; continuous pixel coordinates, as the cameras'
    cx, cy): PnP with RANSAC in camera j, then M = camera j's pose composed with it. None when too few
    points agree."""
    import cv2

    if len(points) < min_inliers:
        return None
    K = np.array([[cams.fx[j], 0, cams.cx[j]], [0, cams.fy[j], cams.cy[j]], [0, 0, 1]], np.float64)
    ok, rvec, tvec, inliers = cv2.solvePnPRansac(points.astype(np.float64), pixels.astype(np.float64), K, None,
                                                 reprojectionError=error_px, iterationsCount=200,
                                                 flags=cv2.SOLVEPNP_EPNP)
    if not ok or inliers is None or len(inliers) < min_inliers:
        return None
    idx = inliers[:, 0]
    ok, rvec, tvec = cv2.solvePnP(points[idx].astype(np.float64), pixels[idx].astype(np.float64), K, None,
                                  rvec, tvec, useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE)
    w2c = np.eye(4)
    w2c[:3, :3] = cv2.Rodrigues(rvec)[0]
    w2c[:3, 3] = tvec[:, 0]
    return cams.c2w[j] @ w2c  # world (frame i) -> camera j -> world (frame j)


def twist(R: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """The part of rotation R (3, 3) that turns about ``axis`` (swing-twist decomposition), as (3, 3)."""
    from scipy.spatial.transform import Rotation

    x, y, z, w = Rotation.from_matrix(R).as_quat()
    u = np.asarray(axis, np.float64) / np.linalg.norm(axis)
    p = float(np.dot([x, y, z], u))
    q = np.array([*(p * u), w])
    n = np.linalg.norm(q)
    return np.eye(3) if n < 1e-12 else Rotation.from_quat(q / n).as_matrix()
