"""The background: an unbounded field behind the subject (mip-NeRF 360 scene contraction).

A real photo shows the room around the subject. The subject's field lives in
the cube [-bound, bound]^3 and is trained to be opaque only inside the masks; this
field explains everything else, out to infinity, so the whole frame is fitted
and scored while the asset holds the subject alone. Space is contracted into a
ball of radius 2r (r = ``inner_radius``, linear inside r):

    contract(x) = x                          |x| <= r
                  (2 - r/|x|) r x/|x|        |x| >  r

and the hash grid sees the ball mapped to [0, 1]^3.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..core.config import BackgroundConfig
from .base import trunc_exp
from .hash_grid import HashGridEncoding
from .mlp import MLP
from .sh_encoding import sh_encode

GEO_FEATURES = 15


def contract(x: Tensor, r: float) -> Tensor:
    """(N, 3) world points -> (N, 3) points in the ball of radius 2r (identity inside radius r)."""
    n = x.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    return torch.where(n <= r, x, (2.0 - r / n) * r * x / n)


class BackgroundField(nn.Module):
    """sigma(x) >= 0 and rgb(x, d) in [0, 1] anywhere in space; a low-order SH view dependence."""

    def __init__(self, cfg: BackgroundConfig):
        super().__init__()
        self.cfg = cfg
        self.encoding = HashGridEncoding(cfg.grid)
        self.geo_mlp = MLP(self.encoding.out_dim, cfg.hidden_dim, 1 + GEO_FEATURES)
        self.color_mlp = MLP(cfg.sh_degree ** 2 + GEO_FEATURES, cfg.hidden_dim, 3)

    def to_unit(self, x: Tensor) -> Tensor:
        """World (N, 3) -> hash-grid coordinates in [0, 1]^3 of the contracted ball."""
        r = self.cfg.inner_radius
        return (contract(x, r) / (2.0 * r) + 1.0) * 0.5

    def forward(self, x: Tensor, d: Tensor) -> tuple[Tensor, Tensor]:
        """(N, 3) points and unit directions -> sigma (N,), rgb (N, 3)."""
        h = self.geo_mlp(self.encoding(self.to_unit(x)))
        sigma = trunc_exp(h[:, 0].float() - 1.0)
        c = self.color_mlp(torch.cat([sh_encode(d, self.cfg.sh_degree).to(h.dtype), h[:, 1:]], dim=-1))
        return sigma, torch.sigmoid(c.float())
