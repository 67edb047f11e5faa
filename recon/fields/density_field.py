"""NeRF density field (instant-ngp): hash grid -> density MLP; SH(view dir) + features -> colour MLP."""
from __future__ import annotations

import torch
from torch import Tensor

from ..core.config import FieldConfig
from .appearance import AppearanceCodes
from .base import Field, trunc_exp
from .hash_grid import HashGridEncoding
from .mlp import MLP
from .sh_encoding import sh_encode


class DensityField(Field):
    """sigma(x) >= 0 and rgb(x, d) in [0, 1].

    Geometry: grid (L*F) -> hidden -> 1 + geo_feat_dim; sigma = exp(first output).
    Colour: [SH_deg(d), geo features, appearance code] -> hidden -> 3, sigmoid.
    """

    kind = "density"

    def __init__(self, cfg: FieldConfig, bound: float = 1.0, n_frames: int = 0):
        super().__init__(bound)
        self.cfg = cfg
        self.encoding = HashGridEncoding(cfg.grid)
        self.geo_mlp = MLP(self.encoding.out_dim, cfg.hidden_dim, 1 + cfg.geo_feat_dim)
        self.appearance = AppearanceCodes(n_frames, cfg.appearance_dim) if cfg.appearance_dim else None
        in_dim = cfg.sh_degree ** 2 + cfg.geo_feat_dim + cfg.appearance_dim
        self.color_mlp = MLP(in_dim, cfg.color_hidden_dim, 3, n_hidden=cfg.color_layers)

    def geometry(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x: (N, 3) world -> sigma (N,), geo features (N, geo_feat_dim)."""
        h = self.geo_mlp(self.encoding(self.to_unit(x)))
        return trunc_exp(h[:, 0].float() - 1.0), h[:, 1:]

    def density(self, x: Tensor) -> Tensor:
        return self.geometry(x)[0]

    def color_from_features(self, feats: Tensor, d: Tensor, frame: Tensor | None = None) -> Tensor:
        parts = [sh_encode(d, self.cfg.sh_degree).to(feats.dtype), feats]
        if self.appearance is not None:
            parts.append(self.appearance(frame, d.shape[0]).to(feats.dtype))
        return torch.sigmoid(self.color_mlp(torch.cat(parts, dim=-1)).float())

    def forward(self, x: Tensor, d: Tensor, frame: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(N, 3) points and unit directions -> sigma (N,), rgb (N, 3)."""
        sigma, feats = self.geometry(x)
        return sigma, self.color_from_features(feats, d, frame)

    def color(self, x: Tensor, d: Tensor, frame: Tensor | None = None) -> Tensor:
        return self(x, d, frame)[1]
