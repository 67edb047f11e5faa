"""Does the subject move? The evidence the automatic segmenter uses to pick its method.

A rigid scene seen by a moving camera obeys one epipolar geometry between two
frames: every point's flow ends on its epipolar line, whatever its depth
(parallax included). A subject that moves on its own breaks it. For a few frame
pairs spread over the capture, dense DIS optical flow (checked forward against
backward) gives point matches; the background's motion is fitted to them with
RANSAC (the background dominates): a homography when one explains most matches
(a turning or zooming camera, where the epipolar geometry is degenerate), else a
fundamental matrix; the distance of each match to it
marks the pixels that disagree. A pair shows a moving subject when those pixels
form one coherent region (not scattered noise). Most pairs showing one means the
subject moves ("motion" masks); otherwise it stands still ("static" masks, from
where the cameras converge).

Photo sets without an order (frames without timestamps) are taken as static.
"""
from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from ..core.types import Capture

WORK_SIZE = 256  # long side of the frames the flow is computed on
STEP = 4  # grid spacing of the matches (pixels at work size)


def _gray(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    s = WORK_SIZE / max(h, w)
    small = cv2.resize(img, (max(8, round(w * s)), max(8, round(h * s))), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)


def _background_residual(src: np.ndarray, dst: np.ndarray, ok: np.ndarray,
                         h_inliers: float = 0.7) -> np.ndarray | None:
    """Distance (P,) of each match from the background's motion model, fitted to the ``ok`` matches.

    A homography when one explains most matches (a camera that turns or zooms, a distant
    scene: then a fundamental matrix is degenerate and would absorb the subject's motion too),
    else a fundamental matrix (Sampson distance). None when neither can be fitted.
    """
    H, inl = cv2.findHomography(src[ok], dst[ok], cv2.RANSAC, 1.0, maxIters=2000, confidence=0.995)
    if H is not None and inl is not None and inl.mean() >= h_inliers:
        proj = cv2.perspectiveTransform(src[None].astype(np.float64), H)[0]
        return np.linalg.norm(proj - dst, axis=1)
    F, _ = cv2.findFundamentalMat(src[ok], dst[ok], cv2.FM_RANSAC, 1.0, 0.999)
    if F is None or F.shape != (3, 3):
        return None
    x1 = np.c_[src, np.ones(len(src))]
    x2 = np.c_[dst, np.ones(len(dst))]
    Fx1, Ftx2 = x1 @ F.T, x2 @ F
    num = np.sum(x2 * Fx1, axis=1) ** 2
    return np.sqrt(num / (Fx1[:, 0] ** 2 + Fx1[:, 1] ** 2 + Ftx2[:, 0] ** 2 + Ftx2[:, 1] ** 2 + 1e-12))


def pair_disagreement(a: np.ndarray, b: np.ndarray, min_px: float = 1.5) -> dict[str, float]:
    """How much of frame ``a``'s motion to ``b`` a single rigid scene cannot explain.

    Returns {"region": area fraction of the largest coherent disagreeing region,
    "scatter": fraction of disagreeing matches outside it, "flow": median flow (px at work size)}.
    """
    ga, gb = _gray(a), _gray(b)
    if ga.shape != gb.shape:
        gb = cv2.resize(gb, ga.shape[::-1])
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    fwd = dis.calc(ga, gb, None)
    bwd = dis.calc(gb, ga, None)
    h, w = ga.shape
    ys, xs = np.mgrid[STEP // 2:h:STEP, STEP // 2:w:STEP]
    src = np.stack([xs, ys], -1).reshape(-1, 2).astype(np.float32)
    dst = src + fwd[ys, xs].reshape(-1, 2)
    inside = (dst[:, 0] >= 0) & (dst[:, 0] < w - 1) & (dst[:, 1] >= 0) & (dst[:, 1] < h - 1)
    back = np.zeros_like(dst)
    di = np.clip(dst.round().astype(int), 0, [w - 1, h - 1])
    back[:] = bwd[di[:, 1], di[:, 0]]
    consistent = inside & (np.linalg.norm(dst + back - src, axis=1) < 1.0)
    flow_mag = float(np.median(np.linalg.norm(dst - src, axis=1)))
    if consistent.sum() < 50:
        return {"region": 0.0, "scatter": 0.0, "flow": flow_mag}
    dist = _background_residual(src, dst, consistent)
    if dist is None:
        return {"region": 0.0, "scatter": 0.0, "flow": flow_mag}
    noise = float(np.median(dist[consistent]))
    # matches that fail the flow check sit where the subject covers or uncovers background: they count too
    bad = (dist > max(min_px, 4 * noise)) | ~consistent & inside
    grid = bad.reshape(ys.shape).astype(np.uint8)
    grid = cv2.morphologyEx(grid, cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(grid, connectivity=8)
    if n <= 1:
        return {"region": 0.0, "scatter": float(bad.mean()), "flow": flow_mag}
    k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    region = float(stats[k, cv2.CC_STAT_AREA]) / grid.size
    scatter = float(((grid > 0) & (labels != k)).sum()) / grid.size
    return {"region": region, "scatter": scatter, "flow": flow_mag}


def subject_motion(cap: Capture, n_pairs: int = 8, gaps: tuple[int, ...] = (1, 3), min_region: float = 0.03,
                   max_region: float = 0.6, max_scatter: float = 0.15) -> dict[str, Any]:
    """Evidence whether the capture's subject moves: {"moving": bool, "reason": str, "pairs": [...]}.

    n_pairs frames i in capture order, spread over the capture, each paired with i + g for g in
    ``gaps`` (a slow subject shows over a longer gap); a frame votes "moving" when one of its pairs
    shows a region that its largest disagreeing region covers min_region..max_region of the frame
    (more: the flow failed, not a subject) and the scattered rest <= max_scatter (else the
    flow is just noisy).
    """
    n = len(cap.images)
    gap = max(gaps)
    if any(f.timestamp is None for f in cap.frames) or n < gap + 2:
        return {"moving": False, "reason": "a photo set, not a video: the subject is taken to stand still",
                "pairs": []}
    order = sorted(range(n), key=lambda i: (cap.frames[i].timestamp, i))
    starts = np.unique(np.linspace(0, n - 1 - gap, min(n_pairs, n - gap)).round().astype(int))
    pairs = []
    for s in starts:
        best = None
        for g in gaps:
            i, j = order[s], order[s + g]
            d = pair_disagreement(cap.images[i], cap.images[j])
            d.update(frames=[cap.frames[i].name, cap.frames[j].name],
                     vote=bool(min_region <= d["region"] <= max_region and d["scatter"] <= max_scatter))
            if best is None or (d["vote"], d["region"]) > (best["vote"], best["region"]):
                best = d
        pairs.append(best)
    votes = sum(p["vote"] for p in pairs)
    moving = votes * 2 > len(pairs)
    median_region = float(np.median([p["region"] for p in pairs]))
    reason = (f"{votes} of {len(pairs)} frame pairs hold a region whose motion no single rigid scene explains "
              f"(median {100 * median_region:.1f}% of the frame)")
    reason += ": the subject moves" if moving else ": the subject stands still"
    return {"moving": moving, "reason": reason, "pairs": pairs}
