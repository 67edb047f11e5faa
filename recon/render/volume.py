"""Volume rendering of density and SDF fields: sample, evaluate, composite (``recon.ops.composite``).

``render_rays`` returns the composited colour over a background, opacity,
depth (expected ray distance of the visible matter) and, for SDF fields,
normals plus the per-sample gradient terms the regularisers need.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..fields.base import Field
from ..ops import composite
from .neus import neus_alpha
from .occupancy import OccupancyGrid
from .rays import RayBundle
from .sampler import sample_rays


@dataclass(frozen=True)
class RenderOutput:
    rgb: Tensor  # (R, 3) composited over the background
    opacity: Tensor  # (R,)
    depth: Tensor  # (R,) expected distance of the visible matter (0 where opacity is 0)
    normals: Tensor | None  # (R, 3) SDF fields: composited unit normals
    n_samples: int
    grad: Tensor | None = None  # (S, 3) SDF numerical gradients (eikonal)
    laplacian: Tensor | None = None  # (S,) SDF Laplacians (curvature)
    bg_distortion: Tensor | None = None  # (R,) the background field's distortion loss (recon.render.background)


def render_rays(field: Field, grid: OccupancyGrid, rays: RayBundle, step: float, max_steps: int,
                background: Tensor, training: bool = False,
                generator: torch.Generator | None = None) -> RenderOutput:
    """Render R rays; ``background`` is (3,) or (R, 3)."""
    smp = sample_rays(rays, grid, step, max_steps, jitter=training, generator=generator)
    R = len(rays)
    grad = lap = None
    if field.kind == "sdf":
        g = field.sdf_with_grad(smp.positions)
        cos = (smp.dirs * g.grad).sum(-1)
        alphas = neus_alpha(g.sdf, cos, smp.deltas, field.inv_s())
        rgb = field.color_from(g, smp.dirs, smp.frame)
        values = torch.cat([rgb, smp.t_mid[:, None], g.normals.float()], dim=-1)
        grad, lap = g.grad, g.laplacian
    else:
        sigma, rgb = field(smp.positions, smp.dirs, smp.frame)
        alphas = 1.0 - torch.exp(-sigma * smp.deltas)
        values = torch.cat([rgb, smp.t_mid[:, None]], dim=-1)
    out, opacity, _ = composite(alphas.float().contiguous(), values.float().contiguous(), smp.packed)
    bg = background.expand(R, 3) if background.dim() == 1 else background
    rgb_out = out[:, :3] + (1.0 - opacity)[:, None] * bg
    depth = out[:, 3] / opacity.clamp_min(1e-6)
    normals = None
    if field.kind == "sdf":
        normals = torch.nn.functional.normalize(out[:, 4:7], dim=-1, eps=1e-6)
    return RenderOutput(rgb_out, opacity, depth, normals, len(smp), grad, lap)


@torch.no_grad()
def render_image(field: Field, grid: OccupancyGrid, rays: RayBundle, step: float, max_steps: int,
                 background: Tensor, height: int, width: int, chunk: int = 8192) -> dict[str, Tensor]:
    """Render H*W rays in chunks -> rgb (H, W, 3), opacity (H, W), depth (H, W) [, normals (H, W, 3)].

    background: (3,), or (H*W, 3) per ray (e.g. the background field's render).
    """
    parts: dict[str, list[Tensor]] = {"rgb": [], "opacity": [], "depth": [], "normals": []}
    for s in range(0, len(rays), chunk):
        bg = background if background.dim() == 1 else background[s:s + chunk]
        o = render_rays(field, grid, rays[s:s + chunk], step, max_steps, bg)
        parts["rgb"].append(o.rgb)
        parts["opacity"].append(o.opacity)
        parts["depth"].append(o.depth)
        if o.normals is not None:
            parts["normals"].append(o.normals)
    shape = {"rgb": (height, width, 3), "opacity": (height, width), "depth": (height, width),
             "normals": (height, width, 3)}
    return {k: torch.cat(v).float().reshape(shape[k]) for k, v in parts.items() if v}
