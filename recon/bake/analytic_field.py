"""Analytic surface fields with a colour pattern: exact answers for testing the baker.

Each shape's ``sdf`` is an exact signed distance (so ``|sdf(x)|`` is the distance of
any point to the true surface) and ``albedo`` a smooth 3D colour pattern, both in
normalised coordinates (the subject inside the unit sphere).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


@dataclass(frozen=True)
class AnalyticField:
    """A sphere, torus or rounded box with a sinusoidal colour pattern.

    shape: "sphere" (radius ``size[0]``), "torus" (major ``size[0]``, minor ``size[1]``,
        axis z), "rounded_box" (half extents ``size[:3]`` including the rounding ``size[3]``).
    frequency: spatial frequency of the colour pattern (radians per normalised unit).
    """

    shape: str = "torus"
    size: tuple[float, ...] = (0.55, 0.22)
    frequency: float = 5.0

    def sdf(self, x: Tensor) -> Tensor:
        if self.shape == "sphere":
            return x.norm(dim=-1) - self.size[0]
        if self.shape == "torus":
            R, r = self.size[:2]
            q = torch.stack([x[:, :2].norm(dim=-1) - R, x[:, 2]], -1)
            return q.norm(dim=-1) - r
        if self.shape == "rounded_box":
            half = x.new_tensor(self.size[:3])
            rad = self.size[3]
            q = x.abs() - (half - rad)
            outside = q.clamp(min=0).norm(dim=-1)
            inside = q.max(dim=-1).values.clamp(max=0)
            return outside + inside - rad
        raise ValueError(f"unknown analytic shape '{self.shape}'")

    def albedo(self, x: Tensor) -> Tensor:
        f = self.frequency
        r = 0.5 + 0.4 * torch.sin(f * x[:, 0] + 0.3)
        g = 0.5 + 0.4 * torch.sin(f * x[:, 1] + 1.7 * torch.cos(f * 0.5 * x[:, 2]))
        b = 0.5 + 0.4 * torch.cos(f * (x[:, 2] + 0.5 * x[:, 0]))
        return torch.stack([r, g, b], -1)

    def surface_points(self, n: int, seed: int = 0) -> np.ndarray:
        """``n`` points on the surface (normalised coordinates).

        Uniform by area for the sphere and the torus (parametric sampling); for the
        rounded box, random points pulled onto the level set by exact-SDF Newton steps
        ``x <- x - sdf(x) * grad`` (spread over all of it, not uniformly).
        """
        rng = np.random.default_rng(seed)
        if self.shape == "sphere":
            d = rng.normal(size=(n, 3))
            return self.size[0] * d / np.linalg.norm(d, axis=1, keepdims=True)
        if self.shape == "torus":
            R, r = self.size[:2]
            theta = rng.uniform(0, 2 * np.pi, n)
            # the minor angle has density proportional to the circle's radius R + r cos(phi)
            phi = np.empty(0)
            while len(phi) < n:
                cand = rng.uniform(0, 2 * np.pi, 2 * n)
                phi = np.concatenate([phi, cand[rng.uniform(0, R + r, 2 * n) < R + r * np.cos(cand)]])
            phi = phi[:n]
            rho = R + r * np.cos(phi)
            return np.stack([rho * np.cos(theta), rho * np.sin(theta), r * np.sin(phi)], -1)
        x = torch.as_tensor(rng.uniform(-0.9, 0.9, (n, 3)))
        for _ in range(4):
            x.requires_grad_(True)
            d = self.sdf(x)
            (grad,) = torch.autograd.grad(d.sum(), x)
            x = (x - d[:, None] * grad / grad.norm(dim=-1, keepdim=True).clamp(min=1e-9)).detach()
        return x.numpy()

    @property
    def area(self) -> float:
        """Exact surface area (normalised units)."""
        if self.shape == "sphere":
            return 4 * math.pi * self.size[0] ** 2
        if self.shape == "torus":
            return 4 * math.pi ** 2 * self.size[0] * self.size[1]
        hx, hy, hz, rad = self.size
        a, b, c = 2 * (hx - rad), 2 * (hy - rad), 2 * (hz - rad)
        return 2 * (a * b + b * c + a * c) + 2 * math.pi * rad * (a + b + c) + 4 * math.pi * rad ** 2
