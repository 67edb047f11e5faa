"""The compiled kernels as differentiable callables with the public ops' exact signatures.

``make_kernels(ext)`` wraps a loaded ``cuda_ext`` module (CPU or CUDA build) in
``torch.autograd.Function``s: gradients flow to the hash-grid table and positions, to the
compositing alphas and values and to the rasterized vertices (through the
barycentrics and depth), like the twins. Inputs the kernels do not take (dtypes other than float32)
go to the torch twin, which has the same contract.
"""
from __future__ import annotations

from types import ModuleType
from typing import Callable

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from .composite import composite_torch
from .hash_grid import HashGridSpec, hash_grid_encode_torch
from .rasterize import rasterize_torch
from .ray_march import march_rays_torch


class _HashGridEncode(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, table: Tensor, ext: ModuleType, res: list[int], offsets: list[int]) -> Tensor:
        # the indices and weights are recomputed in the backward; the table only when x needs its gradient
        ctx.save_for_backward(x, table if ctx.needs_input_grad[0] else None)
        ctx.ext, ctx.res, ctx.offsets, ctx.table_shape = ext, res, offsets, table.shape
        return ext.hash_grid_fwd(x, table, res, offsets)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        x, table = ctx.saved_tensors
        g_x = g_table = None
        if ctx.needs_input_grad[0]:
            g_x = ctx.ext.hash_grid_bwd_x(x, table, grad, ctx.res, ctx.offsets)
        if ctx.needs_input_grad[1]:
            rows, feats = ctx.table_shape
            g_table = ctx.ext.hash_grid_bwd(x, grad, ctx.res, ctx.offsets, rows, feats)
        return g_x, g_table, None, None, None


class _Composite(torch.autograd.Function):
    @staticmethod
    def forward(ctx, alphas: Tensor, values: Tensor, packed: Tensor, ext: ModuleType):
        ctx.set_materialize_grads(False)  # unused outputs reach the kernel as None, not zeros
        out, opacity, weights, trans = ext.composite_fwd(alphas, values, packed)
        ctx.save_for_backward(alphas, values, packed, trans)  # trans: the transmittance per sample
        ctx.ext = ext
        return out, opacity, weights

    @staticmethod
    @once_differentiable
    def backward(ctx, g_out, g_opacity, g_weights):
        need_a, need_v = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        if not (need_a or need_v):
            return None, None, None, None
        alphas, values, packed, trans = ctx.saved_tensors
        g_alphas, g_values = ctx.ext.composite_bwd(alphas, values, packed, trans, g_out, g_opacity, g_weights,
                                                   need_v)
        return (g_alphas if need_a else None), g_values, None, None


class _Rasterize(torch.autograd.Function):
    @staticmethod
    def forward(ctx, verts: Tensor, faces: Tensor, height: int, width: int, ext: ModuleType):
        ctx.set_materialize_grads(False)
        face_id, bary, depth = ext.rasterize_fwd(verts, faces, height, width)
        ctx.save_for_backward(verts, faces, face_id)
        ctx.ext = ext
        ctx.mark_non_differentiable(face_id)
        return face_id, bary, depth

    @staticmethod
    @once_differentiable
    def backward(ctx, _g_face_id, g_bary, g_depth):
        if not ctx.needs_input_grad[0] or (g_bary is None and g_depth is None):
            return None, None, None, None, None
        verts, faces, face_id = ctx.saved_tensors
        return ctx.ext.rasterize_bwd(verts, faces, face_id, g_bary, g_depth), None, None, None, None


def make_kernels(ext: ModuleType) -> dict[str, Callable]:
    """op name -> callable with the signature of the public op, backed by ``ext``."""

    def hash_grid_encode(x: Tensor, table: Tensor, spec: HashGridSpec) -> Tensor:
        if x.dtype != torch.float32 or table.dtype != torch.float32:
            return hash_grid_encode_torch(x, table, spec)
        return _HashGridEncode.apply(x, table, ext, list(spec.resolutions), list(spec.offsets))

    def march_rays(origins: Tensor, dirs: Tensor, near: Tensor, far: Tensor, occupancy: Tensor,
                   bound: float, step: float, max_steps: int,
                   offsets: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        floats = [origins, dirs, near, far] + ([] if offsets is None else [offsets])
        if any(t.dtype != torch.float32 for t in floats) or occupancy.dtype != torch.bool:
            return march_rays_torch(origins, dirs, near, far, occupancy, bound, step, max_steps, offsets)
        with torch.no_grad():
            packed, t_starts, t_ends = ext.march_rays(origins, dirs, near, far, occupancy, float(bound),
                                                      float(step), int(max_steps), offsets)
        return packed, t_starts, t_ends

    def composite(alphas: Tensor, values: Tensor, packed: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        if alphas.dtype != torch.float32 or values.dtype != torch.float32:
            return composite_torch(alphas, values, packed)
        return _Composite.apply(alphas, values, packed.long(), ext)

    def rasterize(verts: Tensor, faces: Tensor, height: int, width: int) -> tuple[Tensor, Tensor, Tensor]:
        shapes_ok = verts.ndim == 2 and verts.shape[1] == 3 and faces.ndim == 2 and faces.shape[1] == 3
        if verts.dtype != torch.float32 or not shapes_ok:
            return rasterize_torch(verts, faces, height, width)  # (the twin raises the shape errors)
        return _Rasterize.apply(verts, faces.long(), int(height), int(width), ext)

    return {"hash_grid_encode": hash_grid_encode, "march_rays": march_rays, "composite": composite,
            "rasterize": rasterize}
