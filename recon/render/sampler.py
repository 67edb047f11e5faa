"""Samples along rays: fixed steps inside the cube, kept only in occupied cells (``recon.ops.march_rays``)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..ops import march_rays
from ..ops.ray_march import ray_indices
from .occupancy import OccupancyGrid
from .rays import RayBundle, ray_aabb


@dataclass(frozen=True)
class RaySamples:
    """S samples packed ray by ray: packed (R, 2) [first, count]; per sample t range, ray index, point, dir."""

    packed: Tensor
    t_starts: Tensor
    t_ends: Tensor
    ray_idx: Tensor
    positions: Tensor
    dirs: Tensor
    frame: Tensor | None

    def __len__(self) -> int:
        return self.t_starts.shape[0]

    @property
    def deltas(self) -> Tensor:
        return self.t_ends - self.t_starts

    @property
    def t_mid(self) -> Tensor:
        return 0.5 * (self.t_starts + self.t_ends)


def march_step(bound: float, samples_per_ray: int) -> float:
    """Step so that ``samples_per_ray`` steps span the cube's diagonal."""
    return 2.0 * 3 ** 0.5 * bound / samples_per_ray


def sample_rays(rays: RayBundle, grid: OccupancyGrid, step: float, max_steps: int, jitter: bool,
                generator: torch.Generator | None = None) -> RaySamples:
    """March ``rays`` through ``grid`` with ``step``; jitter the start offset per ray when training."""
    near, far = ray_aabb(rays.origins, rays.dirs, grid.bound)
    off = torch.rand(len(rays), device=near.device, generator=generator) if jitter else None
    packed, t0, t1 = march_rays(rays.origins, rays.dirs, near, far, grid.binary, grid.bound, step, max_steps, off)
    rid = ray_indices(packed, t0.shape[0])
    mid = 0.5 * (t0 + t1)
    d = rays.dirs[rid]
    pos = rays.origins[rid] + d * mid[:, None]
    return RaySamples(packed, t0, t1, rid, pos, d, None if rays.frame is None else rays.frame[rid])
