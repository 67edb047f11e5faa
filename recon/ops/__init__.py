"""Hot ops: one public function per kernel, each with a pure-PyTorch twin ``<op>_torch``.

The public function dispatches to the compiled extension (``cuda_ext``) by the
active backend (see ``recon.ops.backend``); the twin is the readable,
differentiable reference the kernels are tested against.
"""
from .composite import composite, composite_torch
from .hash_grid import HashGridSpec, hash_grid_encode, hash_grid_encode_torch
from .rasterize import rasterize, rasterize_torch
from .ray_march import march_rays, march_rays_torch

__all__ = [
    "HashGridSpec", "hash_grid_encode", "hash_grid_encode_torch",
    "march_rays", "march_rays_torch", "composite", "composite_torch",
    "rasterize", "rasterize_torch",
]
