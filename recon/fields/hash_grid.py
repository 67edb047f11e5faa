"""Multiresolution hash-grid encoding module (instant-ngp) on top of ``recon.ops.hash_grid_encode``.

The table is one (n_params, F) parameter; the op dispatches to the compiled
kernel of the active backend. Coarse-to-fine training (Neuralangelo) zeroes the
features of levels that are not yet active, so the MLP sees coarse levels first.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..core.config import HashGridConfig
from ..ops import HashGridSpec, hash_grid_encode


class HashGridEncoding(nn.Module):
    """x in [0,1]^3 (N, 3) -> features (N, L*F)."""

    def __init__(self, cfg: HashGridConfig, init_scale: float = 1e-4):
        super().__init__()
        self.spec = HashGridSpec(n_levels=cfg.n_levels, n_features=cfg.n_features,
                                 log2_hashmap_size=cfg.log2_hashmap_size,
                                 base_resolution=cfg.base_resolution, max_resolution=cfg.max_resolution)
        self.table = nn.Parameter(torch.empty(self.spec.n_params, cfg.n_features).uniform_(-init_scale, init_scale))
        # number of active levels (coarse-to-fine); a buffer so checkpoints keep it
        self.register_buffer("active_levels", torch.tensor(cfg.n_levels, dtype=torch.int64), persistent=True)

    @property
    def out_dim(self) -> int:
        return self.spec.out_dim

    def set_active_levels(self, n: int) -> None:
        self.active_levels.fill_(max(1, min(int(n), self.spec.n_levels)))

    def finest_active_resolution(self) -> int:
        return self.spec.resolutions[int(self.active_levels) - 1]

    def forward(self, x: Tensor, grad_x: bool = False) -> Tensor:
        """Features of x; ``grad_x`` also differentiates them in x (through the trilinear weights: for
        points whose positions are being fitted)."""
        feats = hash_grid_encode((x if grad_x else x.detach()).contiguous(), self.table, self.spec)
        n = int(self.active_levels)
        if n < self.spec.n_levels:
            F = self.spec.n_features
            mask = torch.zeros(self.spec.out_dim, device=feats.device, dtype=feats.dtype)
            mask[: n * F] = 1.0
            feats = feats * mask
        return feats
