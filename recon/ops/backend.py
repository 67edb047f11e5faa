"""Backend selection: cuda > cpp > torch, forced by ``set_backend`` (config ``backend``).

``get_kernel(op, device)`` returns the compiled op for the active backend, or
None to use the torch twin. The kernel helper module fills this in.
"""
from __future__ import annotations

import torch

_BACKEND = "auto"


def set_backend(name: str) -> None:
    global _BACKEND
    if name not in ("auto", "cuda", "cpp", "torch"):
        raise ValueError(f"unknown backend '{name}'")
    _BACKEND = name


def get_backend() -> str:
    return _BACKEND


def active_backend(device: torch.device | str = "cpu") -> str:
    """The backend ops will actually use on ``device``."""
    return "torch"


def get_kernel(op: str, device: torch.device):
    return None
