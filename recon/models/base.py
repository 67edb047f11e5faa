"""What a subject model offers the one training loop (``recon.fit.trainer``) and the bake.

The trainer never branches on the subject: it builds the model for the capture, hands it
the training frames, and each iteration asks it for named loss terms; evaluation and the
checkpoint's rebuild information come from the model too. Subclasses:
``recon.models.object_model.ObjectModel`` (a static field, rendered by rays) and
``recon.models.articulated_model.ArticulatedModel`` (a skinned canonical mesh, rendered by
rasterization).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ..core.config import Config
from ..core.types import Capture


class SubjectModel(nn.Module):
    """Base class of subject models. ``kind`` is what the asset is recorded as."""

    kind: str = ""

    @classmethod
    def for_capture(cls, cfg: Config, cap: Capture, train_idx: np.ndarray) -> "SubjectModel":
        """A fresh model sized for the capture's training frames ``train_idx``."""
        raise NotImplementedError

    @classmethod
    def from_info(cls, cfg: Config, info: dict) -> "SubjectModel":
        """An untrained model with the shape that ``checkpoint_info()`` recorded (weights loaded after)."""
        raise NotImplementedError

    def checkpoint_info(self) -> dict:
        """JSON-able facts that rebuild this model's shape (``from_info``); stored in checkpoints."""
        raise NotImplementedError

    def attach(self, cap: Capture, train_idx: np.ndarray, fresh: bool) -> None:
        """Load the training data (kept out of the state dict); ``fresh``: not resumed from a checkpoint."""
        raise NotImplementedError

    @property
    def batch_size(self) -> int:
        """Rays (pixels) rendered per training iteration, for the throughput figure."""
        raise NotImplementedError

    def param_groups(self) -> list[dict]:
        """Adam parameter groups, each with ``lr`` and a ``name``."""
        raise NotImplementedError

    def train_losses(self, iteration: int, progress: float,
                     generator: torch.Generator) -> tuple[dict[str, Tensor], dict[str, float]]:
        """One iteration's named loss terms (summed by the trainer) and scalar statistics (``psnr`` at least)."""
        raise NotImplementedError

    def evaluate(self, cap: Capture, indices: np.ndarray, save_dir: Path | None = None) -> dict:
        """Scores on the frames ``indices``: ``psnr``, ``ssim``, ``n_views``, ``region``, ``views`` (per view), ..."""
        raise NotImplementedError

    def log_record(self) -> dict:
        """Extra scalars for the training log."""
        return {}

    def describe(self) -> dict:
        """What the fit used, for eval.json (e.g. field, mask mode)."""
        return {}
