"""A field's values on the vertices of a regular lattice, the input of marching cubes.

One sampler for every mesh extraction (the fit's evaluation and the baker):

- ``fn`` maps (N, 3) float32 points to (N,) values, negative inside (an SDF, or
  ``threshold - density``); the surface is the ``level`` set.
- The lattice has ``resolution`` samples per axis over [-bound, bound]^3, indexed
  ``[i, j, k] = fn(x_i, y_j, z_k)``; queries go in batches of ``chunk_points`` (fp32,
  no autograd), so a 512^3 grid needs only the grid itself in host memory.
- ``narrow_band`` (distance fields only): a coarse pass finds the blocks near the
  level set and only those are evaluated sample by sample.
- ``occupancy`` (the fit's occupancy grid, (G, G, G) bool over [-occupancy_bound,
  occupancy_bound]^3): samples that touch no occupied cell (dilated by one) are not
  evaluated and read as outside. Floaters the fit never rendered (outside the visual
  hull, in empty space) vanish; an SDF's unoccupied interior becomes an enclosed pocket,
  which ``marching_cubes`` fills.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import Tensor

ValueFn = Callable[[Tensor], Tensor]


def grid_coords(resolution: int, bound: float) -> np.ndarray:
    """(resolution,) sample positions along each axis, from -bound to bound inclusive."""
    return np.linspace(-bound, bound, resolution, dtype=np.float64)


def occupancy_mask(occupancy, occupancy_bound: float, resolution: int, bound: float) -> np.ndarray:
    """(R, R, R) bool: lattice samples inside a cell of ``occupancy`` dilated by one cell."""
    occ = torch.as_tensor(occupancy).detach().cpu().bool()
    G = occ.shape[0]
    dil = torch.nn.functional.max_pool3d(occ[None, None].float(), 3, 1, 1)[0, 0].bool().numpy()
    x = grid_coords(resolution, bound)
    cell = np.floor((x + occupancy_bound) / (2 * occupancy_bound) * G).astype(np.int64)
    inside = (cell >= 0) & (cell < G)
    cell = np.clip(cell, 0, G - 1)
    mask = dil[np.ix_(cell, cell, cell)]
    return mask & inside[:, None, None] & inside[None, :, None] & inside[None, None, :]


def _eval(fn: ValueFn, pts: Tensor, chunk_points: int) -> np.ndarray:
    if pts.shape[0] == 0:
        return np.zeros(0, np.float32)
    return torch.cat([fn(p).float().reshape(-1) for p in pts.split(chunk_points)]).cpu().numpy()


def _sample_lattice(fn: ValueFn, xs: Tensor, ys: Tensor, zs: Tensor, chunk_points: int,
                    active: np.ndarray | None = None, outside: float = 1.0) -> np.ndarray:
    """fn on the lattice xs x ys x zs as float32 (len(xs), len(ys), len(zs)), slab by slab along z.

    active: optional bool array of the same shape; other samples get ``outside``.
    """
    X, Y = len(xs), len(ys)
    out = np.full((X, Y, len(zs)), outside, dtype=np.float32)
    slab = max(1, chunk_points // (X * Y))
    for k0 in range(0, len(zs), slab):
        z = zs[k0:k0 + slab]
        sel = np.ones((X, Y, len(z)), bool) if active is None else active[:, :, k0:k0 + len(z)]
        ijk = np.nonzero(sel)
        if len(ijk[0]) == 0:
            continue
        dev = xs.device
        pts = torch.stack([xs[torch.as_tensor(ijk[0], device=dev)], ys[torch.as_tensor(ijk[1], device=dev)],
                           z[torch.as_tensor(ijk[2], device=dev)]], -1)
        out[ijk[0], ijk[1], ijk[2] + k0] = _eval(fn, pts, chunk_points)
    return out


def _narrow_band(fn: ValueFn, axis: Tensor, chunk_points: int, level: float, block: int, safety: float,
                 active: np.ndarray | None, outside: float) -> tuple[np.ndarray, float]:
    """The full lattice on ``axis``^3, evaluated exactly only in blocks near the level set.

    A coarse pass samples every ``block``-th point (all of them, so no surface is missed
    between inactive corners). A block is near when its corners change sign or one is
    within ``safety`` block diagonals of the level: for a distance field a surface in the
    block is closer than one diagonal to every corner (``safety`` allows for fields that
    are not exactly 1-Lipschitz). Far samples take the nearest coarse value, which has the
    right sign, all marching cubes needs there. Returns the grid and the fraction of blocks
    evaluated.
    """
    R = len(axis)
    h = float(axis[1] - axis[0])
    cidx = np.unique(np.r_[np.arange(0, R, block), R - 1])  # fine index of each coarse sample
    cax = axis[torch.as_tensor(cidx, device=axis.device)]
    coarse = _sample_lattice(fn, cax, cax, cax, chunk_points) - level
    C = len(cidx) - 1
    corners = [coarse[i:i + C, j:j + C, k:k + C] for i in (0, 1) for j in (0, 1) for k in (0, 1)]
    lo, hi = np.minimum.reduce(corners), np.maximum.reduce(corners)
    nearest = np.minimum.reduce([np.abs(c) for c in corners])
    near = ((lo <= 0) & (hi >= 0)) | (nearest < safety * np.sqrt(3.0) * block * h)

    pos = np.clip(np.searchsorted(cidx, np.arange(R)), 1, C)
    nn = np.where(np.arange(R) - cidx[pos - 1] <= cidx[pos] - np.arange(R), pos - 1, pos)
    out = coarse[np.ix_(nn, nn, nn)] + level
    blocks = np.argwhere(near)  # (K, 3) coarse cell indices
    off = np.stack(np.meshgrid(*[np.arange(block + 1)] * 3, indexing="ij"), -1).reshape(-1, 3)
    per = max(1, chunk_points // len(off))
    for s in range(0, len(blocks), per):
        bl = blocks[s:s + per]
        idx = np.minimum(cidx[bl][:, None] + off[None], cidx[bl + 1][:, None]).reshape(-1, 3)  # clamped
        if active is not None:
            idx = idx[active[idx[:, 0], idx[:, 1], idx[:, 2]]]
        pts = axis[torch.as_tensor(idx, device=axis.device)]
        out[idx[:, 0], idx[:, 1], idx[:, 2]] = _eval(fn, pts, chunk_points)
    if active is not None:
        out[~active] = level + outside
    return out, float(near.mean())


@torch.no_grad()
def sample_grid(fn: ValueFn, resolution: int, bound: float = 1.0, chunk_points: int = 1 << 18, *,
                level: float = 0.0, narrow_band: bool = False, occupancy=None, occupancy_bound: float | None = None,
                device: torch.device | str = "cpu", outside: float = 1.0, block: int = 8,
                safety: float = 1.5) -> np.ndarray:
    """(R, R, R) float32 values of ``fn`` on the lattice (see the module docstring).

    outside: how far above ``level`` unevaluated (unoccupied) samples read.
    """
    R = int(resolution)
    axis = torch.as_tensor(grid_coords(R, bound), dtype=torch.float32, device=device)
    active = None
    if occupancy is not None:
        active = occupancy_mask(occupancy, bound if occupancy_bound is None else occupancy_bound, R, bound)
    if narrow_band:
        vol, frac = _narrow_band(fn, axis, chunk_points, level, block, safety, active, outside)
        from ..core.log import get_logger

        get_logger(__name__).info("narrow band: %.1f%% of the grid's blocks evaluated", 100 * frac)
        return vol
    return _sample_lattice(fn, axis, axis, axis, chunk_points, active, level + outside)
