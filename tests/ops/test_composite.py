"""Compiled compositing vs its torch twin: outputs, and gradients against the twin's autograd."""
from __future__ import annotations

import pytest
import torch

from recon.ops.composite import ALPHA_MAX, composite_torch


def _packed(counts: torch.Tensor) -> torch.Tensor:
    return torch.stack([torch.cumsum(counts, 0) - counts, counts], 1)


def _inputs(n_rays: int, max_count: int, C: int, gen: torch.Generator, alpha_scale: float = 0.3):
    counts = torch.randint(0, max_count + 1, (n_rays,), generator=gen)
    if n_rays > 2:
        counts[::3] = 0  # rays without samples
    S = int(counts.sum())
    alphas = torch.rand(S, generator=gen) * alpha_scale
    values = torch.rand(S, C, generator=gen)
    return alphas, values, _packed(counts)


def _check(cpp, alphas, values, packed, use=(True, True, True), tol=(1e-5, 1e-6), gtol=(1e-5, 1e-5), seed=0,
           ref_dtype=torch.float32):
    """Compare with the twin, run in ``ref_dtype`` (float64 where float32 itself loses the digits)."""
    gen = torch.Generator().manual_seed(seed)
    R, C = packed.shape[0], values.shape[1]
    ups = [torch.randn(R, C, generator=gen), torch.randn(R, generator=gen), torch.randn(alphas.shape[0], generator=gen)]
    results = []
    for fn, dtype in ((composite_torch, ref_dtype), (cpp["composite"], torch.float32)):
        a = alphas.to(dtype, copy=True).requires_grad_()
        v = values.to(dtype, copy=True).requires_grad_()
        outs = fn(a, v, packed)
        picked = [(o, u.to(dtype)) for o, u, k in zip(outs, ups, use) if k]
        grads = torch.autograd.grad([o for o, _ in picked], (a, v), [u for _, u in picked], allow_unused=True)
        grads = [torch.zeros_like(t) if g is None else g for g, t in zip(grads, (a, v))]
        results.append(([o.float() for o in outs], [g.float() for g in grads]))
    (ref, gref), (got, ggot) = results
    for name, x, y in zip(("out", "opacity", "weights"), got, ref):
        torch.testing.assert_close(x, y, rtol=tol[0], atol=tol[1], msg=lambda m: f"{name}: {m}")
    for name, x, y in zip(("d alphas", "d values"), ggot, gref):
        torch.testing.assert_close(x, y, rtol=gtol[0], atol=gtol[1], msg=lambda m: f"{name}: {m}")


@pytest.mark.parametrize("n_rays,max_count,C", [(0, 0, 3), (1, 1, 3), (5, 0, 1), (17, 8, 4), (256, 64, 3), (64, 600, 2)])
def test_matches_twin(cpp, n_rays, max_count, C):
    gen = torch.Generator().manual_seed(n_rays * 1000 + max_count)
    _check(cpp, *_inputs(n_rays, max_count, C, gen), seed=n_rays)


@pytest.mark.parametrize("use", [(True, False, False), (False, True, False), (False, False, True), (True, True, False)])
def test_gradients_of_each_output(cpp, use):
    gen = torch.Generator().manual_seed(7)
    _check(cpp, *_inputs(100, 40, 3, gen), use=use)


def test_opaque_samples(cpp):
    """Alphas near 1 drive the transmittance to ~0; gradients divide by 1 - alpha >= 1e-6.

    There the float32 twin's own gradient loses digits to cancellation (it subtracts nearly
    equal terms divided by 1 - alpha), so the reference is the twin in float64.
    """
    gen = torch.Generator().manual_seed(8)
    alphas, values, packed = _inputs(200, 30, 3, gen, alpha_scale=1.0)
    alphas = torch.where(torch.rand(alphas.shape, generator=gen) < 0.1, 0.999, alphas)
    _check(cpp, alphas, values, packed, ref_dtype=torch.float64)


def test_clamped_alphas(cpp):
    """Alphas outside [0, ALPHA_MAX] are clamped; the clamp passes gradient at its ends, not beyond."""
    special = torch.tensor([-0.5, 0.0, 0.2, ALPHA_MAX, 1.0, 1.5, 0.3, 0.0, -1e-8, 0.7])
    alphas = torch.cat([special, special.flip(0)])
    values = torch.rand(alphas.shape[0], 3, generator=torch.Generator().manual_seed(9))
    packed = _packed(torch.tensor([10, 0, 10]))
    _check(cpp, alphas, values, packed, ref_dtype=torch.float64, gtol=(1e-5, 1e-6))
    a = alphas.clone().requires_grad_()
    out, opacity, weights = cpp["composite"](a, values, packed)
    (out.sum() + opacity.sum() + weights.sum()).backward()
    outside = (alphas < 0) | (alphas > ALPHA_MAX)
    assert outside.any() and torch.all(a.grad[outside] == 0)
    assert torch.all(weights <= ALPHA_MAX) and torch.all(weights >= 0)


def test_more_threads_than_cores(cpp, n_threads):
    n_threads(3)
    gen = torch.Generator().manual_seed(10)
    _check(cpp, *_inputs(1000, 50, 3, gen))


def test_non_float32_uses_the_twin(cpp):
    gen = torch.Generator().manual_seed(11)
    alphas, values, packed = (t.double() if t.is_floating_point() else t for t in _inputs(10, 5, 3, gen))
    for x, y in zip(cpp["composite"](alphas, values, packed), composite_torch(alphas, values, packed)):
        assert torch.equal(x, y)
