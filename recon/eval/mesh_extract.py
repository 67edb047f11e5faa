"""Minimal mesh extraction: marching cubes of an SDF (or density) evaluated on a regular grid.

The field is sampled by ``recon.eval.grid_sampling`` (only near occupied cells when an
occupancy grid is given), pockets that no outside camera can see are filled, and
``skimage.measure.marching_cubes`` extracts the level set.
The mesh is in the field's (normalised) frame; ``to_original_units`` maps it
back with the capture's normalisation. Cleanup (largest component, hole
filling, decimation) belongs to the baker.
"""
from __future__ import annotations

import numpy as np
from torch import Tensor

from ..core.errors import optional_import


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
    """Mesh of a fitted field in its normalised frame: SDF zero level, or density at ``level`` (default 10).

    occupancy: the fit's occupancy grid (G, G, G bool over the field's bound): only samples
    near occupied cells are evaluated (``recon.eval.grid_sampling``).
    """
    from .grid_sampling import sample_grid

    bound = field.bound
    if field.kind == "sdf":
        fn, lvl = field.sdf, (0.0 if level is None else level)
    else:  # inside where density > threshold, negative like an SDF
        thr = 10.0 if level is None else level
        fn, lvl = (lambda x: thr - field.density(x)), 0.0
    vals = sample_grid(fn, resolution, bound, chunk, level=lvl, narrow_band=field.kind == "sdf",
                       occupancy=occupancy, occupancy_bound=bound)
    return marching_cubes(vals, bound, lvl)


def to_original_units(mesh, normalization: np.ndarray):
    """Apply the inverse of the capture's normalisation (original -> normalised) to a mesh copy."""
    m = mesh.copy()
    m.apply_transform(np.linalg.inv(np.asarray(normalization, dtype=np.float64)))
    return m
