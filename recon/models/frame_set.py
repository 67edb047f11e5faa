"""Whole training frames at a small size, for models that render full images (rasterized meshes).

Each frame keeps its photo composited over white with its mask (the subject alone), the mask
as coverage in [0, 1], the mask's outline (points on it, and the distance to the mask outside
it), its camera scaled to the size, its instant slot, and the optical flow to the next frame of
the clip (OpenCV DIS, checked forward against backward) where there is one.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..capture.frame_files import resize_image
from ..core.types import Capture
from ..render.rays import CameraTensors


def mask_outline(mask: np.ndarray, count: int = 256, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Points on the outline of ``mask`` ((H, W) coverage; (P <= count, 2) pixel coordinates, centres at
    +0.5, evenly subsampled) and the distance (H, W), in pixels, from each pixel to the mask (0 inside)."""
    import cv2

    inside = (mask > 0.5).astype(np.uint8)
    contours, _ = cv2.findContours(inside, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    pts = np.concatenate([c[:, 0, :] for c in contours], 0).astype(np.float32) + 0.5 if contours \
        else np.zeros((0, 2), np.float32)
    if len(pts) > count:
        pts = pts[np.random.default_rng(seed).choice(len(pts), count, replace=False)]
    outside = cv2.distanceTransform(1 - inside, cv2.DIST_L2, 3) if inside.any() else np.zeros(mask.shape, np.float32)
    return pts, outside.astype(np.float32)


def dis_flow(a: np.ndarray, b: np.ndarray, max_error: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """DIS optical flow a -> b ((H, W, 2) pixels) and where it is trustworthy (forward-backward error
    below ``max_error`` pixels), for (H, W, 3) uint8 images."""
    import cv2

    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    ga, gb = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY), cv2.cvtColor(b, cv2.COLOR_RGB2GRAY)
    fwd = dis.calc(ga, gb, None)
    bwd = dis.calc(gb, ga, None)
    H, W = ga.shape
    yy, xx = np.mgrid[:H, :W].astype(np.float32)
    back = cv2.remap(bwd, xx + fwd[..., 0], yy + fwd[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                     borderValue=1e4)
    ok = np.linalg.norm(fwd + back, axis=-1) < max_error
    return fwd, ok


class FrameSet:
    """Frames ``indices`` of a capture at ``long_side`` pixels (the longer image side).

    photo: list of (H, W, 3) float tensors over white; mask: list of (H, W) float; cams: their
    scaled cameras; slot: (N,) instant slot of each frame; next: (N,) the frame of the next
    instant of the clip (-1 at the end or across a gap larger than ``max_gap`` instants);
    flow/flow_ok: (H, W, 2) / (H, W) DIS flow towards ``next`` (None where next is -1);
    outline/outside: ``mask_outline`` per frame, as tensors.
    """

    def __init__(self, cap: Capture, indices: np.ndarray, slots: np.ndarray, instants: np.ndarray,
                 long_side: int, max_gap: int = 6, flow: bool = True):
        self.indices = np.asarray(indices, np.int64)
        self.slot = np.asarray(slots, np.int64)
        h0, w0 = cap.images[self.indices[0]].shape[:2]
        scale = min(1.0, long_side / max(h0, w0))
        self.cams_np = cap.cameras[self.indices].scaled(scale)
        self.cams = CameraTensors.from_cameras(self.cams_np, "cpu")
        size = (int(self.cams_np.width[0]), int(self.cams_np.height[0]))
        self.photo, self.mask, self.outline, self.outside, small = [], [], [], [], []
        for i in self.indices:
            img = resize_image(cap.images[i], size)
            m = resize_image(cap.masks[i], size).astype(np.float32) / 255.0  # coverage, not thresholded
            small.append(img)
            rgb = img.astype(np.float32) / 255.0
            self.photo.append(torch.from_numpy(rgb * m[..., None] + (1.0 - m[..., None])))
            self.mask.append(torch.from_numpy(m))
            pts, dist = mask_outline(m)
            self.outline.append(torch.from_numpy(pts))
            self.outside.append(torch.from_numpy(dist))
        inst = np.asarray(instants, np.int64)[self.indices]
        order = np.argsort(inst, kind="stable")
        self.next = np.full(len(self.indices), -1, np.int64)
        for a, b in zip(order[:-1], order[1:]):
            if 0 < inst[b] - inst[a] <= max_gap:
                self.next[a] = b
        self.flow: list[Tensor | None] = [None] * len(self.indices)
        self.flow_ok: list[Tensor | None] = [None] * len(self.indices)
        if flow:
            for a in np.nonzero(self.next >= 0)[0]:
                f, ok = dis_flow(small[a], small[self.next[a]])
                self.flow[a] = torch.from_numpy(f)
                self.flow_ok[a] = torch.from_numpy(ok & (self.mask[a].numpy() > 0.5))

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the frames."""
        return tuple(self.mask[0].shape)
