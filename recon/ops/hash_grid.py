"""Multiresolution hash-grid encoding (instant-ngp), forward and backward.

A point x in [0,1]^3 is looked up at L levels. Level l has resolution
``res_l = floor(base * growth**l)`` cells per axis, i.e. (res_l+1)^3 vertices,
stored in ``size_l = min(2**log2_hashmap_size, ceil8((res_l+1)^3))`` rows of
the shared table at ``offsets[l]``. Vertex (i,j,k) is stored densely at
``i + j*(res+1) + k*(res+1)^2`` when (res+1)^3 <= size_l, else at the spatial
hash ``(i * 1 ^ j * 2654435761 ^ k * 805459861) mod size_l`` computed in uint32.
Features of the 8 surrounding vertices are blended trilinearly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

PRIMES = (1, 2654435761, 805459861)


@dataclass(frozen=True)
class HashGridSpec:
    n_levels: int = 16
    n_features: int = 2
    log2_hashmap_size: int = 19
    base_resolution: int = 16
    max_resolution: int = 2048
    resolutions: tuple[int, ...] = field(init=False)
    offsets: tuple[int, ...] = field(init=False)  # L+1 entries; offsets[-1] = table rows

    def __post_init__(self):
        L = self.n_levels
        growth = math.exp((math.log(self.max_resolution) - math.log(self.base_resolution)) / max(L - 1, 1))
        res = tuple(int(math.floor(self.base_resolution * growth ** l)) for l in range(L))
        offs = [0]
        for r in res:
            dense = (r + 1) ** 3
            size = min(2 ** self.log2_hashmap_size, (dense + 7) // 8 * 8)
            offs.append(offs[-1] + size)
        object.__setattr__(self, "resolutions", res)
        object.__setattr__(self, "offsets", tuple(offs))

    @property
    def n_params(self) -> int:
        return self.offsets[-1]

    @property
    def out_dim(self) -> int:
        return self.n_levels * self.n_features


def _corner_index(ijk: Tensor, res: int, size: int) -> Tensor:
    """(…, 3) int64 vertex coordinates -> (…,) row within the level."""
    if (res + 1) ** 3 <= size:
        return ijk[..., 0] + ijk[..., 1] * (res + 1) + ijk[..., 2] * (res + 1) ** 2
    mask = 0xFFFFFFFF
    h = (ijk[..., 0] * PRIMES[0]) & mask
    h = h ^ ((ijk[..., 1] * PRIMES[1]) & mask)
    h = h ^ ((ijk[..., 2] * PRIMES[2]) & mask)
    return h % size


def hash_grid_encode_torch(x: Tensor, table: Tensor, spec: HashGridSpec) -> Tensor:
    """Reference encoding. x: (N, 3) in [0,1]; table: (n_params, F) -> (N, L*F).

    Differentiable with respect to ``table`` (and ``x`` through the blend weights).
    """
    N = x.shape[0]
    F = spec.n_features
    xc = x.clamp(0.0, 1.0)
    outs = []
    for l, res in enumerate(spec.resolutions):
        size = spec.offsets[l + 1] - spec.offsets[l]
        pos = xc * res
        p0 = pos.detach().floor().clamp(0, res - 1)
        frac = pos - p0
        p0 = p0.long()
        feat = x.new_zeros(N, F)
        for c in range(8):
            bits = torch.tensor([(c >> 0) & 1, (c >> 1) & 1, (c >> 2) & 1], device=x.device)
            w = torch.where(bits.bool(), frac, 1.0 - frac).prod(dim=-1)  # (N,)
            idx = _corner_index(p0 + bits, res, size) + spec.offsets[l]
            feat = feat + w[:, None] * table[idx]
        outs.append(feat)
    return torch.cat(outs, dim=-1)


def hash_grid_encode(x: Tensor, table: Tensor, spec: HashGridSpec) -> Tensor:
    """Encode points with the active backend. x: (N, 3) in [0,1]; table: (n_params, F) -> (N, L*F).

    Gradients flow to ``table`` and, through the trilinear weights, to ``x`` (where it requires them).
    """
    from .backend import get_kernel

    kernel = get_kernel("hash_grid_encode", x.device)
    if kernel is None:
        return hash_grid_encode_torch(x, table, spec)
    return kernel(x, table, spec)
