"""recon: neural 3D reconstruction and asset capture.

    from recon import load_capture, fit
    cap = load_capture("cat.mp4")                  # frames, cameras, masks, normalised
    result = fit("cat.mp4", out="out/cat")         # capture -> fit -> bake: out/cat/asset/cat.glb

Importing recon compiles nothing and imports torch lazily.
"""
from __future__ import annotations

import os as _os

__version__ = "0.1.0"

# OpenMP threads (torch's and the compiled kernels') sleep instead of spin-waiting at the end of a
# parallel region. On a machine with more busy threads than cores, spinning makes every parallel op
# wait for descheduled spinners (measured: 3-8x slower training steps on a loaded 2-core machine); on
# an idle machine the cost is a few microseconds per region. Read when OpenMP starts, so it is set
# here, before torch is imported; an explicit OMP_WAIT_POLICY wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__all__ = ["load_capture", "fit", "__version__"]


def __getattr__(name: str):
    if name == "load_capture":
        from .capture import load_capture

        return load_capture
    if name == "fit":
        from .pipeline import fit

        return fit
    raise AttributeError(f"module 'recon' has no attribute '{name}'")
