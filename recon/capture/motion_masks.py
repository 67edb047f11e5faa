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
the motion seed (dropped when far smaller than the median seed). Each seed is
refined by GrabCut (sure subject = the eroded seed, sure background = outside the
dilated seed and, while the seed moves, what clearly moves like the background or
looks like it once the background's motion is taken out and unlike the subject;
``mask_ops``) and its holes are filled. Seeds that agree with the next seed
carried over to it by flow form tracks; the longest track is the subject (a
handheld camera's parallax can make a wall "move" for a while). From it outwards,
frame by frame, each frame takes the previous mask carried by flow and refined
by GrabCut (a narrow band, ``prop_band``), or its own seed when that agrees
(IoU or containment >= ``link_iou``) -- the same propagation as ``prompt_masks``. Work happens at most ``work_size``
pixels on the long side; masks come back at each frame's size.
"""
from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

from ..core.errors import InputError
from ..core.types import Capture
from .mask_ops import (FlowCache, at_frame_size, ellipse, fill_holes, largest_parts, looks_like_background,
                       motion_score, moves_with_background, pixel_grid, refine_mask, warp_along_flow)


def _order(cap: Capture) -> list[int]:
    """Frame positions sorted by (index, timestamp, position)."""
    def key(i: int):
        f = cap.frames[i]
        idx = getattr(f, "index", None)
        ts = getattr(f, "timestamp", None)
        return (idx if idx is not None else i, ts if ts is not None else 0.0, i)

    return sorted(range(len(cap.images)), key=key)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def _is_one_blob(m: np.ndarray, lo: float = 0.01, hi: float = 0.6) -> bool:
    """One 8-connected component covering ``lo``..``hi`` of the frame."""
    n = cv2.connectedComponents(m.astype(np.uint8), connectivity=8)[0]
    return n == 2 and lo <= float(m.mean()) <= hi


def motion_masks(cap: Capture, window: int = 2, k: float = 4.0, min_residual: float = 0.6,
                 min_area: float = 0.003, min_seeded: float = 0.5, min_ratio: float = 0.3, band: float = 0.2,
                 iterations: int = 3, work_size: int = 320, link_iou: float = 0.5,
                 prop_band: float = 0.04) -> tuple[list[np.ndarray], dict[str, Any]]:
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
    grid = pixel_grid(h, w)
    step = max(2, round(max(w, h) / 80))
    flows = FlowCache(greys)
    far = max(2, round(0.025 * max(w, h)))
    r3 = max(1, round(0.006 * max(w, h)))
    ker = ellipse(r3)

    noise, seeds, still = [], [], []
    for a in range(n):
        near = ([a - g for g in range(1, window + 1) if a - g >= 0], [a + g for g in range(1, window + 1) if a + g < n])
        ev, meds = motion_score(flows, a, near, grid, step, k, min_residual)
        noise += meds
        still.append((ev, moves_with_background(ev, far)))
        fg = (ev > 1.0).astype(np.uint8)
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

    bg_difference: dict = {}  # per frame, for looks_like_background

    def sure_bg(i: int, mask: np.ndarray) -> np.ndarray | None:
        """Frame i's pixels that clearly move with the background, when ``mask`` moves against it
        (a subject that pauses moves with the background too: then nothing is sure), and what looks
        like the background and not like the subject (``mask_ops.looks_like_background``)."""
        ev, bg = still[i]
        if not mask.any() or (ev[mask] > 1.0).mean() < 0.5:
            return None
        return bg | looks_like_background(small, flows, i, mask, grid, step, cache=bg_difference)

    refined = {i: fill_holes(refine_mask(small[i], seeds[i], band, iterations, sure_bg=sure_bg(i, seeds[i])))
               for i in seeded}
    # seeds that agree with the next seed carried over to it by flow form tracks; the longest is the subject
    tracks, cur = [], [seeded[0]]
    for a, b in zip(seeded, seeded[1:]):
        m = refined[a]
        for j in range(a + 1, b + 1):
            m = warp_along_flow(m, flows(j, j - 1))
        (cur.append(b) if _iou(m, refined[b]) >= link_iou else (tracks.append(cur), cur := [b]))
    tracks.append(cur)
    track = max(tracks, key=len)
    # from the track outwards, frame by frame: a seed that agrees with the mask carried over from the
    # previous frame is taken (re-anchors), else the carried mask, refined by GrabCut
    masks: list[np.ndarray | None] = [None] * n
    for i in track:
        masks[i] = refined[i]
    accepted = set(track)
    for chain in (range(track[0], n), range(track[0], -1, -1)):
        prev = chain[0]
        for i in list(chain)[1:]:
            if i in accepted:
                prev = i
                continue
            warped = warp_along_flow(masks[prev], flows(i, prev))
            carried = fill_holes(refine_mask(small[i], warped, prop_band, iterations, fg_model=None,
                                             sure_bg=sure_bg(i, warped))) if warped.any() else warped
            if i in refined and (_iou(refined[i], carried) >= link_iou or
                                 (refined[i] & carried).sum() >= link_iou * carried.sum() > 0):
                masks[i] = refined[i]
                accepted.add(i)
            else:
                masks[i] = carried
            prev = i

    out: list[np.ndarray] = [None] * n  # type: ignore[list-item]
    for pos, i in enumerate(order):
        out[i] = at_frame_size(masks[pos], cap.images[i])
    frac = [round(float((m > 0).mean()), 5) for m in out]
    stats = {"method": "motion", "foreground_fraction": frac,
             "one_blob_frames": int(sum(_is_one_blob(m > 0) for m in out)),
             "noise_px": round(noise_px, 4), "seeded_frames": len(seeded), "seeds_used": len(accepted),
             "work_size": work_size}
    return out, stats
