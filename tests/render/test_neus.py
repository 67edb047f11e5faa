import torch

from recon.ops import composite
from recon.render.neus import neus_alpha


def _ray_through_plane(inv_s: float, n: int = 400):
    """A ray along +z crossing the plane z = 0.3 (sdf = 0.3 - z, so the ray enters the inside)."""
    t = torch.linspace(0, 1, n + 1)
    mid = 0.5 * (t[1:] + t[:-1])
    dt = t[1:] - t[:-1]
    sdf = 0.3 - mid
    cos = torch.full_like(sdf, -1.0)  # d . grad(sdf) = -1
    return mid, neus_alpha(sdf, cos, dt, inv_s)


def test_alpha_range_and_far_from_surface():
    sdf = torch.linspace(-1, 1, 101)
    for cos in (-1.0, -0.3, 0.0, 0.5):
        a = neus_alpha(sdf, torch.full_like(sdf, cos), torch.full_like(sdf, 0.01), 64.0)
        assert (a >= 0).all() and (a <= 1).all()
    a = neus_alpha(torch.tensor([0.8]), torch.tensor([-1.0]), torch.tensor([0.01]), 64.0)
    assert a.item() < 1e-3  # well outside: transparent
    # leaving the surface (cos > 0) adds no opacity
    a = neus_alpha(torch.tensor([0.0]), torch.tensor([1.0]), torch.tensor([0.05]), 64.0)
    assert a.item() < 1e-3


def test_alpha_matches_formula():
    sdf, cos, dt, s = torch.tensor([0.02]), torch.tensor([-0.5]), torch.tensor([0.04]), 30.0
    prev = torch.sigmoid(torch.tensor([(0.02 + 0.5 * 0.04 * 0.5) * s]))
    nxt = torch.sigmoid(torch.tensor([(0.02 - 0.5 * 0.04 * 0.5) * s]))
    assert torch.allclose(neus_alpha(sdf, cos, dt, s), (prev - nxt) / prev, atol=1e-4)


def test_weights_peak_at_surface_and_opacity_saturates():
    for s in (32.0, 256.0):
        mid, alpha = _ray_through_plane(s)
        _, opacity, w = composite(alpha, mid[:, None], torch.tensor([[0, len(mid)]]))
        assert opacity.item() > 0.99
        assert abs(mid[w.argmax()].item() - 0.3) < 0.01  # unbiased: the weight peaks on the surface
    # sharper with higher inverse variance
    _, a_lo = _ray_through_plane(32.0)
    _, a_hi = _ray_through_plane(256.0)
    assert a_hi.max() > a_lo.max()
