"""Compiled hash-grid encoding vs its torch twin: outputs and table gradients."""
from __future__ import annotations

import pytest
import torch

from recon.ops import HashGridSpec, hash_grid_encode_torch

# dense coarse levels and hashed fine ones: (res+1)^3 vs 2^12 rows
SMALL = HashGridSpec(n_levels=6, n_features=2, log2_hashmap_size=12, base_resolution=4, max_resolution=96)


def _is_dense(spec: HashGridSpec, l: int) -> bool:
    return (spec.resolutions[l] + 1) ** 3 <= spec.offsets[l + 1] - spec.offsets[l]


def _points(n: int, spec: HashGridSpec, gen: torch.Generator) -> torch.Tensor:
    """Random points, a quarter of them outside [0,1] (clamped) and a quarter on cell boundaries."""
    x = torch.rand(n, 3, generator=gen)
    q = n // 4
    x[:q] = x[:q] * 1.6 - 0.3
    res = torch.tensor(spec.resolutions)
    pick = res[torch.randint(len(res), (q, 3), generator=gen)]
    x[q:2 * q] = torch.floor(torch.rand(q, 3, generator=gen) * (pick + 1)) / pick  # k / res, 0 and 1 included
    return x


def _compare(cpp, spec, n, seed, out_tol=(1e-5, 1e-6), grad_tol=(1e-5, 1e-5)):
    gen = torch.Generator().manual_seed(seed)
    x = _points(n, spec, gen)
    table = (torch.rand(spec.n_params, spec.n_features, generator=gen) * 2 - 1).requires_grad_()
    grad = torch.randn(n, spec.out_dim, generator=gen)
    ref = hash_grid_encode_torch(x, table, spec)
    got = cpp["hash_grid_encode"](x, table, spec)
    assert got.shape == (n, spec.out_dim)
    torch.testing.assert_close(got, ref, rtol=out_tol[0], atol=out_tol[1])
    (g_ref,) = torch.autograd.grad(ref, table, grad)
    (g_got,) = torch.autograd.grad(got, table, grad)
    # scatter-add sums: each row adds up to thousands of terms in another order
    torch.testing.assert_close(g_got, g_ref, rtol=grad_tol[0], atol=grad_tol[1])
    return got


def test_spec_covers_dense_and_hashed_levels():
    kinds = {_is_dense(SMALL, l) for l in range(SMALL.n_levels)}
    assert kinds == {True, False}


@pytest.mark.parametrize("n", [0, 1, 7, 1000, 20_000])
def test_matches_twin_over_sizes(cpp, n):
    _compare(cpp, SMALL, n, seed=n, grad_tol=(1e-5, 1e-4))


@pytest.mark.parametrize("n_features", [1, 3, 4, 8])  # 3: the run-time feature count path
def test_matches_twin_feature_counts(cpp, n_features):
    spec = HashGridSpec(n_levels=4, n_features=n_features, log2_hashmap_size=10, base_resolution=3,
                        max_resolution=40)
    _compare(cpp, spec, 3000, seed=n_features)


def test_default_spec(cpp):
    """16 levels x 2 features, 2^19 rows: the configuration the fields use."""
    _compare(cpp, HashGridSpec(), 1024, seed=1)


def test_atomic_scatter_when_threads_outnumber_levels(cpp, n_threads):
    """Two levels on 4 threads: the backward splits points and adds atomically."""
    spec = HashGridSpec(n_levels=2, n_features=2, log2_hashmap_size=8, base_resolution=4, max_resolution=16)
    n_threads(4)
    _compare(cpp, spec, 20_000, seed=3, grad_tol=(1e-5, 1e-3))


@pytest.mark.parametrize("spec", [SMALL, HashGridSpec(n_levels=4, n_features=4, log2_hashmap_size=10,
                                                     base_resolution=3, max_resolution=40)])
def test_gradient_to_positions_matches_twin(cpp, spec):
    """x gets the twin's gradient through the trilinear weights (0 outside [0, 1], where the clamp stops it);
    only the inputs that ask for a gradient get one."""
    gen = torch.Generator().manual_seed(11)
    x = _points(3000, spec, gen)
    table = torch.rand(spec.n_params, spec.n_features, generator=gen) * 2 - 1
    grad = torch.randn(3000, spec.out_dim, generator=gen)
    x_t, x_c = x.clone().requires_grad_(), x.clone().requires_grad_()
    (g_ref,) = torch.autograd.grad(hash_grid_encode_torch(x_t, table, spec), x_t, grad)
    (g_got,) = torch.autograd.grad(cpp["hash_grid_encode"](x_c, table, spec), x_c, grad)
    scale = float(g_ref.abs().max())
    torch.testing.assert_close(g_got, g_ref, rtol=1e-4, atol=1e-5 * scale)
    outside = ((x < 0) | (x > 1))
    assert (g_got[outside] == 0).all() and (g_got[~outside] != 0).float().mean() > 0.99
    t = table.clone().requires_grad_()
    cpp["hash_grid_encode"](x_c, t, spec).sum().backward()
    assert x_c.grad is not None and t.grad is not None
    t.grad = None
    cpp["hash_grid_encode"](x, t, spec).sum().backward()  # x without requires_grad: the table alone
    assert t.grad.abs().sum() > 0


def test_non_float32_uses_the_twin(cpp):
    x = torch.rand(50, 3, dtype=torch.float64)
    table = torch.rand(SMALL.n_params, 2, dtype=torch.float64)
    assert torch.equal(cpp["hash_grid_encode"](x, table, SMALL), hash_grid_encode_torch(x, table, SMALL))


def test_rejects_a_table_smaller_than_the_spec(cpp):
    with pytest.raises(RuntimeError, match="rows"):
        cpp["hash_grid_encode"](torch.rand(4, 3), torch.rand(SMALL.n_params - 1, 2), SMALL)
