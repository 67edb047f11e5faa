"""What every radiance field offers the renderer and, later, the mesh baker.

World points live in the cube [-bound, bound]^3 (the capture is normalised to
the unit sphere); the hash grid sees them mapped to [0, 1]^3.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class TruncExp(torch.autograd.Function):
    """exp(x) whose backward clamps x so a large pre-activation cannot blow up the gradient."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.exp(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * torch.exp(x.clamp(max=15.0))


def trunc_exp(x: Tensor) -> Tensor:
    return TruncExp.apply(x)


def fibonacci_directions(n: int) -> Tensor:
    """n roughly uniform unit directions on the sphere (n, 3)."""
    i = torch.arange(n, dtype=torch.float32) + 0.5
    phi = torch.acos(1 - 2 * i / n)
    theta = math.pi * (1 + 5 ** 0.5) * i
    return torch.stack([torch.cos(theta) * torch.sin(phi), torch.sin(theta) * torch.sin(phi), torch.cos(phi)], -1)


class Field(nn.Module):
    """Base class: geometry + view-dependent colour on a hash grid.

    Subclasses implement ``density(x)`` (and ``sdf(x)`` for SDF fields) and
    ``color(x, d, frame)``. ``normalization`` (4x4, original -> normalised
    world) is stored so a baker can write meshes in the capture's units.
    """

    kind: str = "field"

    def __init__(self, bound: float):
        super().__init__()
        self.bound = float(bound)
        self.register_buffer("normalization", torch.eye(4, dtype=torch.float64))

    def to_unit(self, x: Tensor) -> Tensor:
        """World (N, 3) -> hash-grid coordinates in [0, 1]^3."""
        return (x / self.bound + 1.0) * 0.5

    def density(self, x: Tensor) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def color(self, x: Tensor, d: Tensor, frame: Tensor | None = None) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    @torch.no_grad()
    def diffuse_color(self, x: Tensor, n_dirs: int = 12) -> Tensor:
        """View-independent ("albedo-ish") colour: the mean colour over ``n_dirs`` view directions."""
        dirs = fibonacci_directions(n_dirs).to(x)
        acc = torch.zeros_like(x)
        for d in dirs:
            acc += self.color(x, d.expand_as(x))
        return acc / n_dirs
