"""Undistorted copies of a capture's photos, for the renderers that only know pinhole cameras.

The field's rays handle lens distortion themselves (``recon.render.rays``); the mesh
rasterizer (bake refinement, held-out scoring, previews) does not. ``undistort_capture``
resamples every photo and mask with OpenCV onto the same pinhole intrinsics without the
distortion, so the baked mesh is fitted and scored against photos it can reproduce.
Pixels the original frame did not cover repeat its border.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..core.types import Capture


def undistort_capture(cap: Capture) -> Capture:
    """``cap`` with undistorted images and masks and zero distortion (unchanged when it has none)."""
    import cv2

    cams = cap.cameras
    if cams is None or not cams.has_distortion:
        return cap
    maps: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}
    images, masks = [], None if cap.masks is None else []
    for i in range(len(cap)):
        K, d = cams.K[i].copy(), cams.dist[i]
        K[:2, 2] -= 0.5  # OpenCV's pixel centres are at integers, recon's at integer + 0.5
        w, h = int(cams.width[i]), int(cams.height[i])
        key = np.concatenate([K.ravel(), d, [w, h]]).tobytes()
        if key not in maps:
            maps[key] = cv2.initUndistortRectifyMap(K, d, None, K, (w, h), cv2.CV_32FC1)
        mx, my = maps[key]
        images.append(cv2.remap(cap.images[i], mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
        if masks is not None:
            m = cv2.remap(cap.masks[i], mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            masks.append(np.where(m >= 128, 255, 0).astype(np.uint8))
    return replace(cap, images=images, masks=masks, cameras=replace(cams, dist=np.zeros_like(cams.dist)),
                   meta={**cap.meta, "undistorted": True})
