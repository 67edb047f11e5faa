"""Automatic subject masks for a static subject filmed by cameras circling it.

No masks are given; the subject is "what the cameras look at":

1. Sparse 3D points: ``cap.points`` when the capture has them, else SIFT
   matches between neighbouring views triangulated with the known cameras
   (kept when they reproject within a pixel or two in both views, lie in
   front of both and are seen under a useful parallax angle).
2. Points near where the camera axes converge (``look_at_point``) are kept:
   within a radius from that point, inside the frame of at least a quarter of
   the views, and in a dense cluster (isolated points are mismatches or stray
   background; the density bar rises with the cloud's median density).
   Matching is epipolar-guided (the poses are known), so repetitive texture
   such as roof tiles still yields points.
3. Per frame, the kept points are splatted into the image and closed into a
   region; that gives GrabCut its initialisation (sure foreground: the region
   eroded; probable foreground: the region; sure background: outside the
   convex hull of all the points' projections, since the 3D convex hull of the
   points contains the subject; probable background: the rest), and GrabCut
   refines it on the colours.  The largest component is kept, holes filled.
4. Multi-view consistency: a visual hull is carved from the per-frame masks
   (a voxel survives when almost every view that sees it agrees) and
   re-projected; frames whose GrabCut mask disagrees with the hull's
   projection get the hull's projection as a new GrabCut initialisation.

``static_subject_masks`` raises ``InputError(None, "no subject found: ...")``
when the cameras do not converge (forward-facing, parallel axes) or no
consistent subject region emerges.
"""
from __future__ import annotations

import time

import numpy as np

from ..core.errors import InputError
from ..core.log import get_logger
from ..core.types import Cameras, Capture
from .mask_ops import fill_holes, grabcut, largest_parts
from .normalize import look_at_point

log = get_logger(__name__)


def _gray(img: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)


def _resize(img: np.ndarray, w: int, h: int, nearest: bool = False) -> np.ndarray:
    import cv2

    if img.shape[1] == w and img.shape[0] == h:
        return img
    interp = cv2.INTER_NEAREST if nearest else cv2.INTER_AREA
    return cv2.resize(img, (w, h), interpolation=interp)


def _projection(cams: Cameras, i: int) -> np.ndarray:
    """3x4 P = K [R|t] (pixel centres at +0.5 are handled by the caller: cx - 0.5)."""
    K = cams.K[i].copy()
    K[0, 2] -= 0.5  # OpenCV keypoints have pixel centres at integers
    K[1, 2] -= 0.5
    w2c = np.linalg.inv(cams.c2w[i])
    return K @ w2c[:3, :4]


def _fundamental(Pi: np.ndarray, Pj: np.ndarray, c2w_i: np.ndarray) -> np.ndarray:
    """F with x_j^T F x_i = 0, from the two projections (Hartley-Zisserman 9.2)."""
    C = np.append(c2w_i[:3, 3], 1.0)
    e = Pj @ C
    ex = np.array([[0, -e[2], e[1]], [e[2], 0, -e[0]], [-e[1], e[0], 0]])
    return ex @ Pj @ np.linalg.pinv(Pi)


def _neighbour_pairs(cams: Cameras, k: int, look: np.ndarray, min_angle: float,
                     max_angle: float) -> list[tuple[int, int]]:
    """Each view with its k nearest views (by centre) seeing the look-at point under a fair angle."""
    c = cams.centers
    d = c - look
    d = d / np.linalg.norm(d, axis=1, keepdims=True)
    ang = np.degrees(np.arccos(np.clip(d @ d.T, -1, 1)))
    dist = np.linalg.norm(c[:, None] - c[None], axis=-1)
    pairs = set()
    for i in range(len(c)):
        order = [j for j in np.argsort(dist[i]) if j != i and min_angle <= ang[i, j] <= max_angle]
        for j in order[:k]:
            pairs.add((min(i, j), max(i, j)))
    return sorted(pairs)


def triangulate_points(images: list[np.ndarray], cams: Cameras, look: np.ndarray, *,
                       neighbours: int = 4, max_reproj_px: float = 1.5,
                       min_parallax_deg: float = 2.0, max_features: int = 0,
                       contrast: float = 0.02, knn: int = 8, epipolar_px: float = 2.0,
                       ratio: float = 0.8, min_pair_deg: float = 2.0,
                       max_pair_deg: float = 45.0) -> tuple[np.ndarray, np.ndarray]:
    """SIFT matches between neighbouring views triangulated with the known cameras.

    Returns points (P, 3) and the pair of views each came from (P, 2).
    """
    import cv2

    sift = cv2.SIFT_create(nfeatures=max_features, contrastThreshold=contrast)
    feats = [sift.detectAndCompute(_gray(im), None) for im in images]
    matcher = cv2.BFMatcher(cv2.NORM_L2)
    pts_all, views_all = [], []
    for i, j in _neighbour_pairs(cams, neighbours, look, min_pair_deg, max_pair_deg):
        (ki, di), (kj, dj) = feats[i], feats[j]
        if di is None or dj is None or len(ki) < 8 or len(kj) < 8:
            continue
        xi_all = np.float64([k.pt for k in ki])
        xj_all = np.float64([k.pt for k in kj])
        F = _fundamental(_projection(cams, i), _projection(cams, j), cams.c2w[i])
        # Epipolar-guided matching: candidates far from the epipolar line are dropped before the
        # ratio test, so repetitive texture (tiles, windows) still matches.
        m = matcher.knnMatch(di, dj, k=min(knn, len(kj)))
        good = []
        for cand in m:
            if not cand:
                continue
            qi = cand[0].queryIdx
            tj = np.array([c.trainIdx for c in cand])
            line = F @ np.array([xi_all[qi, 0], xi_all[qi, 1], 1.0])
            dist = np.abs(xj_all[tj] @ line[:2] + line[2]) / (np.hypot(line[0], line[1]) + 1e-12)
            ok = [c for c, d in zip(cand, dist) if d < epipolar_px]
            if ok and (len(ok) == 1 or ok[0].distance < ratio * ok[1].distance):
                good.append(ok[0])
        if len(good) < 8:
            continue
        xi = xi_all[[g.queryIdx for g in good]]
        xj = xj_all[[g.trainIdx for g in good]]
        Pi, Pj = _projection(cams, i), _projection(cams, j)
        X = cv2.triangulatePoints(Pi, Pj, xi.T, xj.T)
        X = (X[:3] / np.where(np.abs(X[3]) < 1e-12, 1e-12, X[3])).T
        Xh = np.concatenate([X, np.ones((len(X), 1))], 1)
        ok = np.ones(len(X), bool)
        for P, x in ((Pi, xi), (Pj, xj)):
            p = Xh @ P.T
            ok &= p[:, 2] > 1e-9
            err = np.linalg.norm(p[:, :2] / np.where(p[:, 2:] > 1e-9, p[:, 2:], 1.0) - x, axis=1)
            ok &= err < max_reproj_px
        ci, cj = cams.centers[i], cams.centers[j]
        ri, rj = X - ci, X - cj
        cosang = np.einsum("pi,pi->p", ri, rj) / (np.linalg.norm(ri, axis=1) * np.linalg.norm(rj, axis=1) + 1e-12)
        ok &= cosang < np.cos(np.radians(min_parallax_deg))
        pts_all.append(X[ok])
        views_all.append(np.tile([i, j], (int(ok.sum()), 1)))
    if not pts_all:
        return np.zeros((0, 3)), np.zeros((0, 2), np.int64)
    return np.concatenate(pts_all), np.concatenate(views_all)


def _disk(r: int) -> np.ndarray:
    import cv2

    r = max(int(round(r)), 1)
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))


def _point_region(uv: np.ndarray, w: int, h: int, close_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Splat projected points, close gaps up to ``close_px``, fill holes.

    Returns (region bool, point density count image).
    """
    import cv2

    hits = np.zeros((h, w), np.uint8)
    ui = np.clip(uv[:, 0].astype(np.int64), 0, w - 1)
    vi = np.clip(uv[:, 1].astype(np.int64), 0, h - 1)
    hits[vi, ui] = 255
    # Closing with a border so that regions touching the frame stay closed against it.
    pad = int(close_px) + 2
    big = cv2.copyMakeBorder(hits, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    big = cv2.morphologyEx(big, cv2.MORPH_CLOSE, _disk(close_px))
    region = big[pad:-pad, pad:-pad] > 0
    region = fill_holes(region)
    return region, hits > 0


def _refine(img: np.ndarray, region: np.ndarray, core: np.ndarray, sure_bg: np.ndarray,
            iters: int) -> np.ndarray:
    """GrabCut: core sure fg, region probable fg, ``sure_bg`` sure bg, the rest probable bg; the main
    parts kept, holes filled (the initial region when GrabCut cannot run)."""
    import cv2

    gc = np.full(img.shape[:2], cv2.GC_PR_BGD, np.uint8)
    gc[region] = cv2.GC_PR_FGD
    gc[sure_bg] = cv2.GC_BGD
    gc[core & ~sure_bg] = cv2.GC_FGD
    out = grabcut(img, gc, iters)
    if out is None:
        out = (region | core) & ~sure_bg
    return fill_holes(largest_parts(out, keep=0.2))


def _hull_outside(uv: np.ndarray, w: int, h: int, margin: float) -> np.ndarray:
    """Pixels farther than ``margin`` from the convex hull of the projected points (sure background).

    The convex hull of the 3D points projects onto the convex hull of their projections, so
    when the points span the subject this is a superset of it; points outside the frame count.
    """
    import cv2

    if len(uv) < 3:
        return np.zeros((h, w), bool)
    lim = 4.0 * max(w, h)
    p = np.clip(uv, -lim, lim)
    hull = cv2.convexHull(np.round(p * 16).astype(np.int32))
    inside = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(inside, hull, 1, lineType=cv2.LINE_8, shift=4)
    if margin >= 1:
        pad = int(margin) + 2
        big = cv2.copyMakeBorder(inside, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        inside = cv2.dilate(big, _disk(margin))[pad:-pad, pad:-pad]
    return inside == 0


def _no_subject(why: str) -> InputError:
    return InputError(None, f"no subject found: {why}")


def _select_points(pts: np.ndarray, cams: Cameras, look: np.ndarray, max_radius_frac: float,
                   min_neighbours: int, neighbour_frac: float, min_views: int,
                   relative_density: float = 0.0) -> np.ndarray:
    """Points near the convergence region, in a dense cluster, in front of enough views."""
    from scipy.spatial import cKDTree

    pts = pts[np.all(np.isfinite(pts), axis=1)]
    cam_dist = float(np.median(np.linalg.norm(cams.centers - look, axis=1)))
    pts = pts[np.linalg.norm(pts - look, axis=1) < max_radius_frac * cam_dist]
    if len(pts) < 10:
        return pts
    # Visible (in front, inside the frame) in enough views: the cameras look at it.
    uv, z = cams.project(pts)
    inside = (z > 0) & (uv[..., 0] >= 0) & (uv[..., 1] >= 0) \
        & (uv[..., 0] < cams.width[:, None]) & (uv[..., 1] < cams.height[:, None])
    pts = pts[inside.sum(0) >= min(min_views, len(cams))]
    if len(pts) < 10:
        return pts
    # Dense cluster: isolated points (mismatches, far background) are dropped.
    tree = cKDTree(pts)
    counts = np.asarray(tree.query_ball_point(pts, neighbour_frac * cam_dist, return_length=True))
    # The bar rises with the density: denser clouds (more views) carry more stray points.
    bar = max(min_neighbours, relative_density * float(np.median(counts)))
    log.debug(f"auto masks: neighbour counts median {np.median(counts):.0f}, bar {bar:.1f}")
    return pts[counts > bar]


def _hull_masks(cams: Cameras, masks: list[np.ndarray], pts: np.ndarray, res: int,
                tolerance: float) -> list[np.ndarray] | None:
    """Carve the masks' visual hull in the points' box, and project it back into every view."""
    import cv2

    from . import normalize as nz

    lo, hi = np.percentile(pts, 0.5, axis=0), np.percentile(pts, 99.5, axis=0)
    pad = 0.15 * (hi - lo).max()
    lo, hi = lo - pad, hi + pad
    mid, ext = 0.5 * (lo + hi), float((hi - lo).max())
    dists = [cv2.distanceTransform(np.where(m, 0, 255).astype(np.uint8), cv2.DIST_L2, 3) for m in masks]
    occ, grid, size = nz.carve(cams, dists, mid - ext / 2, mid + ext / 2, res, tolerance)
    occ = nz.main_components(occ, 0.2)
    if not occ.any():
        return None
    centres = grid[occ]
    uv, z = cams.project(centres)
    out = []
    for i in range(len(cams)):
        W, H = int(cams.width[i]), int(cams.height[i])
        front = z[i] > 1e-9
        r_pix = float(np.median(max(cams.fx[i], cams.fy[i]) * 0.5 * np.sqrt(3) * size / z[i][front])) \
            if front.any() else 1.0
        region, _ = _point_region(uv[i][front & (uv[i][:, 0] > -W) & (uv[i][:, 0] < 2 * W)
                                        & (uv[i][:, 1] > -H) & (uv[i][:, 1] < 2 * H)
                                        & (uv[i][:, 0] >= 0) & (uv[i][:, 1] >= 0)
                                        & (uv[i][:, 0] < W) & (uv[i][:, 1] < H)],
                                  W, H, max(r_pix, 1.0))
        out.append(region)
    return out


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    u = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / u) if u else 1.0


def static_subject_masks(cap: Capture, *, work_size: int = 400, neighbours: int = 4,
                         max_reproj_px: float = 1.5, min_parallax_deg: float = 2.0,
                         max_radius_frac: float = 0.6, min_views_frac: float = 0.25,
                         neighbour_frac: float = 0.03, min_neighbours: int = 5,
                         relative_density: float = 0.05,
                         close_frac: float = 0.04, core_frac: float = 0.05, band_frac: float = 0.015,
                         grabcut_iters: int = 4, hull: bool = True, hull_res: int = 96,
                         hull_tolerance: float = 0.1, hull_agree: float = 0.9, min_points: int = 50
                         ) -> tuple[list[np.ndarray], dict]:
    """Masks (uint8 0/255, one per frame, at the frames' size) of the static subject the cameras circle.

    Options (fractions are of the working image's longest side unless noted):
      work_size: longest side the images are processed at (masks are resized back).
      neighbours, max_reproj_px, min_parallax_deg: triangulation of SIFT matches (when
        ``cap.points`` is None).
      max_radius_frac: points farther than this fraction of the camera distance from the
        look-at point are dropped.
      min_views_frac: a point must project inside at least this fraction of the views.
      neighbour_frac, min_neighbours, relative_density: density filter: a point needs more
        than max(min_neighbours, relative_density * median count) neighbours within
        neighbour_frac * camera distance.
      close_frac, core_frac, band_frac: closing radius of the splatted points, erosion
        giving GrabCut's sure foreground, margin around the points' projected convex hull
        beyond which pixels are sure background.
      hull, hull_res, hull_tolerance: multi-view consistency through a visual hull.

    Stats: method, n_points (triangulated or given), n_points_used, fg_fraction per frame,
    hull_agreement per frame (IoU of the GrabCut mask with the hull's projection), seconds.
    Raises InputError(None, "no subject found: ...") when the cameras do not converge or no
    consistent region is found.
    """
    t0 = time.perf_counter()
    if cap.cameras is None or len(cap.cameras) < 3:
        raise _no_subject("at least 3 posed views are needed")
    n = len(cap.images)
    look = look_at_point(cap.cameras)
    if look is None:
        raise _no_subject("the cameras' viewing axes do not converge (forward-facing or parallel "
                          "cameras); give masks instead")
    H0 = np.array([im.shape[0] for im in cap.images])
    W0 = np.array([im.shape[1] for im in cap.images])
    factor = min(1.0, work_size / float(max(W0.max(), H0.max())))
    cams = cap.cameras.scaled(factor) if factor < 1.0 else cap.cameras
    images = [_resize(im, int(cams.width[i]), int(cams.height[i])) for i, im in enumerate(cap.images)]

    method = "given_points"
    if cap.points is not None and len(cap.points) >= min_points:
        pts = np.asarray(cap.points, np.float64)
    else:
        method = "triangulated"
        pts, _ = triangulate_points(images, cams, look, neighbours=neighbours,
                                    max_reproj_px=max_reproj_px, min_parallax_deg=min_parallax_deg)
    n_points = len(pts)
    min_views = max(2, int(np.ceil(min_views_frac * n)))
    pts = _select_points(pts, cams, look, max_radius_frac, min_neighbours, neighbour_frac, min_views,
                         relative_density)
    if len(pts) < min_points:
        raise _no_subject(f"only {len(pts)} consistent 3D points near where the cameras look "
                          f"(of {n_points}); give masks instead")

    uv, z = cams.project(pts)
    masks, cores, sure_bgs = [], [], []
    for i in range(n):
        W, H = int(cams.width[i]), int(cams.height[i])
        side = max(W, H)
        front = z[i] > 0
        vis = front & (uv[i][:, 0] >= 0) & (uv[i][:, 1] >= 0) & (uv[i][:, 0] < W) & (uv[i][:, 1] < H)
        region, _ = _point_region(uv[i][vis], W, H, close_frac * side)
        core = region & ~_dilate_inv(region, core_frac * side)
        sure_bg = _hull_outside(uv[i][front], W, H, band_frac * side)
        cores.append(core)
        sure_bgs.append(sure_bg)
        if vis.sum() < 10 or not region.any():
            masks.append(np.zeros((H, W), bool))
            continue
        masks.append(_refine(images[i], region, core, sure_bg, grabcut_iters))

    agreement, n_fixed = None, 0
    if hull:
        proj = _hull_masks(cams, masks, pts, hull_res, hull_tolerance)
        if proj is None:
            raise _no_subject("the per-view regions do not agree on one subject in 3D")
        agreement = [_iou(m, p) for m, p in zip(masks, proj)]
        for i in range(n):
            if agreement[i] >= hull_agree:
                continue
            # This view disagrees with the others: what the hull adds becomes probable foreground.
            region = masks[i] | proj[i]
            masks[i] = _refine(images[i], region, cores[i] & proj[i], sure_bgs[i], grabcut_iters)
            n_fixed += 1

    out = [(_resize(m.astype(np.uint8) * 255, int(W0[i]), int(H0[i]), nearest=False) > 127)
           .astype(np.uint8) * 255 for i, m in enumerate(masks)]
    fg = [float((m > 0).mean()) for m in out]
    if max(fg) == 0.0:
        raise _no_subject("GrabCut found no foreground in any view")
    stats = {"method": method, "n_points": int(n_points), "n_points_used": int(len(pts)),
             "look_at": [float(x) for x in look], "work_scale": float(factor),
             "fg_fraction": fg, "hull_agreement": agreement, "n_hull_fixed": n_fixed,
             "seconds": round(time.perf_counter() - t0, 3)}
    return out, stats


def _dilate_inv(region: np.ndarray, r: float) -> np.ndarray:
    """Pixels within r of the region's outside (so region & ~this is the region eroded by r)."""
    import cv2

    outside = (~region).astype(np.uint8)
    pad = int(r) + 2
    big = cv2.copyMakeBorder(outside, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    big = cv2.dilate(big, _disk(r))
    return big[pad:-pad, pad:-pad] > 0
