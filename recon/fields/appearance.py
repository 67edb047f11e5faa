"""Per-frame appearance codes (NeRF-W style) for captures whose exposure or white balance changes."""
from __future__ import annotations

import torch
from torch import Tensor, nn


class AppearanceCodes(nn.Module):
    """One learned code per training frame; unseen frames (held-out views) use the mean code."""

    def __init__(self, n_frames: int, dim: int):
        super().__init__()
        self.codes = nn.Parameter(torch.zeros(max(n_frames, 1), dim))

    @property
    def dim(self) -> int:
        return self.codes.shape[1]

    def forward(self, frame: Tensor | None, n: int) -> Tensor:
        """frame: (N,) int64 frame indices, or None for the mean code -> (N, dim)."""
        if frame is None:
            return self.codes.mean(0, keepdim=True).expand(n, -1)
        return self.codes[frame]
