"""The baked asset in memory: a UV-mapped triangle mesh with PBR textures, what writers write."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .rig import Rig


@dataclass(frozen=True)
class TexturedMesh:
    """A UV-mapped mesh with its textures, in the asset's frame (the capture's units, +Y up).

    positions: (V, 3) float32; vertices are split along UV seams.
    normals: (V, 3) float32 unit smooth vertex normals (equal on both sides of a seam).
    uvs: (V, 2) float32 in glTF convention: (0, 0) is the image's top-left, v grows downwards.
    faces: (F, 3) int64 triangles, counter-clockwise seen from outside.
    base_color: (H, W, 3) uint8, sRGB-encoded.
    normal_map: (H, W, 3) uint8 tangent-space normals, linear, +Y up in the image (glTF/OpenGL), or None.
    orm: (H, W, 3) uint8 linear occlusion (R), roughness (G), metallic (B), or None.
    tangents: (V, 4) float32 unit tangents (+u direction) with handedness w = ±1; the bitangent
        ``cross(normal, tangent.xyz) * w`` points up the image. Needed with a normal map.
    vertex_colors: (V, 3) uint8 sRGB colour at each vertex (PLY), or None.
    material: "pbr" (base colour is albedo, lit by a renderer) or "radiance" (base colour is the
        captured radiance, lighting included: writers flag it unlit, previews render it unlit).
    rig: skeleton, skin weights (one row per vertex) and animation (``recon.bake.rig.Rig``), or None;
        the positions are its rest pose (what OBJ/PLY get); the glb writer adds skin and animation.
    morph_positions: (K, V, 3) float32 position offsets of K blend shapes (glTF morph targets), or None;
        morph_names: their K names (written as the mesh's ``extras.targetNames``).
    morph_times: (T,) seconds and morph_weights: (T, K) the shapes' weights over time (a glTF animation
        "expressions" of the mesh's weights), or None.
    """

    positions: np.ndarray
    normals: np.ndarray
    uvs: np.ndarray
    faces: np.ndarray
    base_color: np.ndarray
    normal_map: np.ndarray | None = None
    orm: np.ndarray | None = None
    tangents: np.ndarray | None = None
    vertex_colors: np.ndarray | None = None
    material: str = "pbr"
    rig: Rig | None = None
    morph_positions: np.ndarray | None = None
    morph_names: tuple[str, ...] = ()
    morph_times: np.ndarray | None = None
    morph_weights: np.ndarray | None = None

    def __post_init__(self):
        if self.material not in ("pbr", "radiance"):
            raise ValueError(f"material must be 'pbr' or 'radiance', got {self.material!r}")
        v = len(self.positions)
        for name in ("normals", "uvs", "tangents", "vertex_colors"):
            a = getattr(self, name)
            if a is not None and len(a) != v:
                raise ValueError(f"{name} has {len(a)} rows for {v} vertices")
        if self.rig is not None and len(self.rig.joints) != v:
            raise ValueError(f"rig has skin weights for {len(self.rig.joints)} vertices, the mesh has {v}")
        if self.morph_positions is not None and (self.morph_positions.shape[1:] != (v, 3)
                                                 or len(self.morph_names) != len(self.morph_positions)):
            raise ValueError(f"morph_positions must be (K, {v}, 3) with K names, got "
                             f"{self.morph_positions.shape} and {len(self.morph_names)} names")
        if self.morph_weights is not None and (self.morph_positions is None or self.morph_times is None
                                               or self.morph_weights.shape != (len(self.morph_times),
                                                                               len(self.morph_positions))):
            raise ValueError("morph_weights must be (T, K) with morph_times (T,) and K morph targets")
        if self.faces.ndim != 2 or self.faces.shape[1] != 3:
            raise ValueError(f"faces must be (F, 3), got {self.faces.shape}")
        if len(self.faces) and (self.faces.min() < 0 or self.faces.max() >= v):
            raise ValueError("faces index vertices out of range")

    @property
    def texture_size(self) -> tuple[int, int]:
        """(height, width) of the textures."""
        return self.base_color.shape[:2]

    def colors_at_vertices(self) -> np.ndarray:
        """(V, 3) uint8: ``vertex_colors`` if set, else the base colour texture at each vertex's uv."""
        if self.vertex_colors is not None:
            return self.vertex_colors
        h, w = self.texture_size
        col = np.clip((self.uvs[:, 0] * w).astype(np.int64), 0, w - 1)
        row = np.clip((self.uvs[:, 1] * h).astype(np.int64), 0, h - 1)
        return self.base_color[row, col]

    def with_(self, **changes) -> "TexturedMesh":
        return replace(self, **changes)

    @property
    def unlit(self) -> bool:
        return self.material == "radiance"

    def transformed(self, T: np.ndarray) -> "TexturedMesh":
        """The mesh moved by the rigid 4x4 ``T`` (positions, normals, tangents and the rig)."""
        R, t = np.asarray(T, np.float64)[:3, :3], np.asarray(T, np.float64)[:3, 3]
        tangents = None
        if self.tangents is not None:
            tangents = self.tangents.copy()
            tangents[:, :3] = (self.tangents[:, :3] @ R.T).astype(np.float32)
        return replace(self, positions=(self.positions @ R.T + t).astype(np.float32),
                       normals=(self.normals @ R.T).astype(np.float32), tangents=tangents,
                       rig=None if self.rig is None else self.rig.transformed(T))

    def posed(self, k: int) -> "TexturedMesh":
        """The mesh at the rig's animation key ``k`` (linear blend skinning), without the rig."""
        if self.rig is None:
            raise ValueError("the mesh has no rig to pose")
        rig, tangents = self.rig, self.tangents
        if tangents is not None:
            tangents = np.concatenate([rig.posed_directions(tangents[:, :3], k), tangents[:, 3:]], 1)
        return replace(self, positions=rig.pose(self.positions, k), normals=rig.posed_directions(self.normals, k),
                       tangents=tangents, rig=None)

    def to_trimesh(self, textured: bool = True):
        """A ``trimesh.Trimesh`` with the base colour texture (PBR material) or vertex colours."""
        import trimesh
        from PIL import Image

        mesh = trimesh.Trimesh(self.positions, self.faces, vertex_normals=self.normals, process=False)
        if textured:
            mat = trimesh.visual.material.PBRMaterial(
                baseColorTexture=Image.fromarray(self.base_color),
                normalTexture=None if self.normal_map is None else Image.fromarray(self.normal_map),
                metallicRoughnessTexture=None if self.orm is None else Image.fromarray(self.orm))
            # trimesh's uvs are OpenGL-style (v up)
            uv = np.stack([self.uvs[:, 0], 1.0 - self.uvs[:, 1]], -1)
            mesh.visual = trimesh.visual.TextureVisuals(uv=uv, material=mat)
        else:
            mesh.visual = trimesh.visual.ColorVisuals(mesh, vertex_colors=self.colors_at_vertices())
        return mesh
