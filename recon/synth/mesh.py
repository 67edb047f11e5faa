"""A triangle mesh with its base colour, loaded with trimesh, for rendering ground truth.

Appearance, in order of preference (``load_mesh(..., appearance="auto")``):
1. a base-colour texture with per-vertex UVs: glTF ``baseColorTexture`` (times
   ``baseColorFactor``, applied in linear space as glTF specifies) or OBJ ``map_Kd``
   (the MTL ``Kd`` is ignored when a map is present, as most viewers do);
   several materials are packed into one atlas by trimesh when a scene is concatenated;
2. vertex colours, when they are not all the same;
3. otherwise a ``ProceduralTexture``: a colourful 3D pattern evaluated at the surface
   point, so that SfM finds features and photometric fitting has something to fit.
Texture alpha is ignored (surfaces are opaque).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from ..core.errors import InputError
from ..render.colorspace import linear_to_srgb, srgb_to_linear
from .procedural_texture import ProceduralTexture


@dataclass(frozen=True, eq=False)  # arrays: compare by identity
class Mesh:
    """Geometry plus base colour (at most one of texture / vertex_colors / procedural is used).

    vertices: (V, 3) float64, in the file's units and world frame (scene transforms applied).
    faces: (F, 3) int64.
    uv: (V, 2) float32 texture coordinates, (0, 0) = bottom-left of the image (OpenGL/trimesh),
        repeating outside [0, 1]; None without a texture.
    texture: (H, W, 3) float32 sRGB in [0, 1], row 0 = top of the image; or None.
    vertex_colors: (V, 3) float32 sRGB in [0, 1], interpolated across faces; or None.
    procedural: the pattern used when there is neither texture nor vertex colours.
    center, radius: the mesh's minimum bounding sphere.
    """

    vertices: np.ndarray
    faces: np.ndarray
    uv: np.ndarray | None
    texture: np.ndarray | None
    vertex_colors: np.ndarray | None
    procedural: ProceduralTexture | None
    center: np.ndarray
    radius: float
    source: str = ""

    @property
    def appearance(self) -> str:
        """"texture", "vertex_colors" or "procedural"."""
        if self.texture is not None:
            return "texture"
        return "vertex_colors" if self.vertex_colors is not None else "procedural"

    def albedo(self, face: Tensor, bary: Tensor) -> Tensor:
        """sRGB base colour (N, 3) at the surface points given by face ids (N,) and barycentrics (N, 3)."""
        corners = torch.as_tensor(self.faces, device=face.device)[face]  # (N, 3)

        def interp(attr: np.ndarray) -> Tensor:
            a = torch.as_tensor(attr, device=face.device)[corners]  # (N, 3, C)
            return (bary[..., None].to(a.dtype) * a).sum(1)

        if self.texture is not None:
            return sample_texture(torch.as_tensor(self.texture, device=face.device), interp(self.uv))
        if self.vertex_colors is not None:
            return interp(self.vertex_colors).float()
        return self.procedural(interp(self.vertices).float())

    def to_trimesh(self):
        """The geometry alone as a ``trimesh.Trimesh`` (for export as ground truth)."""
        import trimesh

        return trimesh.Trimesh(self.vertices, self.faces, process=False)


def sample_texture(texture: Tensor, uv: Tensor) -> Tensor:
    """Bilinear lookup with repeat wrapping. texture: (H, W, C) row 0 = top; uv: (N, 2) -> (N, C).

    Texel (r, c) has its centre at ``u = (c + 0.5) / W``, ``v = 1 - (r + 0.5) / H``.
    """
    H, W = texture.shape[:2]
    x = uv[:, 0].double() * W - 0.5
    y = (1.0 - uv[:, 1].double()) * H - 0.5
    x0, y0 = torch.floor(x), torch.floor(y)
    fx, fy = (x - x0).float()[:, None], (y - y0).float()[:, None]
    c0, r0 = x0.long() % W, y0.long() % H
    c1, r1 = (c0 + 1) % W, (r0 + 1) % H
    flat = texture.reshape(H * W, -1)
    top = flat[r0 * W + c0] * (1 - fx) + flat[r0 * W + c1] * fx
    bottom = flat[r1 * W + c0] * (1 - fx) + flat[r1 * W + c1] * fx
    return top * (1 - fy) + bottom * fy


def _base_color_texture(visual) -> tuple[np.ndarray, np.ndarray] | None:
    """(uv (V,2), texture (H,W,3) sRGB float32) from a trimesh TextureVisuals, or None."""
    uv = getattr(visual, "uv", None)
    mat = getattr(visual, "material", None)
    if uv is None or mat is None:
        return None
    image = getattr(mat, "baseColorTexture", None)  # PBRMaterial
    factor = getattr(mat, "baseColorFactor", None)
    if image is None:
        image, factor = getattr(mat, "image", None), None  # SimpleMaterial (OBJ map_Kd)
    if image is None:
        return None
    tex = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    if factor is not None:
        f = np.asarray(factor, dtype=np.float64)[:3]
        f = f / 255.0 if f.max() > 1.0 or np.asarray(factor).dtype == np.uint8 else f
        if not np.allclose(f, 1.0):
            tex = linear_to_srgb(srgb_to_linear(tex) * f).astype(np.float32)
    return np.asarray(uv, dtype=np.float32), tex


def _bounding_sphere(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Minimum enclosing sphere; the bounding box's sphere when qhull cannot run (flat meshes)."""
    from scipy.spatial import QhullError
    from trimesh.nsphere import minimum_nsphere

    try:
        center, radius = minimum_nsphere(points)
    except QhullError:
        center = 0.5 * (points.min(0) + points.max(0))
        radius = np.linalg.norm(points - center, axis=1).max()
    return np.asarray(center, dtype=np.float64), float(radius) if radius > 0 else 1.0


def load_mesh(path: str | Path, appearance: Literal["auto", "procedural"] = "auto", seed: int = 0) -> Mesh:
    """Load any mesh trimesh reads (ply, obj, glb, gltf, …); a scene is flattened into one mesh.

    ``appearance="procedural"`` ignores any texture or colours; ``seed`` picks the
    procedural pattern.
    """
    import trimesh

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "mesh file not found")
    try:
        loaded = trimesh.load(path)
    except Exception as exc:  # trimesh raises many kinds for unreadable files
        raise InputError(path, f"cannot read mesh ({exc.__class__.__name__}: {exc})") from exc
    if isinstance(loaded, trimesh.Scene):
        if not loaded.geometry:
            raise InputError(path, "mesh file holds no geometry")
        loaded = loaded.to_geometry()  # applies node transforms; packs materials into one atlas
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0:
        raise InputError(path, "file holds no triangle mesh (point clouds and lines are not rendered)")

    vertices = np.asarray(loaded.vertices, dtype=np.float64)
    faces = np.asarray(loaded.faces, dtype=np.int64)
    uv = texture = colors = None
    if appearance == "auto":
        visual = loaded.visual
        if visual.kind == "texture":
            found = _base_color_texture(visual)
            if found is not None:
                uv, texture = found
        elif visual.kind in ("vertex", "face"):
            c = np.asarray(visual.vertex_colors, dtype=np.float32)[:, :3] / 255.0
            if np.ptp(c, axis=0).max() > 0:
                colors = c
    elif appearance != "procedural":
        raise ValueError(f"appearance must be 'auto' or 'procedural', got {appearance!r}")

    center, radius = _bounding_sphere(vertices[np.unique(faces)])
    procedural = None
    if texture is None and colors is None:
        procedural = ProceduralTexture(tuple(float(x) for x in center), radius, seed=seed)
    return Mesh(vertices, faces, uv, texture, colors, procedural, center, radius, str(path))
