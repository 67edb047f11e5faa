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


def grabcut(img: np.ndarray, gc: np.ndarray, iterations: int, fg_model: np.ndarray | None = None,
            models: list | None = None) -> np.ndarray | None:
    """GrabCut from the label map ``gc`` (``cv2.GC_*`` per pixel): the subject mask, or None when it
    cannot run (too few subject or background pixels, or colour models OpenCV cannot fit).

    ``fg_model``: a subject colour model (OpenCV's (1, 65) GMM) to keep instead of fitting one to
    this frame: the background's model is fitted to this frame's background labels, then one graph
    cut runs with both models frozen. ``models``: a list that receives the fitted
    ``(bg_model, fg_model)``."""
    fgish = (gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)
    if fgish.sum() < 8 or (~fgish).sum() < 8:
        return None
    gc = gc.copy()
    img = np.ascontiguousarray(img)
    bgd, fgd = np.zeros((1, 65)), np.zeros((1, 65))
    try:
        if fg_model is None:
            cv2.grabCut(img, gc, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
        else:
            cv2.grabCut(img, gc.copy(), None, bgd, fgd, 0, cv2.GC_INIT_WITH_MASK)  # fits both models only
            fgd = fg_model.copy()
            cv2.grabCut(img, gc, None, bgd, fgd, 1, cv2.GC_EVAL_FREEZE_MODEL)
    except cv2.error:  # degenerate colour models (e.g. one flat colour)
        return None
    if models is not None:
        models[:] = [bgd, fgd]
    return (gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)


def refine_mask(img: np.ndarray, mask: np.ndarray, band: float, iterations: int, fg_model: np.ndarray | None = None,
                sure_bg: np.ndarray | None = None, min_band: int = 2, maybe_fg: np.ndarray | None = None) -> np.ndarray:
    """GrabCut around ``mask``'s edge: sure subject = eroded, sure background = outside dilated, by
    ``band`` times the square root of its area (at least ``min_band`` px); the main parts kept
    (``mask`` when GrabCut cannot run). ``fg_model``: a subject colour model to keep (see
    ``grabcut``); ``sure_bg``: more pixels that are background unless in the eroded mask;
    ``maybe_fg``: pixels outside the band that may be subject all the same (a part the mask lost)."""
    area = int(mask.sum())
    if area == 0:
        return mask
    r = max(min_band, int(round(band * math.sqrt(area))))
    k = ellipse(r)
    m = mask.astype(np.uint8)
    gc = np.full(m.shape, cv2.GC_BGD, np.uint8)
    gc[cv2.dilate(m, k) > 0] = cv2.GC_PR_BGD
    gc[mask] = cv2.GC_PR_FGD
    if maybe_fg is not None:
        gc[maybe_fg & ~mask] = cv2.GC_PR_FGD
    if sure_bg is not None:
        gc[sure_bg] = cv2.GC_BGD
    gc[cv2.erode(m, k) > 0] = cv2.GC_FGD
    out = grabcut(img, gc, iterations, fg_model)
    return mask if out is None else largest_parts(out)


def warp_mask(prev_mask: np.ndarray, prev_grey: np.ndarray, grey: np.ndarray, dis) -> np.ndarray:
    """``prev_mask`` brought into the current frame along the flow current -> previous (a backward
    warp; ``dis`` a ``cv2.DISOpticalFlow``)."""
    return warp_along_flow(prev_mask, dis.calc(grey, prev_grey, None))  # grey(x) ~ prev_grey(x + flow(x))


def warp_along_flow(prev_mask: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``prev_mask`` brought into a frame whose flow to the previous one is ``flow``."""
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    out = cv2.remap(prev_mask.astype(np.float32), gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return out >= 0.5


def propagate(masks: list, chain, images: list[np.ndarray], flows: "FlowCache", band: float, iterations: int,
              fg_model: np.ndarray | None = None, hints=None, fill: bool = False) -> None:
    """Carry ``masks[chain[0]]`` frame by frame along ``chain`` (positions), in place: each frame
    takes the previous one's mask warped along the flow, re-segmented by ``refine_mask`` (GrabCut
    with ``fg_model`` kept when given; ``hints(i, warped)``: frame i's extra (sure background, maybe
    subject) pixels, each bool (H, W) or None); ``fill``: fill holes."""
    chain = list(chain)
    prev = chain[0]
    for i in chain[1:]:
        warped = warp_along_flow(masks[prev], flows(i, prev))
        if warped.any():
            bg, fg = hints(i, warped) if hints else (None, None)
            m = refine_mask(images[i], warped, band, iterations, fg_model, bg, maybe_fg=fg)
            masks[i] = fill_holes(m) if fill else m
        else:
            masks[i] = warped
        prev = i


def at_frame_size(mask: np.ndarray, image: np.ndarray) -> np.ndarray:
    """A work-size bool ``mask`` as ``image``'s uint8 0/255 mask (linear resampling, threshold 0.5)."""
    h, w = image.shape[:2]
    if mask.shape != (h, w):
        mask = cv2.resize(mask.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR) >= 0.5
    return np.where(mask, 255, 0).astype(np.uint8)


def ellipse(r: int) -> np.ndarray:
    """A (2r+1)-square elliptic structuring element."""
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))


def pixel_grid(h: int, w: int) -> np.ndarray:
    """(H, W, 2) float32 pixel coordinates (x, y)."""
    return np.stack(np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)), -1)


class FlowCache:
    """DIS optical flow between frames ``greys[a] -> greys[b]``, each pair computed once."""

    def __init__(self, greys: list[np.ndarray], preset: int = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM):
        self.greys = greys
        self.dis = cv2.DISOpticalFlow_create(preset)
        self._flows: dict[tuple[int, int], np.ndarray] = {}

    def __call__(self, a: int, b: int) -> np.ndarray:
        """(H, W, 2) flow with ``greys[a](x) ~ greys[b](x + flow(x))``."""
        if (a, b) not in self._flows:
            self._flows[a, b] = self.dis.calc(self.greys[a], self.greys[b], None)
        return self._flows[a, b]


def background_homography(flow: np.ndarray, grid: np.ndarray, step: int, thresh: float = 1.0,
                          region: np.ndarray | None = None) -> tuple[np.ndarray | None, int]:
    """The homography x -> x + flow(x) that most of ``flow`` follows (RANSAC on a grid every ``step``
    px: the background's motion; or on every pixel of ``region``, bool (H, W)), or None; and its
    number of RANSAC inliers."""
    src = grid[::step, ::step].reshape(-1, 2) if region is None else grid[region]
    dst = src + (flow[::step, ::step].reshape(-1, 2) if region is None else flow[region])
    if len(src) < 8:
        return None, 0
    H, inl = cv2.findHomography(src, dst, cv2.RANSAC, thresh, maxIters=2000, confidence=0.995)
    return (None, 0) if H is None else (H, int(inl.sum()))


def homography_residual(flow: np.ndarray, grid: np.ndarray, step: int, thresh: float = 1.0) -> tuple[np.ndarray, int]:
    """Residual (H, W) between ``flow`` and its background homography (``background_homography``);
    NaN where the homography leaves the image. Also the number of RANSAC inliers."""
    h, w = flow.shape[:2]
    H, inliers = background_homography(flow, grid, step, thresh)
    if H is None:
        return np.full((h, w), np.nan, np.float32), 0
    pts = grid.reshape(-1, 2).astype(np.float64)
    hx = cv2.perspectiveTransform(pts[None], H)[0].reshape(h, w, 2).astype(np.float32)
    r = np.linalg.norm(grid + flow - hx, axis=-1)
    m = 2.0
    outside = (hx[..., 0] < m) | (hx[..., 0] > w - 1 - m) | (hx[..., 1] < m) | (hx[..., 1] > h - 1 - m)
    r[outside] = np.nan
    return r, inliers


def compensated_difference(images: list[np.ndarray], flows: FlowCache, a: int, others: list[int], grid: np.ndarray,
                           step: int, region: np.ndarray | None = None, blur: int = 5) -> np.ndarray:
    """(H, W) float32: how unlike frame ``a`` each other frame looks once a motion is taken out, pixel-
    exact where flow is smeared. The motion is the homography that the flow a -> other follows over
    ``region`` (bool (H, W); None: the whole frame, i.e. the background's), fitted on a grid every
    ``step`` px; each other frame is warped onto frame ``a`` by it and the colour difference taken
    (largest over channels, 0..255, box-averaged over ``blur`` px); the minimum over ``others`` (inf
    where none overlaps)."""
    h, w = images[a].shape[:2]
    img = images[a].astype(np.float32)
    best = np.full((h, w), np.inf, np.float32)
    for b in others:
        H, _ = background_homography(flows(a, b), grid, step, region=region)
        if H is None:
            continue
        warped = cv2.warpPerspective(images[b].astype(np.float32), H, (w, h),
                                     flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR, borderValue=(np.nan,) * 3)
        d = np.minimum(np.nan_to_num(np.abs(img - warped).max(-1), nan=255.0), 255.0)
        best = np.minimum(best, cv2.blur(d, (blur, blur)) if blur > 1 else d)
    return best


def looks_like_background(images: list[np.ndarray], flows: FlowCache, a: int, mask: np.ndarray, grid: np.ndarray,
                          step: int, level: float = 5.0, cache: dict | None = None) -> np.ndarray:
    """Frame ``a``'s pixels (bool (H, W)) that the background's motion explains and the subject's does
    not, pixel-exact (a gap between a subject's limbs, where flow is smeared). Background: frames 3, 6
    and 10 away warped by the background homography reproduce the pixel (``compensated_difference``
    under ``level`` grey levels, or 3 times the frame's median difference, at most 3 ``level``). Subject:
    the neighbouring frames warped by the homography the flow follows inside ``mask`` (the subject,
    roughly; eroded) do not: their difference is at least twice the background's. A subject that looks
    like the background it covers (camouflage) is explained by both and stays undecided. ``cache``: a
    dict the caller keeps for one capture: the background's difference per frame (it does not depend
    on ``mask``)."""
    n = len(images)
    inner = cv2.erode(mask.astype(np.uint8), ellipse(2)) > 0
    if n < 2 or inner.sum() < 8:
        return np.zeros(mask.shape, bool)
    cache = {} if cache is None else cache
    if a not in cache:
        cache[a] = compensated_difference(images, flows, a, far_neighbours(a, n), grid, step)
    d_bg = cache[a]
    finite = np.isfinite(d_bg)
    if not finite.any():
        return np.zeros(mask.shape, bool)
    level = min(max(level, 3.0 * float(np.median(d_bg[finite]))), 3.0 * level)
    near = [b for b in (a - 2, a - 1, a + 1, a + 2) if 0 <= b < n]
    d_subj = compensated_difference(images, flows, a, near, grid, step, region=inner)
    return (d_bg < level) & (d_subj > 2.0 * np.maximum(d_bg, 0.5 * level))


def far_neighbours(a: int, n: int, gaps: tuple[int, ...] = (3, 6, 10)) -> list[int]:
    """Frames ``gaps`` before and after position ``a`` (of ``n``), those that exist; the nearest frames
    when none does."""
    out = [b for g in gaps for b in (a - g, a + g) if 0 <= b < n]
    return out or [b for b in (a - 1, a + 1) if 0 <= b < n]


def motion_score(flows: FlowCache, a: int, neighbours: tuple[list[int], list[int]], grid: np.ndarray, step: int,
                 k: float, min_residual: float) -> tuple[np.ndarray, list[float]]:
    """How much frame ``a``'s pixels move against the background: per neighbour, the residual to
    the background homography over ``max(k * median residual, min_residual)``; the maximum over
    each side's neighbours (``neighbours`` = (before, after)), then the minimum of the two sides
    (a side's flow is garbage where the subject uncovers background). > 1 = moves. Also the
    pairs' median residuals (the noise)."""
    sides, noise = [], []
    for side in neighbours:
        best = None
        for b in side:
            r, _ = homography_residual(flows(a, b), grid, step)
            med = float(np.nanmedian(r)) if np.isfinite(r).any() else 0.0
            noise.append(med)
            score = np.nan_to_num(r / max(k * med, min_residual, 1e-6), nan=0.0)
            best = score if best is None else np.maximum(best, score)
        if best is not None:
            sides.append(best)
    if not sides:
        return np.zeros(grid.shape[:2], np.float32), noise
    return (np.minimum(*sides) if len(sides) == 2 else sides[0]), noise


def moves_with_background(score: np.ndarray, far: int, low: float = 0.3) -> np.ndarray:
    """Pixels that clearly move like the background: smoothed ``score`` under ``low`` and more
    than ``far`` px from any pixel that moves (score > 1) -- next to the subject the flow is
    smeared, and parts of a turning subject can briefly move like the background."""
    moving = cv2.morphologyEx((score > 1.0).astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    near = cv2.dilate(moving, ellipse(far)) > 0
    return ~near & (cv2.GaussianBlur(score.astype(np.float32), (0, 0), 1.0) < low)


def moves_next_to(score: np.ndarray, mask: np.ndarray, reach: float) -> np.ndarray:
    """Pixels that move against the background (``score`` > 1, specks opened away) no further than
    ``reach`` px from ``mask``."""
    moving = cv2.morphologyEx((score > 1.0).astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    near = cv2.dilate(mask.astype(np.uint8), ellipse(max(1, round(reach)))) > 0
    return (moving > 0) & near


def mask_box(mask: np.ndarray, margin: int = 8) -> tuple[int, int, int, int]:
    """Box (x0, y0, x1, y1) around a mask's subject pixels, grown by ``margin`` and clipped to the frame."""
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    return (max(0, int(xs.min()) - margin), max(0, int(ys.min()) - margin), min(w, int(xs.max()) + 1 + margin),
            min(h, int(ys.max()) + 1 + margin))


def threshold_option(name: str, value) -> float:
    """A segmenter's probability threshold as a float in (0, 1); else a one-line InputError."""
    from ..core.errors import InputError

    try:
        t = float(value)
    except (TypeError, ValueError):
        t = float("nan")
    if not 0.0 < t < 1.0:
        raise InputError(None, f"{name} threshold must be a number in (0, 1), got {t!r}")
    return t
