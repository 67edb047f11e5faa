"""Compiled rasterizer vs its torch twin: the same faces, barycentrics and depth, and the same gradients."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from recon.ops.rasterize import rasterize_torch


def _soup(F: int, H: int, W: int, seed: int, scale: float = 6.0) -> tuple[torch.Tensor, torch.Tensor]:
    """F random triangles (float32 screen space), some sharing edges, some partly off-screen."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform([-3, -3], [W + 3, H + 3], size=(F, 1, 2))
    xy = centres + rng.normal(scale=scale, size=(F, 3, 2))
    z = rng.uniform(1.0, 5.0, size=(F, 3))
    verts = np.concatenate([xy, z[..., None]], -1).reshape(-1, 3)
    faces = np.arange(3 * F).reshape(F, 3)
    if F > 2:
        faces[1, :2] = faces[0, [1, 0]]  # a shared edge, wound the other way
    return torch.tensor(verts, dtype=torch.float32), torch.tensor(faces)


def _grid(n: int, H: int, W: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A bumpy grid mesh of 2 (n - 1)^2 faces covering the view, some vertices exactly on pixel centres."""
    g = torch.Generator().manual_seed(seed)
    u, v = torch.meshgrid(torch.linspace(-2, W + 2, n), torch.linspace(-2, H + 2, n), indexing="xy")
    z = 2 + torch.rand(n, n, generator=g)
    verts = torch.stack([u, v, z], -1).reshape(-1, 3)
    verts[::7, :2] = torch.floor(verts[::7, :2]) + 0.5
    idx = torch.arange(n * n).reshape(n, n)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
    return verts.float(), torch.cat([torch.stack([a, b, d], 1), torch.stack([a, d, c], 1)])


def _compare(cpp, verts, faces, H, W, seed=0):
    """Forward bitwise equal; gradients of a random loss on bary and depth close to the twin's."""
    v_t, v_c = verts.clone().requires_grad_(), verts.clone().requires_grad_()
    ref = rasterize_torch(v_t, faces, H, W)
    got = cpp["rasterize"](v_c, faces, H, W)
    assert torch.equal(got[0], ref[0]), f"{(got[0] != ref[0]).sum()} pixels pick another face"
    assert torch.equal(got[1], ref[1]) and torch.equal(got[2], ref[2])
    if (ref[0] >= 0).any():
        gen = torch.Generator().manual_seed(seed)
        gb, gd = torch.randn(H, W, 3, generator=gen), torch.randn(H, W, generator=gen)
        (g_ref,) = torch.autograd.grad((ref[1], ref[2]), v_t, (gb, gd))
        (g_got,) = torch.autograd.grad((got[1], got[2]), v_c, (gb, gd))
        scale = float(g_ref.abs().max())
        # both float32, by different formulas: a few digits differ where corners nearly coincide
        torch.testing.assert_close(g_got, g_ref, rtol=1e-3, atol=1e-4 * max(scale, 1.0))
    return ref


@pytest.mark.parametrize("F,H,W,seed", [(1, 9, 7, 0), (12, 23, 31, 1), (200, 64, 48, 2), (3000, 128, 128, 3)])
def test_matches_twin_on_triangle_soups(cpp, F, H, W, seed):
    verts, faces = _soup(F, H, W, seed)
    ref = _compare(cpp, verts, faces, H, W, seed)
    assert F == 1 or (ref[0] >= 0).float().mean() > 0.2  # the scene covers pixels


@pytest.mark.parametrize("n,H,W", [(9, 16, 16), (40, 96, 80)])
def test_matches_twin_on_meshes_with_shared_edges_and_ties(cpp, n, H, W):
    verts, faces = _grid(n, H, W, seed=n)
    ref = _compare(cpp, verts, faces, H, W)
    assert (ref[0] >= 0).all()  # a closed sheet: no cracks between faces
    # coincident copies: ties on depth go to the lower face index
    ref = _compare(cpp, verts, torch.cat([faces, faces]), H, W)
    assert int(ref[0].max()) < len(faces)


def test_big_views_take_the_banded_path(cpp, n_threads):
    """Views too big for a z-buffer per thread are drawn in bands of rows: the same results, on 1 and 2 threads."""
    verts, faces = _soup(300, 1500, 1450, seed=7, scale=90.0)  # 8 bytes a pixel: > 16 MiB on one thread
    faces = torch.cat([faces, faces])  # ties across bands' face lists
    for t in (1, 2):
        n_threads(t)
        ref = _compare(cpp, verts, faces, 1500, 1450, seed=t)
        assert (ref[0] >= 0).float().mean() > 0.2 and int(ref[0].max()) < len(faces) // 2


def test_skips_what_cannot_be_drawn(cpp):
    """Behind the camera, zero area, NaN or infinite corners, off-screen: no pixel, and no crash."""
    verts = torch.tensor([[0.0, 0, 1], [8, 0, 1], [0, 8, -1],  # a corner behind the camera
                          [0, 0, 1], [4, 4, 1], [8, 8, 1],  # zero area
                          [1, 1, 1], [7, 1, float("nan")], [1, 7, 1],
                          [1, 1, 1], [float("inf"), 1, 1], [1, 7, 1],
                          [100, 100, 1], [140, 100, 1], [100, 140, 1],  # off-screen
                          [-1e30, -1e30, 2], [1e30, 0, 2], [0, 1e30, 2]])  # huge, covering everything
    faces = torch.arange(18).reshape(6, 3)
    ref = _compare(cpp, verts, faces, 8, 8)
    assert set(ref[0].unique().tolist()) <= {-1, 5}
    _compare(cpp, verts, faces[:5], 8, 8)
    for H, W in ((0, 5), (5, 0)):
        fid, bary, depth = cpp["rasterize"](verts, faces, H, W)
        assert fid.shape == (H, W) and bary.shape == (H, W, 3) and depth.shape == (H, W)
    fid, _, _ = cpp["rasterize"](verts, faces[:0], 4, 4)
    assert (fid == -1).all()


def test_gradient_of_one_output_at_a_time(cpp):
    verts, faces = _soup(50, 32, 32, seed=5)
    for pick in (1, 2):
        v_t, v_c = verts.clone().requires_grad_(), verts.clone().requires_grad_()
        ref = rasterize_torch(v_t, faces, 32, 32)[pick]
        got = cpp["rasterize"](v_c, faces, 32, 32)[pick]
        up = torch.randn(ref.shape, generator=torch.Generator().manual_seed(pick))
        torch.testing.assert_close(torch.autograd.grad(got, v_c, up)[0], torch.autograd.grad(ref, v_t, up)[0],
                                   rtol=1e-4, atol=1e-4)


def test_same_result_on_any_thread_count(cpp, n_threads):
    verts, faces = _grid(30, 100, 70, seed=1)
    verts.requires_grad_()
    up = torch.randn(100, 70, 3, generator=torch.Generator().manual_seed(0))
    outs = []
    for t in (1, 2, 3):
        n_threads(t)
        fid, bary, depth = cpp["rasterize"](verts, faces, 100, 70)
        outs.append((fid, bary, depth, torch.autograd.grad(bary, verts, up)[0]))
    for o in outs[1:]:
        assert all(torch.equal(a, b) for a, b in zip(o, outs[0]))


def test_other_dtypes_and_bad_input_go_to_the_twin_or_fail_clearly(cpp):
    verts, faces = _soup(20, 16, 16, seed=2)
    ref = rasterize_torch(verts.double(), faces, 16, 16)
    got = cpp["rasterize"](verts.double(), faces, 16, 16)  # float64: the twin
    assert got[1].dtype == torch.float64 and torch.equal(got[0], ref[0])
    with pytest.raises(ValueError, match=r"verts must be \(V, 3\)"):
        cpp["rasterize"](verts[:, :2], faces, 16, 16)
    with pytest.raises(RuntimeError, match="faces index outside"):
        cpp["rasterize"](verts, faces + 1000, 16, 16)


def test_public_op_uses_the_kernel(cpu_ext):  # cpu_ext: the extension is built
    """``recon.ops.rasterize`` on CPU float32 runs the compiled kernel under the auto backend."""
    from recon.ops import backend, rasterize

    verts, faces = _soup(100, 40, 40, seed=9)
    calls = []
    kernel = backend.get_kernel("rasterize", "cpu")
    assert kernel is not None
    try:
        backend._KERNELS["cpu"]["rasterize"] = lambda *a: calls.append(1) or kernel(*a)
        out = rasterize(verts, faces, 40, 40)
    finally:
        backend._KERNELS["cpu"]["rasterize"] = kernel
    assert calls == [1]
    assert torch.equal(out[0], rasterize_torch(verts, faces, 40, 40)[0])
