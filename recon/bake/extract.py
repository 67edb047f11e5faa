"""Surface extraction: the field's zero level set as a closed triangle mesh in original units.

The SDF is sampled on a regular grid over [-bound, bound]^3 by
``recon.eval.grid_sampling.sample_grid`` (batched, so a 512^3 grid needs only the grid
itself in host memory; for distance fields only blocks near the surface, 3-6x fewer
queries at 256^3; with the fit's occupancy grid only near occupied cells, so floaters in
space the fit never rendered are gone). Marching cubes runs on the grid padded with an
"outside" layer, so a surface cut by the box is capped and the mesh stays closed; small
components are dropped and small holes filled.
"""
from __future__ import annotations

import numpy as np
import trimesh

from ..core.errors import ReconError
from ..core.log import get_logger
from .field_protocol import SurfaceField, field_device

log = get_logger(__name__)


def closed_level_set(volume: np.ndarray, bound: float, level: float = 0.0) -> trimesh.Trimesh:
    """Level set of a (R, R, R) grid over [-bound, bound]^3 (negative inside), normalised frame.

    The grid is padded with one layer of "outside" values, so a surface cut by the box
    is capped there and the mesh is closed. Marching cubes itself is
    ``recon.eval.mesh_extract.marching_cubes`` (normals towards increasing values).
    """
    from ..eval.mesh_extract import marching_cubes

    R = volume.shape[0]
    lo, hi = float(np.nanmin(volume)), float(np.nanmax(volume))
    if not lo < level < hi:
        raise ReconError(f"no surface at level {level}: the field is all "
                         f"{'outside' if lo >= level else 'inside'} of it over the extraction box")
    h = 2.0 * bound / (R - 1)
    outside = max(hi, level) + 1.0
    vol = np.pad(np.nan_to_num(volume, nan=outside), 1, constant_values=outside)
    return marching_cubes(vol, bound + h, level)  # the padded grid spans [-bound-h, bound+h]


def transform_points(T: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Apply a 4x4 affine transform to (N, 3) points."""
    T = np.asarray(T, dtype=np.float64)
    return pts @ T[:3, :3].T + T[:3, 3]


def keep_components(mesh: trimesh.Trimesh, min_fraction: float) -> trimesh.Trimesh:
    """Keep connected components with at least ``min_fraction`` of the largest one's faces."""
    labels = trimesh.graph.connected_component_labels(mesh.face_adjacency, node_count=len(mesh.faces))
    sizes = np.bincount(labels)
    keep = sizes >= min_fraction * sizes.max()
    if keep.all():
        return mesh
    log.info("dropping %d of %d mesh components (%d faces)", int((~keep).sum()), len(sizes),
             int(sizes[~keep].sum()))
    out = mesh.submesh([np.nonzero(keep[labels])[0]], append=True, repair=False)
    out.remove_unreferenced_vertices()
    return out


def clean_surface(mesh: trimesh.Trimesh, min_component_fraction: float) -> trimesh.Trimesh:
    """Merge duplicate vertices, drop small components, fill small holes."""
    mesh.merge_vertices()
    mesh.update_faces(mesh.nondegenerate_faces())
    mesh.update_faces(mesh.unique_faces())
    mesh.remove_unreferenced_vertices()
    mesh = keep_components(mesh, min_component_fraction)
    if not mesh.is_watertight:
        trimesh.repair.fill_holes(mesh)
    return mesh


def extract_surface(field: SurfaceField, normalization: np.ndarray | None = None, resolution: int = 256,
                    bound: float = 1.0, level: float = 0.0, chunk_points: int = 1 << 18,
                    min_component_fraction: float = 0.05, narrow_band: bool = True,
                    occupancy=None, occupancy_bound: float | None = None) -> trimesh.Trimesh:
    """The field's surface as a cleaned, closed mesh in the capture's original units.

    normalization: 4x4 original -> normalised similarity (identity when None).
    narrow_band: evaluate the fine grid only near the surface; ignored for fields whose
        values are not distances (``field.is_distance`` False, e.g. density level sets).
    occupancy: the fit's occupancy grid ((G, G, G) bool over [-occupancy_bound,
        occupancy_bound]^3, default ``bound``): only samples near occupied cells count.
    """
    from ..eval.grid_sampling import sample_grid
    from ..eval.mesh_extract import to_original_units

    vol = sample_grid(field.sdf, resolution, bound, chunk_points, level=level,
                      narrow_band=narrow_band and getattr(field, "is_distance", True), occupancy=occupancy,
                      occupancy_bound=occupancy_bound, device=field_device(field))
    mesh = closed_level_set(vol, bound, level)
    del vol
    if normalization is not None:
        mesh = to_original_units(mesh, normalization)  # inverse similarity; keeps normals outward
    mesh = clean_surface(mesh, min_component_fraction)
    log.info("extracted %d vertices, %d faces (watertight: %s)", len(mesh.vertices), len(mesh.faces),
             mesh.is_watertight)
    return mesh
