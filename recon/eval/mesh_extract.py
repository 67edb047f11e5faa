"""Minimal mesh extraction: marching cubes of an SDF (or density) evaluated on a regular grid.

The field is evaluated in chunks (only inside occupied cells when an occupancy
grid is given), pockets that no outside camera can see are filled, and
``skimage.measure.marching_cubes`` extracts the level set.
The mesh is in the field's (normalised) frame; ``to_original_units`` maps it
back with the capture's normalisation. Cleanup (largest component, hole
filling, decimation) belongs to the baker.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import Tensor

from ..core.errors import optional_import


@torch.no_grad()
def evaluate_grid(fn: Callable[[Tensor], Tensor], bound: float, resolution: int,
                  occupancy: Tensor | None = None, fill: float = 1.0, chunk: int = 1 << 17) -> np.ndarray:
    """fn (N, 3) -> (N,) on the vertices of a resolution^3 lattice over [-bound, bound]^3 (indexed [x, y, z]).

    With ``occupancy`` (G, G, G bool over the same cube), vertices in empty cells get ``fill``.
    """
    lin = torch.linspace(-bound, bound, resolution)
    out = np.full(resolution ** 3, fill, dtype=np.float32)
    idx = torch.arange(resolution ** 3)
    if occupancy is not None:
        G = occupancy.shape[0]
        ijk = torch.stack([idx // resolution ** 2, (idx // resolution) % resolution, idx % resolution], -1)
        pts = lin[ijk]
        # a vertex counts as occupied when any cell touching it is (dilate by one cell)
        occ = occupancy.cpu()
        occ = torch.nn.functional.max_pool3d(occ[None, None].float(), 3, 1, 1)[0, 0].bool()
        cell = ((pts + bound) / (2 * bound) * G).floor().long().clamp(0, G - 1)
        idx = idx[occ[cell[:, 0], cell[:, 1], cell[:, 2]]]
    for s in range(0, idx.numel(), chunk):
        i = idx[s:s + chunk]
        pts = torch.stack([lin[i // resolution ** 2], lin[(i // resolution) % resolution], lin[i % resolution]], -1)
        out[i.numpy()] = fn(pts).float().cpu().numpy()
    return out.reshape(resolution, resolution, resolution)


def fill_pockets(values: np.ndarray, level: float = 0.0) -> np.ndarray:
    """Mark as inside every "outside" region (values > level) that does not reach the grid's border.

    Such pockets cannot be seen from any camera outside the object: interior bubbles a
    NeuS fit leaves where nothing constrains it, and the unevaluated (``fill``) interior
    of an occupancy-limited grid. Returns a copy.
    """
    from scipy import ndimage

    out = values.copy()
    labels, n = ndimage.label(values > level)
    if n == 0:
        return out
    border = np.unique(np.concatenate([labels[[0, -1]].ravel(), labels[:, [0, -1]].ravel(),
                                       labels[:, :, [0, -1]].ravel()]))
    pocket = (labels > 0) & ~np.isin(labels, border)
    out[pocket] = level - np.abs(values[pocket] - level)
    return out


def marching_cubes(values: np.ndarray, bound: float, level: float = 0.0, fill_interior: bool = True):
    """Level set of ``values`` (R, R, R over [-bound, bound]^3) as a trimesh.Trimesh (empty if none).

    Faces are oriented so normals point towards increasing values (outside of an SDF).
    ``fill_interior`` first fills pockets that cannot be seen from outside (``fill_pockets``).
    """
    import trimesh

    measure = optional_import("skimage.measure", "mesh extraction", "scikit-image")
    if fill_interior:
        values = fill_pockets(values, level)
    R = values.shape[0]
    if not (values.min() < level < values.max()):
        return trimesh.Trimesh(np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64), process=False)
    verts, faces, _, _ = measure.marching_cubes(values, level=level, spacing=(2 * bound / (R - 1),) * 3)
    # skimage's default ("descent") winding already points normals towards increasing values
    return trimesh.Trimesh(verts - bound, faces, process=False)


def extract_mesh(field, resolution: int = 256, occupancy: Tensor | None = None, level: float | None = None,
                 chunk: int = 1 << 17):
    """Mesh of a fitted field in its normalised frame: SDF zero level, or density at ``level`` (default 10)."""
    bound = field.bound
    if field.kind == "sdf":
        vals = evaluate_grid(field.sdf, bound, resolution, occupancy, fill=1.0, chunk=chunk)
        return marching_cubes(vals, bound, 0.0 if level is None else level)
    thr = 10.0 if level is None else level
    # negate density so the inside is negative, like an SDF
    vals = evaluate_grid(lambda x: -field.density(x), bound, resolution, occupancy, fill=0.0, chunk=chunk)
    return marching_cubes(vals, bound, -thr)


def to_original_units(mesh, normalization: np.ndarray):
    """Apply the inverse of the capture's normalisation (original -> normalised) to a mesh copy."""
    m = mesh.copy()
    m.apply_transform(np.linalg.inv(np.asarray(normalization, dtype=np.float64)))
    return m
