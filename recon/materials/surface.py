"""Surface attributes of a UV-mapped mesh at rasterized points, and the PBR shader built on them.

The mesh is anything shaped like ``recon.bake.TexturedMesh`` (positions, normals, uvs, faces,
tangents, normal_map, base_color, orm): this layer sits below the bake and does not import it.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..render.colorspace import linear_to_srgb, srgb_to_linear
from ..render.environment import LightProbe
from ..render.shading import shade_pbr
from ..render.texture_lookup import lookup_texture

DEFAULT_ORM = (255, 230, 0)  # a mesh without an ORM texture: occlusion 1, roughness 0.9, metallic 0


class SurfaceAttributes:
    """Interpolates a mesh's uvs and shading normals (with its tangent-space normal map, if any)."""

    def __init__(self, mesh):
        self.faces = torch.as_tensor(mesh.faces, dtype=torch.long)
        self.positions = torch.as_tensor(mesh.positions, dtype=torch.float64)
        self.normals = torch.as_tensor(mesh.normals, dtype=torch.float32)
        self.uvs = torch.as_tensor(mesh.uvs, dtype=torch.float32)
        self.tangents = None if mesh.tangents is None else torch.as_tensor(mesh.tangents, dtype=torch.float32)
        self.normal_map = None
        if mesh.normal_map is not None and mesh.tangents is not None:
            self.normal_map = torch.as_tensor(mesh.normal_map).float() / 127.5 - 1  # (S, S, 3) in [-1, 1]

    def _interp(self, values: Tensor, face: Tensor, bary: Tensor) -> Tensor:
        return (bary.to(values.dtype)[..., None] * values[self.faces[face]]).sum(1)

    def uv(self, face: Tensor, bary: Tensor) -> Tensor:
        """(N, 2) glTF uvs at the points (face ids (N,), barycentrics (N, 3))."""
        return self._interp(self.uvs, face, bary)

    def points(self, face: Tensor, bary: Tensor) -> Tensor:
        """(N, 3) float64 positions."""
        return self._interp(self.positions, face, bary)

    def tangent_frame(self, face: Tensor, bary: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(N, 3) each: the tangent T, bitangent B and smooth normal N a glTF renderer bends a normal map's
        (x, y, z) in (``tangents`` required): T orthogonalised against N, B = N x T times the handedness."""
        n = F.normalize(self._interp(self.normals, face, bary), dim=-1)
        t4 = self._interp(self.tangents, face, bary)
        t = F.normalize(t4[:, :3] - (t4[:, :3] * n).sum(-1, keepdim=True) * n, dim=-1)
        b = torch.linalg.cross(n, t) * torch.where(t4[:, 3:] < 0, -1.0, 1.0)  # handedness
        return t, b, n

    def normal(self, face: Tensor, bary: Tensor, uv: Tensor | None = None, frame: tuple | None = None) -> Tensor:
        """(N, 3) unit shading normals: the smooth vertex normal, bent by the normal map when there is one
        (``frame``: the points' ``tangent_frame``, if at hand)."""
        if self.normal_map is None:
            return F.normalize(self._interp(self.normals, face, bary), dim=-1)
        t, b, n = self.tangent_frame(face, bary) if frame is None else frame
        m = lookup_texture(self.normal_map, self.uv(face, bary) if uv is None else uv)
        return F.normalize(t * m[:, :1] + b * m[:, 1:2] + n * m[:, 2:], dim=-1)


class PbrShader:
    """``recon.render.mesh_render`` shader: a PBR mesh (sRGB base colour, ORM texture) under a light probe.

    to_light: (3, 3) rotation taking the mesh frame's directions into the light's frame (+Y up);
    exposure: a scale on the linear radiance before it is encoded to sRGB.
    """

    def __init__(self, mesh, probe: LightProbe, to_light: np.ndarray | None = None, exposure: float = 1.0):
        self.surface = SurfaceAttributes(mesh)
        self.albedo = srgb_to_linear(torch.as_tensor(mesh.base_color).float() / 255)
        orm = mesh.orm if mesh.orm is not None else np.array([[DEFAULT_ORM]], np.uint8)
        self.orm = torch.as_tensor(orm).float() / 255
        self.probe = probe
        self.R = torch.eye(3) if to_light is None else torch.as_tensor(np.asarray(to_light)[:3, :3], dtype=torch.float32)
        self.exposure = exposure

    def __call__(self, face: Tensor, bary: Tensor, view: Tensor) -> Tensor:
        uv = self.surface.uv(face, bary)
        n = self.surface.normal(face, bary, uv)
        orm = lookup_texture(self.orm, uv)
        rgb = shade_pbr(lookup_texture(self.albedo, uv), orm[:, 1], orm[:, 2], n @ self.R.T, view @ self.R.T, self.probe)
        return linear_to_srgb((rgb * self.exposure).clamp(0, 1))
