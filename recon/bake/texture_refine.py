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
import torch.nn.functional as F

from ..core.log import get_logger
from .textured_mesh import TexturedMesh

log = get_logger(__name__)


def photo_samples(mesh: TexturedMesh, capture, normalization: np.ndarray, max_views: int = 100
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Texture coordinates (P, 2) and photo colours (P, 3) in [0, 1] of covered, in-mask training pixels."""
    from ..ops.rasterize import rasterize
    from ..render.mesh_raster import screen_vertices

    idx = capture.split_indices("train", max_views)
    cams = capture.cameras[idx].transformed(np.linalg.inv(normalization))
    verts = torch.as_tensor(mesh.positions, dtype=torch.float64)
    faces = torch.as_tensor(mesh.faces, dtype=torch.long)
    uvs = torch.as_tensor(mesh.uvs, dtype=torch.float64)
    uv_all, rgb_all = [], []
    for k, i in enumerate(idx):
        H, W = int(cams.height[k]), int(cams.width[k])
        fid, bary, _ = rasterize(screen_vertices(verts, cams, k), faces, H, W)
        hit = fid >= 0
        if capture.masks is not None:
            hit &= torch.as_tensor(capture.masks[i] > 127)
        f = fid[hit]
        uv_all.append((bary[hit][..., None] * uvs[faces[f]]).sum(1).float())
        rgb_all.append(torch.as_tensor(capture.images[i])[hit].float() / 255)
    return torch.cat(uv_all), torch.cat(rgb_all)


def lookup_texture(tex: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """Bilinear lookups of a (S, S, 3) texture at glTF uvs (P, 2) -> (P, 3)."""
    return _lookup_chw(tex.permute(2, 0, 1), uv)


def _lookup_chw(tex: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """``lookup_texture`` of a channels-first (3, S, S) texture."""
    grid = (uv * 2 - 1)[None, None]  # x = u across columns, y = v down rows
    return F.grid_sample(tex[None], grid, mode="bilinear", align_corners=False)[0, :, 0].T


class ResidualPyramid(torch.nn.Module):
    """A base-colour texture as the baked one plus a pyramid of residuals (S, S/2, ... texels).

    A photo pixel then also corrects the texels around the ones it samples: texels seen by no
    training pixel but by a held-out view follow their neighbours instead of keeping the
    field's colour beside fitted ones. Stored channels-first (3, s, s), as the lookups take them.
    """

    def __init__(self, base_color: np.ndarray, levels: int = 4):
        super().__init__()
        self.register_buffer("base", torch.as_tensor(base_color).float().permute(2, 0, 1).contiguous() / 255)
        S = self.base.shape[1]
        self.levels = torch.nn.ParameterList(
            [torch.nn.Parameter(torch.zeros(3, max(1, S >> k), max(1, S >> k))) for k in range(levels)])

    def texture(self) -> torch.Tensor:
        """(S, S, 3) float texture, not clamped."""
        S = self.base.shape[1]
        up = [lv if lv.shape[1] == S else F.interpolate(lv[None], size=(S, S), mode="bilinear",
                                                        align_corners=False)[0] for lv in self.levels]
        return (self.base + sum(up)).permute(1, 2, 0)

    def sample(self, uv: torch.Tensor) -> torch.Tensor:
        """(P, 3) colour at glTF uvs (P, 2): each level looked up at uv and summed. For training steps: it
        touches P points instead of building the full texture (``texture``), whose bilinear lookup it
        matches up to the residual levels being interpolated once rather than upsampled, then looked up."""
        return _lookup_chw(self.base, uv) + sum(_lookup_chw(lv, uv) for lv in self.levels)

    def to_u8(self) -> np.ndarray:
        with torch.no_grad():
            return (self.texture().clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)


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
