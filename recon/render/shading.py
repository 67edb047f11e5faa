"""Shading of surface points under an environment light (``recon.render.environment.LightProbe``).

All in linear light, per point; differentiable in the materials and the light.

- ``shade_lambert``: albedo x irradiance / pi from the light's order-2 spherical harmonics.
- ``shade_pbr``: glTF metallic-roughness (Cook-Torrance, GGX distribution, separable Smith masking,
  Schlick Fresnel with F0 = 0.04 for dielectrics and the base colour for metals) under the
  environment, by the split-sum approximation (Karis 2013): the light pre-filtered by the GGX lobe
  (``LightProbe.specular_at``) times the lobe's directional albedo F0 * A + B from a table
  (``brdf_table``); the diffuse lobe is Lambertian, weighted by 1 - metallic. No shadowing or
  inter-reflection: visibility is not modelled.
"""
from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor

from .environment import LightProbe


def _smith_g1(cos: Tensor, alpha: float) -> Tensor:
    tan2 = (1 - cos * cos).clamp_min(0) / (cos * cos).clamp_min(1e-12)
    return 2 / (1 + torch.sqrt(1 + alpha * alpha * tan2))


@lru_cache(maxsize=2)
def brdf_table(size: int = 32, samples: int = 1024) -> Tensor:
    """(size, size, 2) the split-sum scale and bias (A, B) of the GGX lobe: rows n.v in (0, 1], columns
    roughness in [0, 1] (alpha = roughness^2), by importance sampling the GGX normal distribution."""
    i = torch.arange(samples, dtype=torch.float64)
    u1 = (i + 0.5) / samples
    u2 = torch.tensor([int(f"{k:032b}"[::-1], 2) / 2 ** 32 for k in range(samples)], dtype=torch.float64)  # Hammersley
    out = torch.zeros(size, size, 2, dtype=torch.float64)
    for a, n_dot_v in enumerate(((torch.arange(size, dtype=torch.float64) + 0.5) / size).tolist()):
        v = torch.tensor([math.sqrt(1 - n_dot_v ** 2), 0.0, n_dot_v], dtype=torch.float64)
        for b, rough in enumerate(torch.linspace(0, 1, size).tolist()):
            alpha = max(rough * rough, 1e-3)
            cos_t = torch.sqrt((1 - u1) / (1 + (alpha * alpha - 1) * u1))
            sin_t = torch.sqrt(1 - cos_t ** 2)
            phi = 2 * math.pi * u2
            h = torch.stack([sin_t * torch.cos(phi), sin_t * torch.sin(phi), cos_t], 1)
            v_dot_h = (h @ v).clamp_min(0)
            lz = 2 * v_dot_h * h[:, 2] - v[2]  # n.l of l = reflect(-v, h)
            ok = lz > 0
            g = _smith_g1(torch.full_like(lz, n_dot_v), alpha) * _smith_g1(lz.clamp_min(1e-6), alpha)
            g_vis = torch.where(ok, g * v_dot_h / (h[:, 2] * n_dot_v).clamp_min(1e-12), torch.zeros_like(g))
            fc = (1 - v_dot_h) ** 5
            out[a, b, 0] = ((1 - fc) * g_vis).mean()
            out[a, b, 1] = (fc * g_vis).mean()
    return out.float()


def env_brdf(n_dot_v: Tensor, roughness: Tensor) -> Tensor:
    """(N, 2) the table's (A, B) at n.v (N,) and roughness (N,), bilinear."""
    table = brdf_table().to(n_dot_v.device).permute(2, 0, 1)[None]  # (1, 2, size, size)
    size = table.shape[-1]
    y = ((n_dot_v.clamp(0, 1) * size - 0.5) / (size - 1)) * 2 - 1
    x = roughness.clamp(0, 1) * 2 - 1
    grid = torch.stack([x, y], -1).to(table)[None, None]
    return F.grid_sample(table, grid, mode="bilinear", padding_mode="border", align_corners=True)[0, :, 0].T


def shade_lambert(albedo: Tensor, n: Tensor, probe: LightProbe) -> Tensor:
    """(N, 3) linear radiance of Lambertian points: albedo (N, 3) linear, unit normals (N, 3)."""
    return albedo * probe.diffuse(n)


def shade_pbr(albedo: Tensor, roughness: Tensor, metallic: Tensor, n: Tensor, v: Tensor,
              probe: LightProbe) -> Tensor:
    """(N, 3) linear radiance towards the viewer.

    albedo (N, 3) linear base colour; roughness, metallic (N,) in [0, 1]; n (N, 3) unit shading
    normals; v (N, 3) unit directions from the point towards the viewer.
    """
    n_dot_v = (n * v).sum(-1, keepdim=True)
    n = torch.where(n_dot_v < 0, n - 2 * n_dot_v * v, n)  # a normal facing away: mirror it into view
    n = F.normalize(n, dim=-1)
    n_dot_v = (n * v).sum(-1, keepdim=True).clamp_min(1e-4)
    r = 2 * n_dot_v * n - v
    m = metallic[:, None]
    f0 = 0.04 * (1 - m) + albedo * m
    ab = env_brdf(n_dot_v[:, 0], roughness)
    spec = probe.specular_at(r, roughness) * (f0 * ab[:, :1] + ab[:, 1:])
    return albedo * (1 - m) * probe.diffuse(n) + spec
