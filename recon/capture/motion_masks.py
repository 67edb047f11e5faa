"""Masks of a subject that moves against its background, found with no prompt.

For each frame (in capture order: ``frame.index``, then ``timestamp``) and each
neighbour up to ``window`` frames before and after, dense DIS optical flow maps
the frame onto the neighbour. The background's motion (the camera's pan, zoom,
roll) is one homography, fitted to the flow with RANSAC; the residual between
the flow and that homography is what does not move like the background. A
pixel's score is its residual over a threshold ``max(k * noise, min_residual)``
where ``noise`` is the pair's median residual (a robust noise level). Scores
are the maximum over neighbours on each side (a subject that pauses still moved
against a frame further away), then the minimum of the two sides (background
that the subject covers in the next frame has garbage flow forward but clean
flow backward, and vice versa). Score > 1, opened and closed, largest blob =
the motion seed (dropped when far smaller than the median seed). Frames without a seed take their nearest seeded neighbour's
mask carried over by flow. Each seed is refined by GrabCut (sure subject = the
eroded seed, sure background = outside the dilated seed, ``mask_ops``) and its holes are filled. Work happens at most ``work_size``
pixels on the long side; masks come back at each frame's size.
"""
from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

from ..core.errors import InputError
from ..core.types import Capture
from .mask_ops import at_frame_size, fill_holes, largest_parts, refine_mask, warp_mask


def _order(cap: Capture) -> list[int]:
    """Frame positions sorted by (index, timestamp, position)."""
    def key(i: int):
        f = cap.frames[i]
        idx = getattr(f, "index", None)
        ts = getattr(f, "timestamp", None)
        return (idx if idx is not None else i, ts if ts is not None else 0.0, i)

    return sorted(range(len(cap.images)), key=key)


def _residual(flow: np.ndarray, grid: np.ndarray, step: int, thresh: float) -> tuple[np.ndarray, int]:
    """Residual (H, W) between ``flow`` and the homography fitted to it (RANSAC on a grid every
    ``step`` px); NaN where the homography leaves the image. Also the number of RANSAC inliers."""
    h, w = flow.shape[:2]
    src = grid[::step, ::step].reshape(-1, 2)
    dst = src + flow[::step, ::step].reshape(-1, 2)
    H, inl = cv2.findHomography(src, dst, cv2.RANSAC, thresh, maxIters=2000, confidence=0.995)
    if H is None:
        return np.full((h, w), np.nan, np.float32), 0
    pts = grid.reshape(-1, 2).astype(np.float64)
    hx = cv2.perspectiveTransform(pts[None], H)[0].reshape(h, w, 2).astype(np.float32)
    r = np.linalg.norm(grid + flow - hx, axis=-1)
    m = 2.0
    outside = (hx[..., 0] < m) | (hx[..., 0] > w - 1 - m) | (hx[..., 1] < m) | (hx[..., 1] > h - 1 - m)
    r[outside] = np.nan
    return r, int(inl.sum())


def _is_one_blob(m: np.ndarray, lo: float = 0.01, hi: float = 0.6) -> bool:
    """One 8-connected component covering ``lo``..``hi`` of the frame."""
    n = cv2.connectedComponents(m.astype(np.uint8), connectivity=8)[0]
    return n == 2 and lo <= float(m.mean()) <= hi


def motion_masks(cap: Capture, window: int = 2, k: float = 4.0, min_residual: float = 0.6,
                 min_area: float = 0.003, min_seeded: float = 0.5, min_ratio: float = 0.3, band: float = 0.2,
                 iterations: int = 3, work_size: int = 320) -> tuple[list[np.ndarray], dict[str, Any]]:
    """Masks for every frame of ``cap`` of what moves against the background (no prompt).

    window: neighbours on each side each frame is compared with; k: a pixel moves when its
    residual exceeds ``k`` times the pair's median residual and ``min_residual`` px (at the work
    size); min_area: smallest motion seed, as a fraction of the frame; min_seeded: the fraction of
    frames that must show motion, else ``InputError`` (a static scene); min_ratio: a seed smaller
    than this times the median seed area is dropped (the frame takes a neighbour's mask); band: GrabCut's uncertain
    band around the seed, as a fraction of sqrt(seed area); iterations: GrabCut iterations;
    work_size: longest side the flow and GrabCut work at.
    Returns N (H, W) uint8 0/255 masks and stats (method, foreground fraction per frame,
    one_blob_frames, noise_px, seeded_frames, work_size).
    """
    n = len(cap.images)
    if n < 3:
        raise InputError(None, f"no moving subject found: motion masks need at least 3 frames, the capture has {n}")
    if window < 1 or k <= 0 or min_residual < 0 or not 0 < min_seeded <= 1:
        raise InputError(None, f"motion masks: bad options window={window!r} k={k!r} "
                               f"min_residual={min_residual!r} min_seeded={min_seeded!r}")
    cv2.setRNGSeed(0)  # RANSAC and GrabCut draw from OpenCV's global RNG: same input, same masks
    order = _order(cap)
    h0, w0 = cap.images[order[0]].shape[:2]
    s = min(1.0, work_size / max(h0, w0))
    ws = (max(8, round(w0 * s)), max(8, round(h0 * s)))  # (w, h): every frame is worked at this size
    small = [cap.images[i] if cap.images[i].shape[1::-1] == ws
             else cv2.resize(cap.images[i], ws, interpolation=cv2.INTER_AREA) for i in order]
    greys = [cv2.cvtColor(im, cv2.COLOR_RGB2GRAY) for im in small]
    w, h = ws
    grid = np.stack(np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)), -1)
    step = max(2, round(max(w, h) / 80))
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)

    noise, seeds = [], []
    for a in range(n):
        sides = []
        for sign in (-1, 1):
            best = None
            for g in range(1, window + 1):
                b = a + sign * g
                if not 0 <= b < n:
                    break
                flow = dis.calc(greys[a], greys[b], None)
                r, _ = _residual(flow, grid, step, 1.0)
                med = float(np.nanmedian(r)) if np.isfinite(r).any() else 0.0
                noise.append(med)
                score = np.nan_to_num(r / max(k * med, min_residual, 1e-6), nan=0.0)
                best = score if best is None else np.maximum(best, score)
            if best is not None:
                sides.append(best)
        ev = np.minimum(*sides) if len(sides) == 2 else sides[0]
        fg = (ev > 1.0).astype(np.uint8)
        r3 = max(1, round(0.006 * max(w, h)))
        ker = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r3 + 1, 2 * r3 + 1))
        fg = cv2.morphologyEx(cv2.morphologyEx(fg, cv2.MORPH_OPEN, ker), cv2.MORPH_CLOSE, ker, iterations=2)
        seed = largest_parts(fg > 0, keep=1.0) if fg.any() else fg > 0
        seeds.append(seed if seed.mean() >= min_area else None)

    noise_px = float(np.median(noise)) / s if noise else 0.0
    areas = [float(m.mean()) for m in seeds if m is not None]
    if areas:  # a seed far smaller than the typical one is a fleck of parallax, not the (paused) subject
        seeds = [m if m is not None and m.mean() >= min_ratio * np.median(areas) else None for m in seeds]
    seeded = [i for i, m in enumerate(seeds) if m is not None]
    if len(seeded) < max(2, math.ceil(min_seeded * n)):
        raise InputError(None, f"no moving subject found: the flow matches the background's homography "
                               f"(noise {noise_px:.2f} px) everywhere in {n - len(seeded)} of {n} frames")

    masks: list[np.ndarray | None] = [None] * n
    for i in seeded:
        masks[i] = fill_holes(refine_mask(small[i], seeds[i], band, iterations))
    # frames without a motion seed: carry the nearest refined mask over by flow, then refine
    for i in sorted(set(range(n)) - set(seeded), key=lambda i: min(abs(i - j) for j in seeded)):
        j = min((j for j in range(n) if masks[j] is not None), key=lambda j: abs(i - j))
        warped = warp_mask(masks[j], greys[j], greys[i], dis)
        masks[i] = fill_holes(refine_mask(small[i], warped, band, iterations)) if warped.any() else warped

    out: list[np.ndarray] = [None] * n  # type: ignore[list-item]
    for pos, i in enumerate(order):
        out[i] = at_frame_size(masks[pos], cap.images[i])
    frac = [round(float((m > 0).mean()), 5) for m in out]
    stats = {"method": "motion", "foreground_fraction": frac,
             "one_blob_frames": int(sum(_is_one_blob(m > 0) for m in out)),
             "noise_px": round(noise_px, 4), "seeded_frames": len(seeded), "work_size": work_size}
    return out, stats
