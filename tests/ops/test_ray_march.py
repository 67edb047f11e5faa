"""Compiled ray marching vs its torch twin: the same samples, bit for bit."""
from __future__ import annotations

import math

import pytest
import torch

from recon.ops.ray_march import march_rays_torch


def _rays(n: int, gen: torch.Generator, spread: float = 0.3):
    """Rays from a sphere of radius 3 towards the unit cube; some miss it, dirs not normalised."""
    o = torch.randn(n, 3, generator=gen)
    o = o / o.norm(dim=-1, keepdim=True) * 3
    d = -o / 3 + spread * torch.randn(n, 3, generator=gen)
    d = d * (0.5 + torch.rand(n, 1, generator=gen))
    near = torch.rand(n, generator=gen) * 2
    far = near + torch.rand(n, generator=gen) * 6
    return o, d, near, far


def _same(cpp, *args):
    ref = march_rays_torch(*args)
    got = cpp["march_rays"](*args)
    names = ("packed", "t_starts", "t_ends")
    for name, a, b in zip(names, ref, got):
        assert a.dtype == b.dtype and a.shape == b.shape, f"{name}: {b.dtype}{tuple(b.shape)} vs {a.dtype}{tuple(a.shape)}"
        assert torch.equal(a, b), f"{name} differs"
    return got


@pytest.mark.parametrize("n_rays,G,density,jitter", [
    (0, 8, 0.5, False), (1, 8, 0.5, True), (37, 16, 0.3, False), (500, 32, 0.2, True), (3000, 64, 0.05, True),
])
def test_matches_twin(cpp, n_rays, G, density, jitter):
    gen = torch.Generator().manual_seed(n_rays)
    o, d, near, far = _rays(n_rays, gen)
    occ = torch.rand(G, G, G, generator=gen) < density
    offsets = torch.rand(n_rays, generator=gen) if jitter else None
    packed, t_starts, _ = _same(cpp, o, d, near, far, occ, 1.0, 2 * math.sqrt(3) / 256, 256, offsets)
    if n_rays > 1:
        assert t_starts.numel() > 0 and (packed[:, 1] == 0).any()  # some rays kept samples, some none


def test_rays_with_no_samples(cpp):
    gen = torch.Generator().manual_seed(0)
    o, d, near, far = _rays(64, gen)
    occ = torch.rand(16, 16, 16, generator=gen) < 0.5
    step = 0.01
    packed, t_starts, _ = _same(cpp, o, d, near, far, torch.zeros_like(occ), 1.0, step, 512)  # empty grid
    assert t_starts.numel() == 0 and packed[:, 1].sum() == 0
    _same(cpp, o, d, far, near, occ, 1.0, step, 512)  # far < near
    _same(cpp, o, d, near, far, occ, 1.0, step, 0)  # max_steps 0
    _same(cpp, o + 10.0, d, near, far, occ, 1.0, step, 512)  # the cube is behind / beside every ray


def test_midpoints_on_cell_boundaries(cpp):
    """Axis-aligned rays whose midpoints fall exactly on cell faces (and rays along faces)."""
    G, bound = 8, 1.0
    cell = 2 * bound / G
    coords = torch.tensor([-1.0, -0.75, -0.5, 0.0, 0.25, 0.999, 1.0])  # faces, the cube's faces, inside
    yz = torch.cartesian_prod(coords, coords)
    n = yz.shape[0]
    o = torch.cat([torch.full((n, 1), -1.5), yz], 1)
    d = torch.tensor([[1.0, 0.0, 0.0]]).expand(n, 3).contiguous()
    near, far = torch.zeros(n), torch.full((n,), 3.0)
    # mid = -1.5 + (k + 1) * cell / 2: every other midpoint is a face x = -1 + j * cell
    offsets = torch.full((n,), 0.5)
    occ = torch.rand(G, G, G, generator=torch.Generator().manual_seed(1)) < 0.5
    _, t_starts, _ = _same(cpp, o, d, near, far, occ, bound, cell / 2, 64, offsets)
    assert t_starts.numel() > 0
    # the same along y and z
    _same(cpp, o[:, [1, 0, 2]], d[:, [1, 0, 2]], near, far, occ, bound, cell / 2, 64, offsets)
    _same(cpp, o[:, [1, 2, 0]], d[:, [1, 2, 0]], near, far, occ, bound, cell / 2, 64, offsets)


def test_max_steps_cuts_long_rays(cpp):
    gen = torch.Generator().manual_seed(2)
    o, d, near, far = _rays(200, gen)
    occ = torch.ones(4, 4, 4, dtype=torch.bool)
    packed, _, _ = _same(cpp, o, d, near, far + 100, occ, 1.0, 0.001, 300)
    assert packed[:, 1].max() <= 300


def test_more_threads_than_cores(cpp, n_threads):
    n_threads(3)
    gen = torch.Generator().manual_seed(3)
    o, d, near, far = _rays(1000, gen)
    occ = torch.rand(32, 32, 32, generator=gen) < 0.3
    _same(cpp, o, d, near, far, occ, 1.0, 0.01, 800, torch.rand(1000, generator=gen))


def test_non_float32_uses_the_twin(cpp):
    gen = torch.Generator().manual_seed(4)
    o, d, near, far = (t.double() for t in _rays(20, gen))
    occ = torch.ones(8, 8, 8, dtype=torch.bool)
    _same(cpp, o, d, near, far, occ, 1.0, 0.05, 100)
