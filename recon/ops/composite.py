"""Front-to-back volume compositing of packed samples.

For the samples i of one ray (in order), ``T_i = prod_{j<i} (1 - alpha_j)``,
``w_i = alpha_i * T_i``; the ray's output is ``sum_i w_i * v_i`` and its
opacity ``sum_i w_i``. Alphas are clamped to [0, 1 - 1e-6] so that transmittance
stays differentiable. Both NeRF (alpha = 1 - exp(-sigma * dt)) and NeuS (alpha
from SDF) feed alphas, and depth / normals are composited as extra channels.
"""
from __future__ import annotations

import torch
from torch import Tensor

ALPHA_MAX = 1.0 - 1e-6


def composite_torch(alphas: Tensor, values: Tensor, packed: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Reference compositing.

    alphas: (S,); values: (S, C); packed: (R, 2) int64 [first sample, count].
    Returns out (R, C), opacity (R,), weights (S,). Differentiable in alphas and values.
    """
    R = packed.shape[0]
    S = alphas.shape[0]
    rid = torch.repeat_interleave(torch.arange(R, device=alphas.device), packed[:, 1], output_size=S)
    log_t = torch.log1p(-alphas.clamp(0.0, ALPHA_MAX))
    incl = torch.cumsum(log_t.double(), 0)
    excl = incl - log_t.double()
    # subtract the running sum at each ray's first sample so sums restart per ray
    seg_base = (excl[packed[:, 0].clamp(max=max(S - 1, 0))] if S else excl.new_zeros(R))
    trans = torch.exp((excl - seg_base[rid]).float()) if S else alphas
    weights = alphas.clamp(0.0, ALPHA_MAX) * trans
    out = values.new_zeros(R, values.shape[1]).index_add(0, rid, weights[:, None] * values)
    opacity = alphas.new_zeros(R).index_add(0, rid, weights)
    return out, opacity, weights


def composite(alphas: Tensor, values: Tensor, packed: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Composite with the active backend (see ``composite_torch`` for the contract)."""
    from .backend import get_kernel

    kernel = get_kernel("composite", alphas.device)
    if kernel is None:
        return composite_torch(alphas, values, packed)
    return kernel(alphas, values, packed)
