"""Rigging a baked mesh from a model that has a skeleton (``recon.models.articulated_model``).

``rig_from(source, positions, N, capture)`` asks the model for its joints (rest and per-instant
globals in the normalised world) and for the skin weights at the asset's vertices, and returns
a ``Rig`` in the asset's units. ``posed_at(asset, instant)`` poses a rigged asset at any source
frame: a key's pose, or between the two nearest keys (blending the posed positions linearly is
linear blend skinning with the blended matrices).
"""
from __future__ import annotations

import numpy as np
import torch

from .rig import Rig
from .textured_mesh import TexturedMesh

DEFAULT_FPS = 30.0


def key_times(instants: np.ndarray, capture) -> np.ndarray:
    """(K,) seconds of each instant from the first: the frames' timestamps, else instant / 30 fps."""
    stamps = {}
    if capture is not None:
        for f in capture.frames:
            if f.index is not None and f.timestamp is not None:
                stamps[int(f.index)] = float(f.timestamp)
    t = np.array([stamps.get(int(i), int(i) / DEFAULT_FPS) for i in instants], np.float64)
    t = t - t[0]
    return t if np.all(np.diff(t) > 0) else (np.asarray(instants) - instants[0]) / DEFAULT_FPS


def rig_from(source, positions: np.ndarray, normalization: np.ndarray, capture=None) -> Rig:
    """The Rig for asset vertices ``positions`` (V, 3) in original units; ``source`` offers ``skeleton()``
    and ``skin(x)`` in the normalised world (``normalization``: original -> normalised)."""
    sk = source.skeleton()
    N = np.asarray(normalization, np.float64)
    x = positions.astype(np.float64) @ N[:3, :3].T + N[:3, 3]
    joints, weights = source.skin(torch.as_tensor(x, dtype=torch.float32))
    rig = Rig(joint_names=tuple(sk["names"]), parents=np.asarray(sk["parents"], np.int64),
              bind_matrices=sk["bind"], joints=np.asarray(joints, np.int64), weights=np.asarray(weights, np.float32),
              times=key_times(sk["instants"], capture), pose_matrices=sk["pose"],
              frame_indices=np.asarray(sk["instants"], np.int64))
    return rig.transformed(np.linalg.inv(N))


def posed_at(asset: TexturedMesh, instant: int) -> TexturedMesh:
    """``asset`` posed at source frame ``instant`` (unchanged without a rig)."""
    rig = asset.rig
    if rig is None:
        return asset
    keys = np.asarray(rig.frame_indices if rig.frame_indices is not None else np.arange(rig.num_keys))
    k = int(np.searchsorted(keys, instant))
    if k < len(keys) and keys[k] == instant:
        return asset.posed(k)
    lo, hi = max(k - 1, 0), min(k, len(keys) - 1)
    if lo == hi:
        return asset.posed(lo)
    t = (instant - keys[lo]) / (keys[hi] - keys[lo])
    a, b = asset.posed(lo), asset.posed(hi)
    return a.with_(positions=((1 - t) * a.positions + t * b.positions).astype(np.float32))
