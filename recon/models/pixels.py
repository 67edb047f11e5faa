"""Training pixels of a capture as flat tensors, built once; random ray batches drawn from them.

Rays are computed per batch from the cameras (cheap, vectorised), so memory
stays at a few bytes per pixel: colour (uint8), alpha (uint8), frame (int32)
and pixel coordinates (int16).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..core.types import Capture
from ..render.rays import CameraTensors, RayBundle, pixel_rays


def detect_mask_mode(cap: Capture, n_check: int = 4) -> str:
    """How masks enter the loss.

    "composite": synthetic / RGBA data whose background is clean (outside the mask,
    nearly every pixel has one colour, e.g. the zeros of a transparent PNG):
    targets are composited over a background, and so are renders.
    "weight": real photos with masks: colour loss only inside the mask.
    "none": no masks.
    """
    if cap.masks is None:
        return "none"
    for i in np.linspace(0, len(cap) - 1, min(n_check, len(cap))).astype(int):
        out = cap.images[i][cap.masks[i] < 128].astype(np.int16)
        if len(out) == 0:
            continue
        ref = np.median(out, axis=0)
        if (np.abs(out - ref).max(axis=1) <= 2).mean() < 0.9:
            return "weight"
    return "composite"


@dataclass
class Batch:
    rays: RayBundle
    rgb: Tensor  # (B, 3) float in [0, 1]
    alpha: Tensor | None  # (B,) float in [0, 1]


class PixelSet:
    """All pixels of some frames of a capture, flattened."""

    def __init__(self, cap: Capture, indices: np.ndarray, device: torch.device | str = "cpu"):
        self.indices = np.asarray(indices, dtype=np.int64)
        self.cams = CameraTensors.from_cameras(cap.cameras[self.indices], device)
        rgb, alpha, frame, px, py = [], [], [], [], []
        for k, i in enumerate(self.indices):
            img = cap.images[i]
            h, w = img.shape[:2]
            rgb.append(torch.from_numpy(np.array(img.reshape(-1, 3))))
            if cap.masks is not None:
                alpha.append(torch.from_numpy(np.array(cap.masks[i].reshape(-1))))
            frame.append(torch.full((h * w,), k, dtype=torch.int32))
            yy, xx = np.mgrid[:h, :w]
            px.append(torch.from_numpy(xx.reshape(-1).astype(np.int16)))
            py.append(torch.from_numpy(yy.reshape(-1).astype(np.int16)))
        self.rgb = torch.cat(rgb).to(device)
        self.alpha = torch.cat(alpha).to(device) if alpha else None
        self.frame = torch.cat(frame).to(device)
        self.px, self.py = torch.cat(px).to(device), torch.cat(py).to(device)

    def __len__(self) -> int:
        return self.rgb.shape[0]

    def sample(self, n: int, generator: torch.Generator | None = None) -> Batch:
        """n random pixels (with replacement); rays go through pixel centres, as evaluation renders them."""
        idx = torch.randint(len(self), (n,), device=self.rgb.device, generator=generator)
        return self.gather(idx)

    def gather(self, idx: Tensor) -> Batch:
        fr = self.frame[idx].long()
        rays = pixel_rays(self.cams, fr, self.px[idx].float() + 0.5, self.py[idx].float() + 0.5, fr)
        rgb = self.rgb[idx].float() / 255.0
        alpha = None if self.alpha is None else self.alpha[idx].float() / 255.0
        return Batch(rays, rgb, alpha)
