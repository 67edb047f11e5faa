"""recon.materials: PBR materials and the capture's light, fitted on the baked mesh.

    from recon.materials import fit_materials, PbrShader
    fit = fit_materials(radiance_mesh, capture, normalization)   # albedo, ORM, environment, stats
    views = render_views(mesh, cams, shader=PbrShader(pbr_mesh, LightProbe.from_map(env)))
"""
from .inverse import MaterialFit, fit_materials, per_channel_scale
from .surface import PbrShader, SurfaceAttributes

__all__ = ["fit_materials", "MaterialFit", "per_channel_scale", "PbrShader", "SurfaceAttributes"]
