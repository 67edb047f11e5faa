"""Render the unbounded background field (``recon.fields.background_field``) along rays.

Each ray gets ``n_samples`` samples: half spaced evenly in distance from
``near`` to the far side of the inner ball, half evenly in disparity from there
to ``far`` (nerfacto's piecewise sampler; no proposal network, so the count stays
fixed and small). Jittered while training. What the samples leave transparent
shows a learned constant colour, so every pixel gets one.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..fields.background_field import BackgroundField
from .rays import RayBundle


def sample_distances(rays: RayBundle, n: int, near: float, inner_radius: float, far: float,
                     jitter: bool, generator: torch.Generator | None = None) -> Tensor:
    """Sample bin edges along each ray: (R, n + 1) distances, increasing."""
    R, dev = len(rays), rays.origins.device
    # where the ray leaves the inner ball (cameras may sit inside or outside it)
    b = (rays.origins * rays.dirs).sum(-1)
    c = (rays.origins * rays.origins).sum(-1) - inner_radius ** 2
    t_mid = (-b + torch.sqrt((b * b - c).clamp_min(0.0))).clamp_min(2 * near)
    n_lin = n // 2
    u = torch.linspace(0.0, 1.0, n + 1, device=dev).expand(R, n + 1).clone()
    if jitter:
        u[:, 1:-1] += (torch.rand(R, n - 1, device=dev, generator=generator) - 0.5) / n
    s_lin = (u[:, : n_lin + 1] * (n / n_lin)).clamp(max=1.0)
    t_lin = near + s_lin * (t_mid[:, None] - near)
    s_far = ((u[:, n_lin + 1:] - n_lin / n) * (n / (n - n_lin))).clamp(0.0, 1.0)
    t_far = 1.0 / (1.0 / t_mid[:, None] * (1 - s_far) + s_far / far)
    return torch.cat([t_lin, t_far], dim=1)


def distortion(w: Tensor, s: Tensor) -> Tensor:
    """mip-NeRF 360's distortion loss per ray (R,): weights w (R, n) on intervals with edges s (R, n + 1)
    in a normalised sample space; small when each ray's weight sits in one compact interval."""
    mid, width = 0.5 * (s[:, 1:] + s[:, :-1]), s[:, 1:] - s[:, :-1]
    w_before = torch.cumsum(w, dim=1) - w
    ws_before = torch.cumsum(w * mid, dim=1) - w * mid
    return (2 * w * (mid * w_before - ws_before)).sum(1) + (w * w * width).sum(1) / 3


def render_background(field: BackgroundField, sky: Tensor, rays: RayBundle, training: bool = False,
                      generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Colour (R, 3) of the background behind each ray, its opacity before the sky (R,), and the
    distortion loss per ray (R,) in the sampler's normalised space (evenly spaced samples: [0, 1]).

    sky: (3,) colour (already in [0, 1]) seen where the field is transparent.
    """
    cfg = field.cfg
    edges = sample_distances(rays, cfg.samples_per_ray, cfg.near, cfg.inner_radius, cfg.far, training, generator)
    mid = 0.5 * (edges[:, 1:] + edges[:, :-1])  # (R, n)
    delta = edges[:, 1:] - edges[:, :-1]
    R, n = mid.shape
    x = rays.origins[:, None, :] + rays.dirs[:, None, :] * mid[..., None]
    d = rays.dirs[:, None, :].expand(R, n, 3)
    sigma, rgb = field(x.reshape(-1, 3), d.reshape(-1, 3))
    alpha = 1.0 - torch.exp(-sigma.reshape(R, n) * delta)
    trans = torch.cumprod(torch.cat([torch.ones(R, 1, device=alpha.device), 1.0 - alpha + 1e-10], dim=1), dim=1)
    w = alpha * trans[:, :-1]
    opacity = w.sum(1)
    color = (w[..., None] * rgb.reshape(R, n, 3)).sum(1) + (1.0 - opacity)[:, None] * sky
    s = torch.linspace(0.0, 1.0, n + 1, device=w.device).expand(R, n + 1)
    return color, opacity, distortion(w, s)
