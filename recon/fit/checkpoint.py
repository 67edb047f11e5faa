"""Checkpoints: model (field + occupancy grid), optimiser, scaler, RNG and progress, written atomically."""
from __future__ import annotations

import io
from pathlib import Path

import torch

from ..core.errors import corrupt_file
from ..core.fsutil import atomic_write_bytes

KEEP = 2
REQUIRED = {"model", "optimizer", "scaler", "iteration", "train_seconds", "generator", "torch_rng", "config",
            "n_frames"}  # what resume (Trainer._load) and load_model read


def checkpoint_path(ckpt_dir: Path, iteration: int) -> Path:
    return Path(ckpt_dir) / f"step_{iteration:07d}.pt"


def save_checkpoint(ckpt_dir: Path, state: dict, iteration: int) -> Path:
    """Write ``state`` as step_<iteration>.pt and keep only the newest ``KEEP`` checkpoints."""
    buf = io.BytesIO()
    torch.save(state, buf)
    path = checkpoint_path(ckpt_dir, iteration)
    atomic_write_bytes(path, buf.getvalue())
    for old in sorted(Path(ckpt_dir).glob("step_*.pt"))[:-KEEP]:
        old.unlink(missing_ok=True)
    return path


def latest_checkpoint(ckpt_dir: Path) -> Path | None:
    paths = sorted(Path(ckpt_dir).glob("step_*.pt"))
    return paths[-1] if paths else None


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict:
    """The state ``save_checkpoint`` wrote; InputError when the file does not read back as one."""
    fix = "delete it to resume from an earlier checkpoint, or pass --overwrite to start again"
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except OSError:
        raise
    except Exception as exc:  # torch.load raises many kinds for a damaged file (pickle, zip, EOF, ...)
        raise corrupt_file(path, exc, fix) from None
    if not isinstance(state, dict) or not REQUIRED <= state.keys():
        raise corrupt_file(path, "not a recon checkpoint", fix)
    return state
