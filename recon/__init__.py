"""recon: neural 3D reconstruction and asset capture.

    from recon import load_capture, fit
    cap = load_capture("cat.mp4")

Importing recon compiles nothing and imports torch lazily.
"""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["load_capture", "fit", "__version__"]


def __getattr__(name: str):
    if name == "load_capture":
        from .capture import load_capture

        return load_capture
    if name == "fit":
        from .fit.api import fit

        return fit
    raise AttributeError(f"module 'recon' has no attribute '{name}'")
