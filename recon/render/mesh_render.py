"""The mesh renderer: a textured mesh from ``Cameras`` into colour, alpha, depth and normals (exact).

Everything that draws a mesh goes through here: ``recon.synth`` (ground truth), the bake's
previews, turntables and comparisons. Visibility is ``recon.ops.rasterize`` (the compiled
kernel, or its torch twin).

The mesh is anything with ``vertices`` (V, 3), ``faces`` (F, 3) and ``albedo(face, bary)``
returning (N, 3) sRGB base colour at surface points (``recon.synth.Mesh``, a baked asset through
``recon.bake.preview.synth_mesh``).

Colour is the mesh's base colour, unlit by default: the texture is treated as
sRGB and copied as-is, so every view sees the same colour at a surface point (what
an albedo / radiance field should recover). ``shading="lambert"`` multiplies it by
a fixed-direction diffuse light plus ambient, for images that look more natural.
A ``shader`` (``Shader``: e.g. ``recon.materials.PbrShader``, PBR materials under an
environment light) replaces both and gives the colour from the surface point and the view.

Anti-aliasing: colour and alpha are rendered at ``supersample`` times the size and
box-filtered. Depth and normals are exact values at the pixel centres (one extra
pass at the output size), so they never mix foreground with background: ``depth``
is the camera-space z of the surface hit by the ray through the pixel centre (0
where it hits nothing), ``normal`` the world-space normal of that face, following
the face winding (outward for a consistently wound closed mesh; 0 on background).
A pixel on the silhouette may therefore have alpha in (0, 1) but depth 0.
"""
from __future__ import annotations

from typing import Callable, Literal, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from ..core.types import Cameras
from ..ops.rasterize import rasterize
from .mesh_raster import screen_vertices


class SurfaceMesh(Protocol):
    vertices: np.ndarray  # (V, 3)
    faces: np.ndarray  # (F, 3) int

    def albedo(self, face: torch.Tensor, bary: torch.Tensor) -> torch.Tensor:
        """(N, 3) sRGB base colour at N surface points (face ids (N,), barycentrics (N, 3))."""


# shader(face (N,), bary (N, 3), view (N, 3) unit directions from the points to the camera) -> (N, 3) sRGB
Shader = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def render_views(mesh: SurfaceMesh, cameras: Cameras, *, supersample: int = 2,
                 shading: Literal["unlit", "lambert"] = "unlit", background=(1.0, 1.0, 1.0),
                 light_dir=(0.3, -1.0, 0.4), ambient: float = 0.35,
                 shader: Shader | None = None) -> list[dict[str, np.ndarray]]:
    """Render every camera. Returns one dict per view with float32 arrays:

    rgb (H, W, 3) sRGB in [0, 1], composited over ``background``;
    alpha (H, W) coverage in [0, 1]; depth (H, W) camera z at pixel centres (0 = background);
    normal (H, W, 3) world-space unit face normal at pixel centres (0 = background).

    ``light_dir`` (world, pointing from the light) and ``ambient`` are used with
    ``shading="lambert"`` only; a ``shader`` overrides ``shading``.
    """
    if cameras.has_distortion:
        raise ValueError("render_views draws pinhole cameras only; these cameras have distortion")
    if shading not in ("unlit", "lambert"):
        raise ValueError(f"shading must be 'unlit' or 'lambert', got {shading!r}")
    ss = int(supersample)
    verts = torch.as_tensor(mesh.vertices, dtype=torch.float64)
    faces = torch.as_tensor(mesh.faces, dtype=torch.long)
    tri = verts[faces]
    fn = torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    face_normals = (fn / fn.norm(dim=1, keepdim=True).clamp_min(1e-30)).float()  # (F, 3)
    bg = torch.as_tensor(background, dtype=torch.float32)
    light = -torch.as_tensor(light_dir, dtype=torch.float32)
    light = light / light.norm()
    big = cameras.scaled(ss)

    views = []
    for i in range(len(cameras)):
        H, W = int(cameras.height[i]), int(cameras.width[i])
        # colour and coverage at ss x ss samples per pixel
        fid, bary, _ = rasterize(screen_vertices(verts, big, i), faces, H * ss, W * ss)
        hit = fid >= 0
        color = torch.zeros(H * ss, W * ss, 3)
        if hit.any():
            f = fid[hit]
            if shader is not None:
                eye = torch.as_tensor(cameras.c2w[i, :3, 3], dtype=torch.float64)
                points = (bary[hit].double()[..., None] * tri[f]).sum(1)
                c = shader(f, bary[hit], F.normalize(eye - points, dim=-1).float())
            else:
                c = mesh.albedo(f, bary[hit])
            if shader is None and shading == "lambert":
                n = face_normals[f]
                view = torch.as_tensor(cameras.c2w[i, :3, 2], dtype=torch.float32)
                n = torch.where((n @ view)[:, None] > 0, -n, n)  # the side facing the camera
                c = c * (ambient + (1.0 - ambient) * (n @ light).clamp_min(0.0))[:, None]
            color[hit] = c.float()
        # premultiplied box filter
        alpha = F.avg_pool2d(hit.float()[None, None], ss)[0, 0]
        premult = F.avg_pool2d(color.permute(2, 0, 1)[None], ss)[0].permute(1, 2, 0)
        rgb = premult + (1.0 - alpha)[..., None] * bg

        # geometry at the pixel centres
        fid1, _, depth = rasterize(screen_vertices(verts, cameras, i), faces, H, W)
        normal = torch.zeros(H, W, 3)
        normal[fid1 >= 0] = face_normals[fid1[fid1 >= 0]]
        views.append({"rgb": rgb.clamp(0, 1).numpy(), "alpha": alpha.numpy(),
                      "depth": depth.float().numpy(), "normal": normal.numpy()})
    return views
