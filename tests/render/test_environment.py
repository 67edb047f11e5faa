"""Environment maps: equirectangular directions, SH irradiance, split-sum pre-filtering, HDR files."""
import math

import numpy as np
import pytest
import torch

from recon.core.errors import InputError
from recon.render.environment import (LightProbe, builtin_environments, direction_to_uv, directions, load_environment,
                                      resolve_environment, save_environment, solid_angles)


def test_directions_and_uv_are_inverse_and_follow_mitsubas_mapping():
    d = directions(8, 16).reshape(-1, 3)
    uv = direction_to_uv(d)
    cols = (uv[:, 0] * 16 - 0.5).round().reshape(8, 16)
    rows = (uv[:, 1] * 8 - 0.5).round().reshape(8, 16)
    assert torch.equal(cols, torch.arange(16.0).expand(8, 16))
    assert torch.equal(rows, torch.arange(8.0)[:, None].expand(8, 16))
    # row 0 looks up (+Y); u = atan2(x, -z) / 2pi: the map's centre column looks along +z
    assert d.reshape(8, 16, 3)[0, :, 1].min() > 0.9
    centre = direction_to_uv(torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]]))
    torch.testing.assert_close(centre[:, 0], torch.tensor([0.5, 0.0, 0.25]))
    assert abs(float(solid_angles(8, 16).sum()) - 4 * math.pi) < 1e-4


def test_white_furnace_and_a_sky_light():
    uniform = LightProbe.from_map(torch.full((16, 32, 3), 2.0), 16)
    n = torch.nn.functional.normalize(torch.randn(50, 3), dim=-1)
    torch.testing.assert_close(uniform.diffuse(n), torch.full((50, 3), 2.0), atol=0.01, rtol=0)  # E / pi = L
    torch.testing.assert_close(uniform.specular_at(n, torch.rand(50)), torch.full((50, 3), 2.0), atol=1e-3, rtol=0)
    sky = torch.zeros(32, 64, 3)
    sky[:16] = 1.0  # the upper hemisphere lit: E(up) / pi = 1, E(down) = 0, E(horizontal) = 1/2
    probe = LightProbe.from_map(sky, 16)
    e = probe.diffuse(torch.tensor([[0.0, 1.0, 0.0], [0.0, -1.0, 0.0], [1.0, 0.0, 0.0]]))[:, 0]
    torch.testing.assert_close(e, torch.tensor([1.0, 0.0, 0.5]), atol=0.07, rtol=0)  # order-2 SH error


def test_prefiltering_blurs_more_with_roughness_and_is_differentiable():
    env = torch.zeros(16, 32, 3)
    env[8, 8] = 100.0  # one bright texel
    env.requires_grad_(True)
    probe = LightProbe.from_map(env, 16)
    peak = probe.specular[:, 8, 8, 0]
    assert torch.all(peak[1:] < peak[:-1])  # the highlight spreads out as roughness grows
    peak.sum().backward()
    assert env.grad[8, 8, 0] > 0


def test_hdr_round_trip_and_installed_maps(tmp_path):
    env = np.random.default_rng(0).uniform(0, 20, (8, 16, 3)).astype(np.float32)
    back = load_environment(save_environment(tmp_path / "e.hdr", env))
    assert np.all(np.abs(back - env) <= 0.01 * env.max(-1, keepdims=True))  # RGBE: 8 bits under a shared exponent
    maps = builtin_environments()
    if not maps:
        pytest.skip("no environment maps installed (scripts/setup.sh)")
    city = load_environment(resolve_environment("city"))
    assert city.shape[1] == 2 * city.shape[0] and city.max() > 1.0  # HDR, equirectangular


def test_bad_environment_inputs(tmp_path):
    with pytest.raises(InputError, match="no such environment map"):
        resolve_environment("nowhere")
    (tmp_path / "x.png").write_bytes(b"x")
    with pytest.raises(InputError, match="must be .hdr or .exr"):
        load_environment(tmp_path / "x.png")
    square = np.ones((8, 8, 3), np.float32)
    with pytest.raises(InputError, match="twice as wide as high"):
        load_environment(save_environment(tmp_path / "sq.hdr", square))
