"""Shading: Lambert under SH light, the split-sum GGX table and the PBR model's limits."""
import numpy as np
import torch

from recon.render.environment import LightProbe
from recon.render.shading import brdf_table, shade_lambert, shade_pbr


def _directional_albedo(alpha: float, n_dot_v: float, samples: int = 1_000_000) -> float:
    """Brute-force integral of the GGX / separable-Smith lobe (F = 1) over the hemisphere, uniformly sampled."""
    rng = np.random.default_rng(0)
    l = rng.normal(size=(samples, 3))
    l /= np.linalg.norm(l, axis=1, keepdims=True)
    l[:, 2] = np.abs(l[:, 2])
    v = np.array([np.sqrt(1 - n_dot_v ** 2), 0, n_dot_v])
    h = l + v
    h /= np.linalg.norm(h, axis=1, keepdims=True)
    a2 = alpha * alpha
    D = a2 / (np.pi * (h[:, 2] ** 2 * (a2 - 1) + 1) ** 2)

    def g1(c):
        return 2 / (1 + np.sqrt(1 + a2 * (1 - c * c) / np.maximum(c * c, 1e-12)))

    return float((D * g1(n_dot_v) * g1(l[:, 2]) / (4 * n_dot_v)).mean() * 2 * np.pi)


def test_split_sum_table_is_energy_bounded_and_matches_brute_force_integration():
    t = brdf_table()
    total = t.sum(-1)  # F0 = 1: the lobe's directional albedo
    assert float(total.max()) <= 1.0 + 1e-3 and float(t.min()) >= 0
    assert abs(float(t[-1, 0, 0]) - 1.0) < 0.02 and float(t[-1, 0, 1]) < 0.01  # a mirror seen head-on reflects F0
    size = t.shape[0]
    for row, col in ((size - 1, size - 1), (size - 1, size // 2), (size // 4, size - 1), (size // 4, size // 3)):
        n_dot_v, rough = (row + 0.5) / size, col / (size - 1)
        expected = _directional_albedo(rough ** 2, n_dot_v)
        assert abs(float(total[row, col]) - expected) < 0.02, (row, col, float(total[row, col]), expected)


def test_pbr_under_a_uniform_light_is_albedo_plus_fresnel():
    probe = LightProbe.from_map(torch.ones(16, 32, 3), 16)
    n = torch.nn.functional.normalize(torch.randn(100, 3), dim=-1)
    albedo = torch.rand(100, 3)
    torch.testing.assert_close(shade_lambert(albedo, n, probe), albedo, atol=0.01, rtol=0)
    dielectric = shade_pbr(albedo, torch.full((100,), 0.5), torch.zeros(100), n, n, probe)
    spec = dielectric - albedo  # the specular lobe of F0 = 0.04 seen head-on
    assert float(spec.min()) > 0.02 and float(spec.max()) < 0.07
    metal = shade_pbr(albedo, torch.full((100,), 0.05), torch.ones(100), n, n, probe)
    torch.testing.assert_close(metal, albedo, atol=0.03, rtol=0)  # a smooth metal mirrors the light, tinted


def test_pbr_gradients_reach_materials_and_light():
    env = torch.ones(8, 16, 3, requires_grad=True)
    a = torch.full((10, 3), 0.5, requires_grad=True)
    r = torch.full((10,), 0.5, requires_grad=True)
    n = torch.nn.functional.normalize(torch.randn(10, 3), dim=-1)
    v = torch.nn.functional.normalize(n + 0.3 * torch.randn(10, 3), dim=-1)
    shade_pbr(a, r, torch.zeros(10), n, v, LightProbe.from_map(env, 8)).sum().backward()
    assert env.grad.abs().sum() > 0 and a.grad.abs().sum() > 0 and r.grad.abs().sum() > 0
