"""NeuS opacity of a ray section from the SDF at its midpoint (Wang et al. 2021, discrete form).

With s the inverse variance and Phi the logistic sigmoid, a section whose SDF
goes from sdf_prev to sdf_next has

    alpha = max((Phi(s*sdf_prev) - Phi(s*sdf_next)) / Phi(s*sdf_prev), 0)

The section ends are estimated from the midpoint SDF and the directional
derivative cos = d . grad(sdf): sdf_{prev,next} = sdf -/+ cos * dt / 2, with cos
clamped to <= 0 so that a section can only add opacity when the ray enters the
surface ("cos anneal" fully annealed).
"""
from __future__ import annotations

import torch
from torch import Tensor


def neus_alpha(sdf: Tensor, cos: Tensor, dt: Tensor, inv_s: Tensor | float) -> Tensor:
    """sdf, cos (= d . grad sdf), dt: (S,); inv_s scalar -> alpha (S,) in [0, 1]."""
    iter_cos = -torch.relu(-cos)
    half = iter_cos * dt * 0.5
    prev_cdf = torch.sigmoid((sdf - half) * inv_s)
    next_cdf = torch.sigmoid((sdf + half) * inv_s)
    return ((prev_cdf - next_cdf + 1e-5) / (prev_cdf + 1e-5)).clamp(0.0, 1.0)
