"""Pick the frames of a video worth reconstructing from: sharp, not repeated, spread over time.

A video holds far more frames than a reconstruction needs, many of them
motion-blurred or nearly identical (the camera paused). The reader measures
every frame once on a small grey copy (``frame_stats``) and keeps only those
numbers; ``select_frames`` then chooses which frames to decode in full:

1. drop the blurriest ``blur_drop`` fraction (variance of the Laplacian, a
   standard focus measure: blur removes high frequencies), judged against the
   neighbouring frames so that a less textured stretch of video is not taken
   for a blurry one and left without frames;
2. split the time line into ``max_frames`` equal bins, so the picks cover the
   whole video, and take the sharpest remaining frame of each bin ...
3. ... unless it is a near-duplicate of the last kept frame: its thumbnail
   differs by less than ``dedup_threshold`` (mean absolute difference, [0, 1]),
   as when the camera pauses; then the next sharpest frame of the bin, if any.

Duplicates are judged against the kept frames, not neighbouring video frames:
at 30 fps consecutive frames always look alike.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..core.config import CaptureConfig

SHARPNESS_SIZE = 320  # longest side of the grey frame the focus measure runs on
THUMB_SIZE = 48  # longest side of the duplicate-detection thumbnail
BLUR_WINDOW = 31  # frames (about a second) that blur is judged against


def to_grey(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB (or (H, W) grey) -> (H, W) uint8 grey."""
    return rgb if rgb.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


def fit_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(w, h) scaled down (never up) so the longest side is at most ``max_side``, rounded half up."""
    m = max(width, height)
    if m <= max_side:
        return width, height
    return max(1, (2 * width * max_side + m) // (2 * m)), max(1, (2 * height * max_side + m) // (2 * m))


def resize_max(img: np.ndarray, max_side: int | None) -> np.ndarray:
    """Downscale ``img`` with area averaging so its longest side is at most ``max_side``."""
    h, w = img.shape[:2]
    if max_side is None or max(h, w) <= max_side:
        return img
    return cv2.resize(img, fit_size(w, h, max_side), interpolation=cv2.INTER_AREA)


def sharpness(grey: np.ndarray) -> float:
    """Variance of the Laplacian of a grey frame, measured at ``SHARPNESS_SIZE``: higher is sharper.

    The frame is brought to a fixed size first so that frames of one video are
    compared at the same scale (and the measure is cheap for large frames).
    """
    g = resize_max(to_grey(grey), SHARPNESS_SIZE).astype(np.float32)
    return float(cv2.Laplacian(g, cv2.CV_32F, ksize=3).var())


def thumbnail(grey: np.ndarray) -> np.ndarray:
    """Small uint8 grey thumbnail for near-duplicate detection (about 1 kB per frame)."""
    g = to_grey(grey)
    h, w = g.shape
    return cv2.resize(g, fit_size(w, h, THUMB_SIZE), interpolation=cv2.INTER_AREA)


def frame_stats(grey: np.ndarray) -> tuple[float, np.ndarray]:
    """(sharpness, thumbnail) of one frame: all the first pass over a video keeps."""
    return sharpness(grey), thumbnail(grey)


def thumb_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two uint8 thumbnails, in [0, 1]."""
    return float(cv2.absdiff(a, b).mean()) / 255.0


def relative_sharpness(sharp: np.ndarray, window: int = BLUR_WINDOW) -> np.ndarray:
    """Sharpness over its running median across ``window`` neighbouring frames.

    The focus measure also grows with how much texture the view holds, so a
    stretch of video looking at a plain wall would rank as "blurry" next to a
    textured one. Blur shows as a dip below the neighbouring frames instead.
    """
    from scipy.ndimage import median_filter

    sharp = np.asarray(sharp, dtype=np.float64)
    if len(sharp) == 0:
        return sharp
    local = median_filter(sharp, size=min(window, len(sharp)), mode="nearest")
    return sharp / np.maximum(local, 1e-12)


def drop_blurry(sharp: np.ndarray, fraction: float) -> np.ndarray:
    """Boolean keep-mask dropping the ``fraction`` of frames that are blurriest against their neighbours."""
    rel = relative_sharpness(sharp)
    keep = np.ones(len(rel), dtype=bool)
    n_drop = min(int(np.floor(fraction * len(rel))), len(rel) - 1)
    if n_drop > 0:
        keep[np.argsort(rel, kind="stable")[:n_drop]] = False
    return keep


def time_bins(candidates: np.ndarray, n_total: int, n_bins: int) -> np.ndarray:
    """Bin of each candidate frame index when ``n_total`` frames are cut into ``n_bins`` equal bins.

    With no more candidates than bins every candidate gets its own bin.
    """
    candidates = np.asarray(candidates, dtype=np.int64)
    if len(candidates) <= n_bins:
        return np.arange(len(candidates))
    return np.minimum((candidates * n_bins) // max(n_total, 1), n_bins - 1)


def select_frames(sharp: np.ndarray, thumbs: list[np.ndarray], cfg: CaptureConfig) -> np.ndarray:
    """Indices (increasing) of the frames to keep, given per-frame sharpness and thumbnails.

    Drops the blurriest ``cfg.blur_drop`` fraction, cuts the time line into
    ``cfg.max_frames`` equal bins and, bin after bin, keeps the sharpest frame
    that is not a near-duplicate of the last kept one (thumbnail difference
    below ``cfg.dedup_threshold``, as when the camera pauses). A bin whose
    frames are all blurry or duplicates keeps nothing.
    """
    sharp = np.asarray(sharp, dtype=np.float64)
    if len(sharp) != len(thumbs):
        raise ValueError(f"{len(sharp)} sharpness values for {len(thumbs)} thumbnails")
    if len(sharp) == 0:
        return np.zeros(0, dtype=np.int64)
    candidates = np.flatnonzero(drop_blurry(sharp, cfg.blur_drop))
    bins = time_bins(candidates, len(sharp), cfg.max_frames)
    picks: list[int] = []
    for b in np.unique(bins):
        in_bin = candidates[bins == b]
        for i in in_bin[np.argsort(-sharp[in_bin], kind="stable")]:
            if not picks or thumb_difference(thumbs[i], thumbs[picks[-1]]) >= cfg.dedup_threshold:
                picks.append(int(i))
                break
    return np.asarray(picks, dtype=np.int64)
