"""Image operations the segmenters share: GrabCut from a label map, refining a mask around its
edge, carrying a mask to the next frame along optical flow, and clean-ups. Masks here are
bool (H, W); images (H, W, 3) uint8 (GrabCut's colour models do not care about channel order).
"""
from __future__ import annotations

import math

import cv2
import numpy as np


def largest_parts(fg: np.ndarray, keep: float = 0.25) -> np.ndarray:
    """The largest 8-connected component of ``fg`` plus any at least ``keep`` times its area."""
    n, labels, st, _ = cv2.connectedComponentsWithStats(fg.astype(np.uint8), connectivity=8)
    if n <= 1:
        return fg.astype(bool)
    areas = st[1:, cv2.CC_STAT_AREA]
    return np.isin(labels, 1 + np.flatnonzero(areas >= keep * areas.max()))


def fill_holes(m: np.ndarray) -> np.ndarray:
    """``m`` with every background region that does not reach the border turned to subject."""
    from scipy import ndimage

    return ndimage.binary_fill_holes(m)


def grabcut(img: np.ndarray, gc: np.ndarray, iterations: int) -> np.ndarray | None:
    """GrabCut from the label map ``gc`` (``cv2.GC_*`` per pixel): the subject mask, or None when it
    cannot run (too few subject or background pixels, or colour models OpenCV cannot fit)."""
    fgish = (gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)
    if fgish.sum() < 8 or (~fgish).sum() < 8:
        return None
    gc = gc.copy()
    bgd, fgd = np.zeros((1, 65)), np.zeros((1, 65))
    try:
        cv2.grabCut(np.ascontiguousarray(img), gc, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
    except cv2.error:  # degenerate colour models (e.g. one flat colour)
        return None
    return (gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)


def refine_mask(img: np.ndarray, mask: np.ndarray, band: float, iterations: int) -> np.ndarray:
    """GrabCut around ``mask``'s edge: sure subject = eroded, sure background = outside dilated, by
    ``band`` times the square root of its area; the main parts kept (``mask`` when GrabCut cannot run)."""
    area = int(mask.sum())
    if area == 0:
        return mask
    r = max(2, int(round(band * math.sqrt(area))))
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    m = mask.astype(np.uint8)
    gc = np.full(m.shape, cv2.GC_BGD, np.uint8)
    gc[cv2.dilate(m, k) > 0] = cv2.GC_PR_BGD
    gc[mask] = cv2.GC_PR_FGD
    gc[cv2.erode(m, k) > 0] = cv2.GC_FGD
    out = grabcut(img, gc, iterations)
    return mask if out is None else largest_parts(out)


def warp_mask(prev_mask: np.ndarray, prev_grey: np.ndarray, grey: np.ndarray, dis) -> np.ndarray:
    """``prev_mask`` brought into the current frame along the flow current -> previous (a backward
    warp; ``dis`` a ``cv2.DISOpticalFlow``)."""
    h, w = grey.shape
    flow = dis.calc(grey, prev_grey, None)  # grey(x) ~ prev_grey(x + flow(x))
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    out = cv2.remap(prev_mask.astype(np.float32), gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return out >= 0.5


def at_frame_size(mask: np.ndarray, image: np.ndarray) -> np.ndarray:
    """A work-size bool ``mask`` as ``image``'s uint8 0/255 mask (linear resampling, threshold 0.5)."""
    h, w = image.shape[:2]
    if mask.shape != (h, w):
        mask = cv2.resize(mask.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR) >= 0.5
    return np.where(mask, 255, 0).astype(np.uint8)
