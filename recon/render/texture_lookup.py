"""Textures looked up at surface points, and a texture parameterised for fitting (``ResidualPyramid``).

uvs follow glTF: (0, 0) is the image's top-left, v grows downwards; lookups are bilinear as viewers do.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def lookup_texture(tex: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """Bilinear lookups of a (S, S, C) texture at glTF uvs (P, 2) -> (P, C)."""
    return _lookup_chw(tex.permute(2, 0, 1), uv)


def _lookup_chw(tex: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """``lookup_texture`` of a channels-first (C, S, S) texture."""
    grid = (uv * 2 - 1)[None, None]  # x = u across columns, y = v down rows
    return F.grid_sample(tex[None], grid, mode="bilinear", align_corners=False)[0, :, 0].T


class ResidualPyramid(torch.nn.Module):
    """A texture as a base one plus a pyramid of residuals (S, S/2, ... texels) to fit.

    A photo pixel then also corrects the texels around the ones it samples: texels seen by no
    training pixel but by a held-out view follow their neighbours instead of keeping the
    field's colour beside fitted ones. Stored channels-first (C, s, s), as the lookups take them;
    the finest level holds the base plus its residual (one lookup fewer per sample; Adam's steps do
    not depend on where a parameter starts, so this is the same fit).
    ``base``: (S, S, C) uint8 (read as /255) or float.
    """

    def __init__(self, base_color: np.ndarray, levels: int = 4):
        super().__init__()
        base = torch.as_tensor(base_color)
        base = (base.float() / 255 if base.dtype == torch.uint8 else base.float()).permute(2, 0, 1).contiguous()
        C, S = base.shape[:2]
        self.levels = torch.nn.ParameterList(
            [torch.nn.Parameter(base)] +
            [torch.nn.Parameter(torch.zeros(C, max(1, S >> k), max(1, S >> k))) for k in range(1, max(1, levels))])

    def texture(self) -> torch.Tensor:
        """(S, S, C) float texture, not clamped."""
        S = self.levels[0].shape[1]
        up = [lv if lv.shape[1] == S else F.interpolate(lv[None], size=(S, S), mode="bilinear",
                                                        align_corners=False)[0] for lv in self.levels]
        return sum(up).permute(1, 2, 0)

    def sample(self, uv: torch.Tensor) -> torch.Tensor:
        """(P, C) values at glTF uvs (P, 2): each level looked up at uv and summed. For training steps: it
        touches P points instead of building the full texture (``texture``), whose bilinear lookup it
        matches up to the residual levels being interpolated once rather than upsampled, then looked up."""
        return sum(_lookup_chw(lv, uv) for lv in self.levels)

    def to_u8(self) -> np.ndarray:
        with torch.no_grad():
            return (self.texture().clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)
