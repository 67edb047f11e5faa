"""Mesh clean-up and quadric decimation to a triangle budget.

Decimation is Garland-Heckbert quadric edge collapse (``fast-simplification``, a
wrapper of Fast-Quadric-Mesh-Simplification). Clean-up removes what breaks UV
unwrapping and exporters: degenerate and duplicate faces, faces on edges shared by
more than two faces (non-manifold), unreferenced vertices; holes left small are filled.
"""
from __future__ import annotations

import numpy as np
import trimesh

from ..core.log import get_logger

log = get_logger(__name__)


def remove_nonmanifold_faces(mesh: trimesh.Trimesh) -> int:
    """Drop faces on edges used by more than two faces (keeping the first two); returns how many."""
    edges = mesh.edges_sorted  # (3F, 2), row e belongs to face e // 3
    _, inverse, counts = np.unique(edges, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    if counts.max(initial=0) <= 2:
        return 0
    # rank of each edge occurrence among the occurrences of the same edge
    order = np.argsort(inverse, kind="stable")
    starts = np.cumsum(counts) - counts
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order)) - starts[inverse[order]]
    bad = np.unique(np.nonzero(rank >= 2)[0] // 3)
    keep = np.ones(len(mesh.faces), dtype=bool)
    keep[bad] = False
    mesh.update_faces(keep)
    return len(bad)


def repair(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """Clean a mesh in place for export: see the module docstring. Returns it."""
    mesh.merge_vertices()
    mesh.update_faces(mesh.nondegenerate_faces())
    mesh.update_faces(mesh.unique_faces())
    n_bad = remove_nonmanifold_faces(mesh)
    if n_bad:
        log.info("removed %d non-manifold faces", n_bad)
    mesh.remove_unreferenced_vertices()
    if not mesh.is_winding_consistent:
        trimesh.repair.fix_winding(mesh)
    if not mesh.is_watertight:
        trimesh.repair.fill_holes(mesh)
    return mesh


def decimate(mesh: trimesh.Trimesh, target_faces: int, aggressiveness: float = 7.0) -> trimesh.Trimesh:
    """A repaired copy of ``mesh`` with about ``target_faces`` triangles (quadric edge collapse).

    A mesh already within budget is only repaired.
    """
    import fast_simplification

    if len(mesh.faces) > target_faces:
        verts, faces = fast_simplification.simplify(
            np.asarray(mesh.vertices, np.float64), np.asarray(mesh.faces, np.int32),
            target_count=int(target_faces), agg=aggressiveness)
        out = trimesh.Trimesh(verts, faces, process=False)
    else:
        out = mesh.copy()
    out = repair(out)
    log.info("decimated %d -> %d faces (watertight: %s)", len(mesh.faces), len(out.faces), out.is_watertight)
    return out
