"""Occupancy-grid ray marching: fixed-step samples kept only in occupied cells.

Ray r is sampled at ``t_k = near_r + (k + offset_r) * step`` for k = 0,1,… while
``t_k < far_r`` and ``k < max_steps``; the sample spans [t_k, t_k + step] and is
kept when its midpoint lies inside the cube [-bound, bound]^3 in an occupied
cell of the (G, G, G) grid (indexed [x, y, z]). Samples are packed ray by ray.
"""
from __future__ import annotations

import torch
from torch import Tensor


def march_rays_torch(origins: Tensor, dirs: Tensor, near: Tensor, far: Tensor, occupancy: Tensor,
                     bound: float, step: float, max_steps: int,
                     offsets: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Reference marcher.

    origins, dirs: (R, 3); near, far: (R,); occupancy: (G, G, G) bool;
    offsets: (R,) jitter in [0, 1) or None (0).
    Returns packed (R, 2) int64 [first sample, count], t_starts (S,), t_ends (S,).
    """
    R = origins.shape[0]
    G = occupancy.shape[0]
    off = origins.new_zeros(R) if offsets is None else offsets
    k = torch.arange(max_steps, device=origins.device, dtype=origins.dtype)
    t0 = near[:, None] + (k[None, :] + off[:, None]) * step  # (R, K)
    mid = t0 + 0.5 * step
    pts = origins[:, None, :] + dirs[:, None, :] * mid[..., None]
    inside = (pts.abs() < bound).all(dim=-1) & (t0 < far[:, None])
    cell = ((pts + bound) / (2 * bound) * G).floor().long().clamp(0, G - 1)
    occ = occupancy[cell[..., 0], cell[..., 1], cell[..., 2]]
    keep = inside & occ
    counts = keep.sum(dim=1)
    starts = torch.cumsum(counts, 0) - counts
    packed = torch.stack([starts, counts], dim=-1).long()
    t_starts = t0[keep]
    return packed, t_starts, t_starts + step


def march_rays(origins: Tensor, dirs: Tensor, near: Tensor, far: Tensor, occupancy: Tensor,
               bound: float, step: float, max_steps: int,
               offsets: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """March rays with the active backend (see ``march_rays_torch`` for the contract)."""
    from .backend import get_kernel

    kernel = get_kernel("march_rays", origins.device)
    if kernel is None:
        return march_rays_torch(origins, dirs, near, far, occupancy, bound, step, max_steps, offsets)
    return kernel(origins, dirs, near, far, occupancy, bound, step, max_steps, offsets)


def ray_indices(packed: Tensor, n_samples: int) -> Tensor:
    """(S,) ray index of every packed sample."""
    return torch.repeat_interleave(torch.arange(packed.shape[0], device=packed.device), packed[:, 1],
                                   output_size=n_samples)
