"""A deterministic, colourful, high-frequency 3D colour pattern for meshes without a texture.

Structure-from-motion needs corners and blobs, photometric fitting needs colour
that varies everywhere. The pattern is a function of the 3D surface point (so it
needs no UVs and is as sharp as the image, whatever the mesh resolution),
evaluated in the mesh's bounding ball mapped to the unit ball:

* a mosaic of saturated random colours on a coarse 3D grid of cells,
* each cell's brightness modulated by a finer grid of cells (edges and corners at
  two scales),
* thin dark sinusoidal contour lines (curved edges, texture inside large cells),
* a few dozen coloured balls with hard borders (blobs that SIFT likes).

Random values come from an integer hash of (cell, seed), so the same seed gives
the same colours on every machine.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

_M32 = 0xFFFFFFFF


def _hash(ijk: Tensor, salt: int) -> Tensor:
    """(…, 3) int64 lattice coordinates -> (…,) float in [0, 1), a different stream per ``salt``."""
    h = (ijk[..., 0] * 0x8DA6B343) ^ (ijk[..., 1] * 0xD8163841) ^ (ijk[..., 2] * 0xCB1AB31F)
    h = (h ^ ((salt * 0x9E3779B1) & _M32)) & _M32
    # murmur3 finaliser: every input bit affects every output bit
    h = h ^ (h >> 16)
    h = (h * 0x85EBCA6B) & _M32
    h = h ^ (h >> 13)
    h = (h * 0xC2B2AE35) & _M32
    h = h ^ (h >> 16)
    return h.double().div(2.0 ** 32).float()


def _hsv_to_rgb(h: Tensor, s: Tensor, v: Tensor) -> Tensor:
    """Hue, saturation, value in [0, 1] (…,) -> (…, 3) RGB."""
    k = torch.stack([(5.0 + h * 6.0) % 6.0, (3.0 + h * 6.0) % 6.0, (1.0 + h * 6.0) % 6.0], -1)
    f = (torch.minimum(k, 4.0 - k)).clamp(0.0, 1.0)
    return v[..., None] - (v * s)[..., None] * f


@dataclass(frozen=True)
class ProceduralTexture:
    """The pattern for a mesh whose bounding ball has ``center`` and ``radius``.

    Calling it maps world points (N, 3) to sRGB colours (N, 3) in [0, 1].
    """

    center: tuple[float, float, float]
    radius: float
    seed: int = 0
    mosaic_cells: float = 6.0  # cells per unit radius of the coarse colour mosaic
    detail_cells: float = 17.0  # cells per unit radius of the fine brightness grid
    n_balls: int = 48

    def __call__(self, points: Tensor) -> Tensor:
        q = (points - torch.as_tensor(self.center, dtype=points.dtype, device=points.device)) / self.radius
        q = q.float()
        s = int(self.seed) * 7919
        # coarse mosaic of saturated colours; cells are offset per seed so the grid is not axis-locked at 0
        c = torch.floor(q * self.mosaic_cells + 0.37).long()
        rgb = _hsv_to_rgb(_hash(c, s + 1), 0.55 + 0.45 * _hash(c, s + 2), 0.7 + 0.3 * _hash(c, s + 3))
        # finer cells modulate brightness
        d = torch.floor(q * self.detail_cells + 0.61).long()
        rgb = rgb * (0.45 + 0.55 * _hash(d, s + 4))[..., None]
        # thin dark contour lines of a sum of sinusoids
        g = torch.sin(9.1 * q[..., 0] + 3.0 * torch.sin(5.3 * q[..., 1])) + \
            torch.sin(8.3 * q[..., 1] + 2.1 * torch.sin(6.7 * q[..., 2])) + \
            torch.sin(10.3 * q[..., 2] + 2.7 * torch.sin(4.9 * q[..., 0]))
        line = (torch.sin(4.0 * g).abs() < 0.12).float()
        rgb = rgb * (1.0 - 0.8 * line[..., None])
        # coloured balls with hard borders, painted over everything
        rng = np.random.default_rng(int(self.seed) + 12345)
        centres = rng.normal(size=(self.n_balls, 3))
        centres *= (rng.uniform(0.2, 1.0, (self.n_balls, 1)) ** (1 / 3)) / np.linalg.norm(centres, axis=1, keepdims=True)
        radii = rng.uniform(0.05, 0.16, self.n_balls)
        colours = rng.uniform(0.0, 1.0, (self.n_balls, 3))
        colours[np.arange(self.n_balls), rng.integers(0, 3, self.n_balls)] = rng.uniform(0.85, 1.0, self.n_balls)
        dist = torch.cdist(q, torch.as_tensor(centres, dtype=q.dtype, device=q.device))  # (N, B)
        inside = dist < torch.as_tensor(radii, dtype=q.dtype, device=q.device)
        # the ball whose surface is nearest in relative terms wins where balls overlap
        rel = torch.where(inside, dist / torch.as_tensor(radii, dtype=q.dtype, device=q.device), 2.0)
        best, which = rel.min(-1)
        hit = best < 1.0
        col = torch.as_tensor(colours, dtype=q.dtype, device=q.device)[which]
        rgb = torch.where(hit[..., None], col * (1.0 - 0.35 * best[..., None] ** 4), rgb)
        return rgb.clamp(0.0, 1.0).to(points.dtype)
