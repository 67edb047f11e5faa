"""sRGB <-> linear transfer functions (IEC 61966-2-1), for numpy arrays and torch tensors alike.

Images on disk and the radiance fields' colours are sRGB-encoded; shading and material fitting work
in linear light (DESIGN.md, conventions).
"""
from __future__ import annotations

import numpy as np
import torch


def srgb_to_linear(c):
    """sRGB-encoded values in [0, 1] -> linear (numpy array or torch tensor, differentiable)."""
    if isinstance(c, torch.Tensor):
        return torch.where(c <= 0.04045, c / 12.92, ((c.clamp_min(0.04045) + 0.055) / 1.055) ** 2.4)
    return np.where(c <= 0.04045, c / 12.92, ((np.maximum(c, 0.04045) + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(c):
    """Linear values -> sRGB-encoded (values above 1 stay above 1: clamp for display)."""
    if isinstance(c, torch.Tensor):
        return torch.where(c <= 0.0031308, c * 12.92, 1.055 * c.clamp_min(0.0031308) ** (1 / 2.4) - 0.055)
    return np.where(c <= 0.0031308, c * 12.92, 1.055 * np.power(np.maximum(c, 0.0031308), 1 / 2.4) - 0.055)
