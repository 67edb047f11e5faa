"""UV unwrapping with xatlas: charts cut along seams, packed into one square texture.

Texture coordinates follow glTF: ``(0, 0)`` is the top-left corner of the image,
``u`` grows to the right and ``v`` downwards, so texel ``(row, col)`` covers
``u in [col, col+1] / size``, ``v in [row, row+1] / size``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh

from ..core.log import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class UVLayout:
    """A mesh cut along its UV seams.

    vmapping: (V',) int64, the source-mesh vertex of each new vertex.
    faces: (F, 3) int64 triangles over the new vertices (same order as the source faces).
    uvs: (V', 2) float32 texture coordinates in [0, 1] (glTF convention, see module docstring).
    charts: number of UV charts.
    """

    vmapping: np.ndarray
    faces: np.ndarray
    uvs: np.ndarray
    charts: int


def unwrap(mesh: trimesh.Trimesh, texture_size: int = 1024, padding: int = 4) -> UVLayout:
    """Unwrap ``mesh`` into charts packed for a ``texture_size`` square texture.

    ``padding`` texels separate charts so bilinear filtering and mip-maps of the
    dilated texture do not bleed between them.
    """
    import xatlas

    atlas = xatlas.Atlas()
    # UVs do not depend on scale, but xatlas treats faces below a fixed area as degenerate (each its
    # own tiny chart): unwrap the mesh scaled to a unit box, whatever the capture's units
    v = np.asarray(mesh.vertices, np.float64)
    v = (v - v.min(0)) / max(float(np.ptp(v, axis=0).max()), 1e-12)
    atlas.add_mesh(v.astype(np.float32), np.asarray(mesh.faces, np.uint32))
    charts = xatlas.ChartOptions()
    charts.max_iterations = 1  # more iterations grow fewer, larger charts at 2x the time
    pack = xatlas.PackOptions()
    pack.bilinear = True
    pack.padding = int(padding)
    # xatlas picks texels-per-unit so the charts fill about texture_size^2 texels; the atlas
    # may come out slightly larger or non-square, so its uvs are rescaled to a square below.
    pack.resolution = int(texture_size)
    atlas.generate(charts, pack)
    vmapping, indices, uvs = atlas[0]
    w, h = atlas.width, atlas.height
    side = max(w, h)
    uvs = (uvs * np.array([w, h], np.float32) / side).astype(np.float32)
    log.info("uv atlas: %d charts, %dx%d texels scaled to %d, utilization %.2f", atlas.chart_count, w, h,
             texture_size, atlas.utilization)
    return UVLayout(np.asarray(vmapping, np.int64), np.asarray(indices, np.int64), uvs, int(atlas.chart_count))
