"""Masks from a prompt in one frame: GrabCut in that frame, optical flow to the others.

The user draws a box (and optionally clicks foreground / background points) in
frame ``prompt_frame``. GrabCut (colour GMMs + graph cut) segments that frame
from the box. The mask then travels frame to frame in both directions: dense
DIS optical flow from each frame back to its neighbour warps the neighbour's
mask, and GrabCut re-segments the frame from the warped mask (sure subject =
the eroded warp, sure background = outside the dilated warp, a band of
"probably" in between), which stops the flow's errors from piling up. Only the
largest connected component(s) are kept. Work happens at most ``work_size``
pixels on the long side; masks come back at each frame's size.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import cv2
import numpy as np

from ..core.errors import InputError
from ..core.types import Capture
from .mask_ops import at_frame_size, grabcut, largest_parts, refine_mask, warp_mask


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
                 prompt_frame: int = 0, iterations: int = 5, refine_iterations: int = 3,
                 band: float = 0.08, work_size: int = 320) -> tuple[list[np.ndarray], dict[str, Any]]:
    """Masks for every frame of ``cap`` from a prompt in frame ``prompt_frame``.

    box: (x0, y0, x1, y1) pixels of that frame around the subject; points: (x, y, label)
    clicks, label 1 = subject, 0 = background. ``iterations`` / ``refine_iterations``:
    GrabCut iterations in the prompt frame / the others; ``band``: half-width of the
    uncertain band around a warped mask, as a fraction of the subject's size
    (sqrt of its area); ``work_size``: longest side GrabCut and the flow work at.
    Returns N (H, W) uint8 0/255 masks and stats (prompt frame name, box, points, work size).
    """
    points = [tuple(p) for p in points]
    _check_prompt(cap, box, points, prompt_frame)
    cv2.setRNGSeed(0)  # GrabCut's k-means draws from OpenCV's global RNG: same input, same masks
    n = len(cap.images)

    def work(img: np.ndarray) -> tuple[np.ndarray, float]:
        s = min(1.0, work_size / max(img.shape[:2]))
        if s == 1.0:
            return img, s
        size = (max(1, round(img.shape[1] * s)), max(1, round(img.shape[0] * s)))
        return cv2.resize(img, size, interpolation=cv2.INTER_AREA), s

    small = [work(img) for img in cap.images]
    greys = [cv2.cvtColor(im, cv2.COLOR_RGB2GRAY) for im, _ in small]

    # the prompt frame: outside the box = background, inside = probably subject, clicks = sure
    img, s = small[prompt_frame]
    gc = np.full(img.shape[:2], cv2.GC_BGD, np.uint8)
    x0, y0, x1, y1 = (float(v) * s for v in box)
    gc[int(math.floor(y0)):int(math.ceil(y1)), int(math.floor(x0)):int(math.ceil(x1))] = cv2.GC_PR_FGD
    r = max(2, round(0.01 * max(img.shape[:2])))
    for x, y, label in points:
        cv2.circle(gc, (int(x * s), int(y * s)), r, int(cv2.GC_FGD if label == 1 else cv2.GC_BGD), -1)
    if not (gc == cv2.GC_BGD).any():
        raise InputError(None, f"prompt box {tuple(box)} covers all of frame {cap.frames[prompt_frame].name}; "
                               "leave background around the subject or click a background point")
    first = grabcut(img, gc, iterations)
    if first is None:
        raise InputError(None, f"prompt box {tuple(box)} in frame {cap.frames[prompt_frame].name} "
                               "is too small to segment")
    masks: list[np.ndarray | None] = [None] * n
    masks[prompt_frame] = largest_parts(first)

    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    for order in (range(prompt_frame + 1, n), range(prompt_frame - 1, -1, -1)):
        prev = prompt_frame
        for i in order:
            shape = greys[i].shape
            prev_grey, prev_mask = greys[prev], masks[prev]
            if prev_grey.shape != shape:  # frames of different sizes: compare at this frame's size
                prev_grey = cv2.resize(prev_grey, shape[::-1], interpolation=cv2.INTER_AREA)
                prev_mask = cv2.resize(prev_mask.astype(np.uint8), shape[::-1], interpolation=cv2.INTER_NEAREST) > 0
            masks[i] = refine_mask(small[i][0], warp_mask(prev_mask, prev_grey, greys[i], dis), band,
                                   refine_iterations)
            prev = i

    out = [at_frame_size(m, img) for m, img in zip(masks, cap.images)]
    stats = {"prompt_frame": cap.frames[prompt_frame].name, "box": [float(v) for v in box],
             "points": len(points), "work_size": work_size}
    return out, stats
