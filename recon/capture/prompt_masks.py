"""Masks from a prompt in one frame: GrabCut in that frame, optical flow to the others.

The user draws a box (and optionally clicks foreground / background points) in
frame ``prompt_frame``. GrabCut (colour GMMs + graph cut) segments that frame
from the box. The mask then travels frame to frame in both directions: dense
DIS optical flow from each frame back to its neighbour warps the neighbour's
mask, and GrabCut re-segments the frame from the warped mask (sure subject =
the eroded warp, sure background = outside the dilated warp, a band of
"probably" in between), which stops the flow's errors from piling up. Only the
largest connected component(s) are kept. The subject's colour model is learned
in the prompt frame and kept (only the background's is refitted per frame), and
when the subject moves against the background, pixels that clearly move like the
background (flow vs a homography, ``mask_ops.motion_score``) away from anything
that does not are sure background -- in the prompt frame's box and along the
chain -- so GrabCut does not leak into a look-alike background object; so are the
pixels that the background's homography reproduces from frames further away and the
subject's own motion does not (``mask_ops.looks_like_background``: pixel-exact where
flow is smeared, e.g. a gap between ears). Pixels that move against the background next to the
carried mask may be subject again (``mask_ops.moves_next_to``), so a part the chain lost -- an ear
tip that crossed a look-alike background -- comes back once it moves clear of it. Work happens at most ``work_size``
pixels on the long side; masks come back at each frame's size.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import cv2
import numpy as np

from ..core.errors import InputError
from ..core.types import Capture
from .mask_ops import (FlowCache, at_frame_size, grabcut, largest_parts, looks_like_background, motion_score,
                       moves_next_to, moves_with_background, pixel_grid, propagate)


def _check_prompt(cap: Capture, box, points, prompt_frame: int) -> None:
    n = len(cap.images)
    if not isinstance(prompt_frame, (int, np.integer)) or not 0 <= prompt_frame < n:
        raise InputError(None, f"prompt frame {prompt_frame!r} is out of range "
                               f"(the capture has {n} frames, 0..{n - 1})")
    h, w = cap.images[prompt_frame].shape[:2]
    name = cap.frames[prompt_frame].name
    try:
        x0, y0, x1, y1 = (float(v) for v in box)
    except (TypeError, ValueError):
        raise InputError(None, f"prompt box must be 4 numbers (x0, y0, x1, y1) in pixels, got {box!r}") from None
    if not all(map(math.isfinite, (x0, y0, x1, y1))) or x1 <= x0 or y1 <= y0:
        raise InputError(None, f"prompt box {tuple(box)} is empty or inverted (need x0 < x1 and y0 < y1)")
    if x0 < 0 or y0 < 0 or x1 > w or y1 > h:
        raise InputError(None, f"prompt box {tuple(box)} is outside frame {name} ({w}x{h})")
    for p in points:
        if len(p) != 3 or p[2] not in (0, 1):
            raise InputError(None, f"prompt point {tuple(p)!r} must be (x, y, label) with label 1 (subject) or 0")
        if not (0 <= p[0] < w and 0 <= p[1] < h):
            raise InputError(None, f"prompt point {tuple(p)} is outside frame {name} ({w}x{h})")


def prompt_masks(cap: Capture, box: Sequence[float], points: Sequence[Sequence[float]] = (),
                 prompt_frame: int = 0, iterations: int = 10, refine_iterations: int = 3,
                 band: float = 0.04, work_size: int = 320, motion: bool = True,
                 keep_colours: bool = True, regain: float = 0.25) -> tuple[list[np.ndarray], dict[str, Any]]:
    """Masks for every frame of ``cap`` from a prompt in frame ``prompt_frame``.

    box: (x0, y0, x1, y1) pixels of that frame around the subject; points: (x, y, label)
    clicks, label 1 = subject, 0 = background. ``iterations`` / ``refine_iterations``:
    GrabCut iterations in the prompt frame / the others; ``band``: half-width of the
    uncertain band around a warped mask, as a fraction of the subject's size
    (sqrt of its area, at least 2 px); ``work_size``: longest side GrabCut and the flow work at
    (every frame is worked at the prompt frame's work size); ``motion``: in the prompt frame,
    box pixels that clearly move like the background (a homography fitted to the flow to the
    neighbouring frames) and lie away from anything that moves against it are sure background,
    when the box holds such motion; ``keep_colours``: the subject's colour model is learned in
    the prompt frame and kept for the others (the background's is refitted per frame), so a
    leak into a background object that looks like the subject does not teach the model;
    ``regain``: when motion is used, pixels that move against the background within this fraction
    of the subject's size of the carried mask may be subject again (GrabCut decides by colour).
    Returns N (H, W) uint8 0/255 masks and stats (prompt frame name, box, points, work size,
    whether motion was used in the prompt frame).
    """
    points = [tuple(p) for p in points]
    _check_prompt(cap, box, points, prompt_frame)
    cv2.setRNGSeed(0)  # GrabCut's k-means draws from OpenCV's global RNG: same input, same masks
    n = len(cap.images)

    ph, pw = cap.images[prompt_frame].shape[:2]
    s = min(1.0, work_size / max(ph, pw))
    ws = (max(8, round(pw * s)), max(8, round(ph * s)))  # (w, h)
    small = [img if img.shape[1::-1] == ws else
             cv2.resize(img, ws, interpolation=cv2.INTER_AREA if img.shape[1] >= ws[0] else cv2.INTER_LINEAR)
             for img in cap.images]
    greys = [cv2.cvtColor(im, cv2.COLOR_RGB2GRAY) for im in small]
    flows = FlowCache(greys)
    sx, sy = ws[0] / pw, ws[1] / ph

    # the prompt frame: outside the box = background, inside = probably subject, clicks = sure
    img = small[prompt_frame]
    gc = np.full(img.shape[:2], cv2.GC_BGD, np.uint8)
    x0, y0, x1, y1 = (float(box[0]) * sx, float(box[1]) * sy, float(box[2]) * sx, float(box[3]) * sy)
    inside = np.zeros(img.shape[:2], bool)
    inside[int(math.floor(y0)):int(math.ceil(y1)), int(math.floor(x0)):int(math.ceil(x1))] = True
    gc[inside] = cv2.GC_PR_FGD
    if not (gc == cv2.GC_BGD).any():
        raise InputError(None, f"prompt box {tuple(box)} covers all of frame {cap.frames[prompt_frame].name}; "
                               "leave background around the subject or click a background point")
    used_motion = False
    if motion and n >= 2:
        h, w = greys[0].shape
        near = ([j for j in (prompt_frame - 1, prompt_frame - 2) if j >= 0],
                [j for j in (prompt_frame + 1, prompt_frame + 2) if j < n])
        grid, step, far = pixel_grid(h, w), max(2, round(max(w, h) / 80)), max(2, round(0.025 * max(w, h)))
        score, _ = motion_score(flows, prompt_frame, near, grid, step, k=4.0, min_residual=0.6)
        # only where the box holds motion against the background: else (a still subject) nothing to go by
        if (score[inside] > 1.0).mean() >= 0.1:
            still = moves_with_background(score, far=far) & inside
            gc[still] = cv2.GC_BGD
            used_motion = bool(still.any())
    r = max(2, round(0.01 * max(img.shape[:2])))
    for x, y, label in points:
        cv2.circle(gc, (int(x * sx), int(y * sy)), r, int(cv2.GC_FGD if label == 1 else cv2.GC_BGD), -1)
    models: list = []
    first = grabcut(img, gc, iterations, models=models)
    if first is None:
        raise InputError(None, f"prompt box {tuple(box)} in frame {cap.frames[prompt_frame].name} "
                               "is too small to segment")
    if used_motion:  # what looks like the background and unlike the subject found is not the subject
        first = largest_parts(first)
        first &= ~(looks_like_background(small, flows, prompt_frame, first, grid, step) & (gc != cv2.GC_FGD))
    masks: list[np.ndarray | None] = [None] * n
    masks[prompt_frame] = largest_parts(first)
    fg_model = models[1] if keep_colours and models else None

    def motion_hints(i: int, warped: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """What clearly moves with the background (sure background), and what moves against it next to
        the warped mask (maybe subject: a part the chain lost, e.g. an ear tip that crossed a look-alike)."""
        near = ([j for j in (i - 1, i - 2) if j >= 0], [j for j in (i + 1, i + 2) if j < n])
        sc, _ = motion_score(flows, i, near, grid, step, k=4.0, min_residual=0.6)
        bg = moves_with_background(sc, far=far) | looks_like_background(small, flows, i, warped, grid, step)
        return bg, moves_next_to(sc, warped, reach)

    reach = regain * math.sqrt(max(1.0, float(masks[prompt_frame].sum())))
    hints = motion_hints if used_motion else None
    for chain in (range(prompt_frame, n), range(prompt_frame, -1, -1)):
        propagate(masks, chain, small, flows, band, refine_iterations, fg_model, hints)

    out = [at_frame_size(m, img) for m, img in zip(masks, cap.images)]
    stats = {"prompt_frame": cap.frames[prompt_frame].name, "box": [float(v) for v in box],
             "points": len(points), "work_size": work_size, "motion_in_prompt_frame": used_motion}
    return out, stats
