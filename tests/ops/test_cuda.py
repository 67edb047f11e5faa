"""CUDA kernels vs the torch twins on the GPU (skipped without CUDA; see tests/conftest.py)."""
from __future__ import annotations

import math

import pytest
import torch

from recon.ops import HashGridSpec, composite_torch, hash_grid_encode_torch, march_rays_torch, rasterize_torch

pytestmark = pytest.mark.cuda


@pytest.fixture(scope="module")
def gpu():
    """The CUDA kernels (built once per session)."""
    import cuda_ext
    from recon.ops.compiled import make_kernels

    return make_kernels(cuda_ext.load("cuda"))


def test_auto_picks_cuda_for_cuda_tensors(gpu):
    from recon.ops import backend

    assert backend.active_backend("cuda") == "cuda"


@pytest.mark.parametrize("n", [0, 1, 5000])
def test_hash_grid(gpu, n):
    spec = HashGridSpec(n_levels=6, n_features=2, log2_hashmap_size=12, base_resolution=4, max_resolution=96)
    gen = torch.Generator().manual_seed(n)
    x = (torch.rand(n, 3, generator=gen) * 1.4 - 0.2).cuda()
    table = torch.rand(spec.n_params, 2, generator=gen).cuda().requires_grad_()
    grad = torch.randn(n, spec.out_dim, generator=gen).cuda()
    ref, got = hash_grid_encode_torch(x, table, spec), gpu["hash_grid_encode"](x, table, spec)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6)
    g_ref, g_got = (torch.autograd.grad(o, table, grad)[0] for o in (ref, got))
    torch.testing.assert_close(g_got, g_ref, rtol=1e-5, atol=1e-4)
    x_ref, x_got = x.clone().requires_grad_(), x.clone().requires_grad_()  # positions, through the weights
    gx_ref = torch.autograd.grad(hash_grid_encode_torch(x_ref, table.detach(), spec), x_ref, grad)[0]
    gx_got = torch.autograd.grad(gpu["hash_grid_encode"](x_got, table.detach(), spec), x_got, grad)[0]
    torch.testing.assert_close(gx_got, gx_ref, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("n_rays", [0, 1, 2000])
def test_march_rays(gpu, n_rays):
    gen = torch.Generator().manual_seed(n_rays)
    o = torch.randn(n_rays, 3, generator=gen)
    o = o / o.norm(dim=-1, keepdim=True).clamp(min=1e-6) * 3
    d = -o / 3 + 0.3 * torch.randn(n_rays, 3, generator=gen)
    near, far = torch.rand(n_rays, generator=gen), 2 + 4 * torch.rand(n_rays, generator=gen)
    occ = torch.rand(32, 32, 32, generator=gen) < 0.3
    args = [t.cuda() for t in (o, d, near, far, occ)] + [1.0, 2 * math.sqrt(3) / 256, 256,
                                                         torch.rand(n_rays, generator=gen).cuda()]
    for a, b in zip(march_rays_torch(*args), gpu["march_rays"](*args)):
        assert torch.equal(a, b)


@pytest.mark.parametrize("n_rays", [0, 1, 300])
def test_composite(gpu, n_rays):
    gen = torch.Generator().manual_seed(n_rays)
    counts = torch.randint(0, 40, (n_rays,), generator=gen)
    packed = torch.stack([counts.cumsum(0) - counts, counts], 1).cuda()
    S = int(counts.sum())
    alphas0, values0 = (torch.rand(S, generator=gen) * 0.3).cuda(), torch.rand(S, 3, generator=gen).cuda()
    ups = [torch.randn(n_rays, 3).cuda(), torch.randn(n_rays).cuda(), torch.randn(S).cuda()]
    res = []
    for fn in (composite_torch, gpu["composite"]):
        a, v = alphas0.clone().requires_grad_(), values0.clone().requires_grad_()
        outs = fn(a, v, packed)
        res.append((outs, torch.autograd.grad(outs, (a, v), ups)))
    for x, y in zip(res[1][0] + res[1][1], res[0][0] + res[0][1]):
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("n_faces", [0, 1, 20000])
def test_rasterize(gpu, n_faces):
    """The GPU z-buffer keeps the nearest face per pixel (its arithmetic may fuse multiply-adds, so a
    near-tie can go the other way: 99.9 % of the pixels match), with the twin's values and gradients."""
    gen = torch.Generator().manual_seed(n_faces)
    H, W = 96, 128
    centres = torch.rand(n_faces, 1, 2, generator=gen) * torch.tensor([W, H])
    xy = centres + 3 * torch.randn(n_faces, 3, 2, generator=gen)
    z = 1 + 4 * torch.rand(n_faces, 3, 1, generator=gen)
    verts = torch.cat([xy, z], -1).reshape(-1, 3)
    faces = torch.arange(3 * n_faces).reshape(-1, 3)
    v_ref, v_got = verts.clone().requires_grad_(), verts.cuda().requires_grad_()
    ref = rasterize_torch(v_ref, faces, H, W)
    got = gpu["rasterize"](v_got, faces.cuda(), H, W)
    same = got[0].cpu() == ref[0]
    assert same.float().mean() >= 0.999
    torch.testing.assert_close(got[1].cpu()[same], ref[1][same], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(got[2].cpu()[same], ref[2][same], rtol=1e-4, atol=1e-5)
    if n_faces and same.all():
        gb, gd = torch.randn(H, W, 3, generator=gen), torch.randn(H, W, generator=gen)
        g_ref = torch.autograd.grad((ref[1], ref[2]), v_ref, (gb, gd))[0]
        g_got = torch.autograd.grad((got[1], got[2]), v_got, (gb.cuda(), gd.cuda()))[0]
        torch.testing.assert_close(g_got.cpu(), g_ref, rtol=1e-3, atol=1e-3)
