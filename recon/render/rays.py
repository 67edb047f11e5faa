"""Rays from ``Cameras`` (OpenCV pinhole + k1 k2 p1 p2 k3 distortion), batched in torch.

Pixel (i, j) has its centre at (i + 0.5, j + 0.5). A distorted pixel maps to
normalised coordinates by inverting the OpenCV distortion model with a few
fixed-point iterations (as OpenCV's ``undistortPoints`` does).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..core.types import Cameras

UNDISTORT_ITERS = 10


@dataclass(frozen=True)
class CameraTensors:
    """Cameras as float32 tensors on one device: c2w (N, 4, 4), K rows, dist (N, 5), sizes (N, 2)."""

    c2w: Tensor
    fx: Tensor
    fy: Tensor
    cx: Tensor
    cy: Tensor
    dist: Tensor
    wh: Tensor
    has_distortion: bool

    @staticmethod
    def from_cameras(cams: Cameras, device: torch.device | str = "cpu") -> "CameraTensors":
        f = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32, device=device)  # noqa: E731
        return CameraTensors(f(cams.c2w), f(cams.fx), f(cams.fy), f(cams.cx), f(cams.cy), f(cams.dist),
                             torch.as_tensor(np.stack([cams.width, cams.height], -1), device=device),
                             cams.has_distortion)

    def __len__(self) -> int:
        return self.c2w.shape[0]


@dataclass(frozen=True)
class RayBundle:
    """R rays: origins (R, 3), unit directions (R, 3), frame index (R,) for appearance codes or None."""

    origins: Tensor
    dirs: Tensor
    frame: Tensor | None = None

    def __len__(self) -> int:
        return self.origins.shape[0]

    def __getitem__(self, s: slice) -> "RayBundle":
        return RayBundle(self.origins[s], self.dirs[s], None if self.frame is None else self.frame[s])


def distort(x: Tensor, y: Tensor, dist: Tensor) -> tuple[Tensor, Tensor]:
    """OpenCV model on normalised coordinates; dist (…, 5) = k1 k2 p1 p2 k3 broadcast with x, y."""
    k1, k2, p1, p2, k3 = dist.unbind(-1)
    r2 = x * x + y * y
    radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return xd, yd


def undistort(xd: Tensor, yd: Tensor, dist: Tensor, iters: int = UNDISTORT_ITERS) -> tuple[Tensor, Tensor]:
    """Invert ``distort`` by fixed-point iteration: x <- (xd - tangential(x)) / radial(x)."""
    k1, k2, p1, p2, k3 = dist.unbind(-1)
    x, y = xd, yd
    for _ in range(iters):
        r2 = x * x + y * y
        radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
        dx = 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
        dy = p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
        x, y = (xd - dx) / radial, (yd - dy) / radial
    return x, y


def pixel_rays(cams: CameraTensors, cam_idx: Tensor, px: Tensor, py: Tensor,
               frame: Tensor | None = None) -> RayBundle:
    """Rays through pixel positions (px, py) (float, pixel units, centres at +0.5) of cameras cam_idx (R,)."""
    x = (px - cams.cx[cam_idx]) / cams.fx[cam_idx]
    y = (py - cams.cy[cam_idx]) / cams.fy[cam_idx]
    if cams.has_distortion:
        x, y = undistort(x, y, cams.dist[cam_idx])
    d_cam = torch.stack([x, y, torch.ones_like(x)], dim=-1)
    c2w = cams.c2w[cam_idx]
    d = torch.einsum("rij,rj->ri", c2w[:, :3, :3], d_cam)
    d = d / d.norm(dim=-1, keepdim=True)
    return RayBundle(c2w[:, :3, 3].contiguous(), d, frame)


def image_rays(cams: CameraTensors, i: int, frame: int | None = None) -> RayBundle:
    """All H*W rays of camera i, row-major (pixel (row v, column u) -> index v*W + u)."""
    w, h = (int(v) for v in cams.wh[i])
    v, u = torch.meshgrid(torch.arange(h, device=cams.c2w.device), torch.arange(w, device=cams.c2w.device),
                          indexing="ij")
    idx = torch.full((h * w,), i, dtype=torch.long, device=cams.c2w.device)
    fr = None if frame is None else torch.full_like(idx, frame)
    return pixel_rays(cams, idx, u.reshape(-1).float() + 0.5, v.reshape(-1).float() + 0.5, fr)


def project(cams: CameraTensors, cam_idx: Tensor, pts: Tensor) -> tuple[Tensor, Tensor]:
    """Project world points (R, 3) into cameras cam_idx (R,) with distortion -> pixels (R, 2), depth (R,)."""
    c2w = cams.c2w[cam_idx]
    pc = torch.einsum("rji,rj->ri", c2w[:, :3, :3], pts - c2w[:, :3, 3])  # R^T (p - t)
    z = pc[:, 2]
    x, y = pc[:, 0] / z, pc[:, 1] / z
    if cams.has_distortion:
        x, y = distort(x, y, cams.dist[cam_idx])
    return torch.stack([x * cams.fx[cam_idx] + cams.cx[cam_idx], y * cams.fy[cam_idx] + cams.cy[cam_idx]], -1), z


def ray_aabb(origins: Tensor, dirs: Tensor, bound: float) -> tuple[Tensor, Tensor]:
    """Entry and exit distances of rays through the cube [-bound, bound]^3 (far <= near: a miss)."""
    inv = 1.0 / torch.where(dirs.abs() < 1e-9, torch.full_like(dirs, 1e-9), dirs)
    t0 = (-bound - origins) * inv
    t1 = (bound - origins) * inv
    near = torch.minimum(t0, t1).amax(dim=-1).clamp_min(0.0)
    far = torch.maximum(t0, t1).amin(dim=-1)
    return near, far
