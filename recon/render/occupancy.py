"""Occupancy grid: which cells of [-bound, bound]^3 may hold matter, to skip empty space.

Each cell keeps an EMA (decayed max, as instant-ngp) of the field's opacity
over one marching step; a cell is occupied when that value exceeds
``threshold`` (during warm-up every cell is kept, so a young field is not pruned away). Updates evaluate a random subset of cells (all cells
during warm-up) at a jittered point inside each. When masks exist, the grid is
first carved to the masks' visual hull: a cell that projects outside the
subject's silhouette (by more than its own projected radius) in some view can
hold nothing, and is never evaluated or marched again.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import Tensor, nn


class OccupancyGrid(nn.Module):
    """A (G, G, G) grid indexed [x, y, z] over [-bound, bound]^3."""

    def __init__(self, resolution: int = 128, bound: float = 1.0, threshold: float = 0.01, ema: float = 0.95):
        super().__init__()
        G = resolution
        self.resolution, self.bound, self.threshold, self.ema = G, float(bound), float(threshold), float(ema)
        self.register_buffer("values", torch.full((G, G, G), 1e3))  # optimistic: all occupied at first
        self.register_buffer("hull", torch.ones(G, G, G, dtype=torch.bool))
        self.register_buffer("binary", torch.ones(G, G, G, dtype=torch.bool))

    @property
    def cell_size(self) -> float:
        return 2.0 * self.bound / self.resolution

    def cell_centers(self, flat_idx: Tensor) -> Tensor:
        """(M,) flat cell indices -> (M, 3) world cell centres."""
        G = self.resolution
        ijk = torch.stack([flat_idx // (G * G), (flat_idx // G) % G, flat_idx % G], dim=-1)
        return (ijk.float() + 0.5) * self.cell_size - self.bound

    @torch.no_grad()
    def update(self, opacity_fn: Callable[[Tensor], Tensor], n_cells: int | None = None,
               chunk: int = 65536, generator: torch.Generator | None = None, prune: bool = True) -> None:
        """Refresh ``n_cells`` cells of the hull (all when None) with ``opacity_fn(x)`` in [0, 1].

        Cells never evaluated yet keep an "unknown" value (1e3) and stay occupied. With
        ``prune=False`` (warm-up) the values are refreshed but every hull cell stays occupied.
        """
        dev = self.values.device
        cand = torch.nonzero(self.hull.view(-1)).squeeze(1)
        if n_cells is not None and n_cells < cand.numel():
            # half uniform over the hull, half among cells currently occupied (as instant-ngp)
            occ = torch.nonzero(self.binary.view(-1)).squeeze(1)
            n_occ = min(n_cells // 2, occ.numel())
            pick = [cand[torch.randint(cand.numel(), (n_cells - n_occ,), device=dev, generator=generator)]]
            if n_occ:
                pick.append(occ[torch.randint(occ.numel(), (n_occ,), device=dev, generator=generator)])
            cand = torch.cat(pick)
        vals = self.values.view(-1)
        for s in range(0, cand.numel(), chunk):
            idx = cand[s:s + chunk]
            jitter = (torch.rand(idx.numel(), 3, device=dev, generator=generator) - 0.5) * self.cell_size
            new = opacity_fn(self.cell_centers(idx) + jitter).float()
            old = vals[idx]
            vals[idx] = torch.where(old >= 1e3, new, torch.maximum(old * self.ema, new))
        vals.masked_fill_(~self.hull.view(-1), 0.0)
        if not prune:
            self.binary.copy_(self.hull)
            return
        self.binary.copy_((self.values > self.threshold) & self.hull)

    def hull_shell(self, width: int = 3) -> Tensor:
        """Flat indices of the cells outside the hull but within ``width`` cells of it (known-empty space)."""
        h = self.hull[None, None].float()
        grown = torch.nn.functional.max_pool3d(h, 2 * width + 1, 1, width)[0, 0].bool()
        return torch.nonzero((grown & ~self.hull).view(-1)).squeeze(1)

    @torch.no_grad()
    def carve_visual_hull(self, cams, masks: list[np.ndarray], chunk: int = 1 << 18) -> float:
        """Keep only cells inside every mask's silhouette that at least ``min(2, views)`` views see.

        A cell outside an image is not carved by that view; a cell that (almost) no view sees is
        unconstrained, and hash collisions would let the field fill it (slabs above and below a
        subject filmed from one height), so it goes too.
        cams: render.rays.CameraTensors of the masked views; masks: (H, W) uint8/bool per view.
        Returns the fraction of cells kept.
        """
        from scipy.ndimage import distance_transform_edt

        from .rays import project

        G = self.resolution
        dev = self.values.device
        keep = torch.ones(G ** 3, dtype=torch.bool, device=dev)
        seen = torch.zeros(G ** 3, dtype=torch.int32, device=dev)
        half_diag = 0.5 * self.cell_size * 3 ** 0.5
        for v, m in enumerate(masks):
            m = np.asarray(m) > (127 if np.asarray(m).dtype == np.uint8 else 0.5)
            if m.all():
                continue
            # distance (pixels) from each pixel to the nearest subject pixel
            dist = torch.as_tensor(distance_transform_edt(~m), dtype=torch.float32, device=dev)
            H, W = m.shape
            for s in range(0, G ** 3, chunk):
                idx = torch.arange(s, min(s + chunk, G ** 3), device=dev)
                idx = idx[keep[idx]]
                if idx.numel() == 0:
                    continue
                pts = self.cell_centers(idx)
                uv, z = project(cams, torch.full_like(idx, v), pts)
                u, w = uv[:, 0].floor().long(), uv[:, 1].floor().long()
                inside = (z > 1e-6) & (u >= 0) & (u < W) & (w >= 0) & (w < H)
                radius = cams.fx[v] * half_diag / z.clamp_min(1e-6) + 1.0
                d = torch.zeros_like(z)
                d[inside] = dist[w[inside], u[inside]]
                keep[idx[inside & (d > radius)]] = False
                seen[idx[inside]] += 1
        keep &= seen >= min(2, len(masks))
        self.hull.copy_(keep.view(G, G, G))
        self.binary &= self.hull
        self.values.view(-1).masked_fill_(~keep, 0.0)
        return float(keep.float().mean())
