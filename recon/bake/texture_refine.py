"""Fit the baked base-colour texture to the training photos, the mesh held fixed.

The texture baked from the field is its colour at the extracted surface; where that
surface sits a little off the field's (a density level set, a decimated mesh) or the
colour varies quickly, renders of the mesh drift from the photos. Here every training
photo is rasterized with the mesh (recon.ops.rasterize, pixel centres), each covered
pixel inside the subject's mask gives a texture coordinate and a target colour, and the
texture is fitted to them by Adam on the unlit render's colour (bilinear lookups, the
same the viewers do): a few hundred steps of least squares on a pyramid of residuals
(full, 1/2, 1/4, 1/8 resolution), so texels next to observed ones follow them. Texels no
photo reaches keep the field's colour, and a fit that does not improve the training views
is discarded. Held-out views are never used.
"""
from __future__ import annotations

import numpy as np
import torch

from ..core.log import get_logger
from ..render.texture_lookup import ResidualPyramid, lookup_texture
from .textured_mesh import TexturedMesh

log = get_logger(__name__)


def photo_samples(mesh: TexturedMesh, capture, normalization: np.ndarray, max_views: int = 100
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Texture coordinates (P, 2) and photo colours (P, 3) in [0, 1] of covered, in-mask training pixels."""
    from ..render.mesh_raster import covered_pixels

    uvs = torch.as_tensor(mesh.uvs, dtype=torch.float64)
    faces = torch.as_tensor(mesh.faces, dtype=torch.long)
    uv_all, rgb_all = [], []
    for px in covered_pixels(mesh.positions, mesh.faces, capture, normalization, max_views):
        uv_all.append((px.bary[..., None] * uvs[faces[px.face]]).sum(1).float())
        rgb_all.append(px.rgb)
    return torch.cat(uv_all), torch.cat(rgb_all)


def refine_base_color(mesh: TexturedMesh, capture, normalization: np.ndarray, steps: int = 300,
                      lr: float = 0.03, batch: int = 1 << 16, seed: int = 0, levels_n: int = 4) -> tuple[TexturedMesh, dict]:
    """``mesh`` with its base colour fitted to the training photos (kept only if their PSNR rises); also returns
    the measured PSNR on them before and after the fit, and ``texture_fit_kept``."""
    if capture.cameras is None or capture.cameras.has_distortion or steps <= 0 or \
            len(capture.split_indices("train")) == 0:
        return mesh, {}
    uv, rgb = photo_samples(mesh, capture, normalization)
    if len(uv) == 0:
        return mesh, {}
    pyramid = ResidualPyramid(mesh.base_color, levels_n)
    opt = torch.optim.Adam(pyramid.parameters(), lr=lr, fused=True)
    gen = torch.Generator().manual_seed(seed)

    def psnr() -> float:
        with torch.no_grad():
            tex = pyramid.texture().clamp(0, 1)
            err = torch.cat([(lookup_texture(tex, u) - c).pow(2) for u, c in zip(uv.split(1 << 18), rgb.split(1 << 18))])
        return float(-10 * torch.log10(err.mean()))

    before = psnr()
    for _ in range(steps):
        sel = torch.randint(len(uv), (min(batch, len(uv)),), generator=gen)
        loss = (pyramid.sample(uv[sel]) - rgb[sel]).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    after = psnr()
    kept = after > before  # otherwise the fit did not help: keep the field's colours
    stats = {"texture_fit_psnr_before": before, "texture_fit_psnr_after": after, "texture_fit_kept": kept,
             "texture_fit_pixels": int(len(uv))}
    log.info("texture fit %s: PSNR %.2f -> %.2f dB on %d training pixels", "kept" if kept else "discarded",
             before, after, len(uv))
    return (mesh.with_(base_color=pyramid.to_u8()) if kept else mesh), stats
