import math

import pytest
import torch

from recon.core.config import FieldConfig, HashGridConfig
from recon.fields.appearance import AppearanceCodes
from recon.fields.density_field import DensityField
from recon.fields.hash_grid import HashGridEncoding
from recon.fields.sdf_field import SDFField
from recon.fields.sh_encoding import sh_encode

SMALL = HashGridConfig(n_levels=4, n_features=2, log2_hashmap_size=12, base_resolution=4, max_resolution=32)


def test_hash_grid_shapes_grad_and_level_mask():
    enc = HashGridEncoding(SMALL)
    x = torch.rand(100, 3)
    f = enc(x)
    assert f.shape == (100, 8)
    f.sum().backward()
    assert enc.table.grad is not None and enc.table.grad.abs().sum() > 0
    enc.set_active_levels(2)
    f2 = enc(x)
    assert (f2[:, 4:] == 0).all() and torch.equal(f2[:, :4], f[:, :4].detach())
    assert enc.finest_active_resolution() == enc.spec.resolutions[1]


def test_sh_encoding_orthonormal():
    g = torch.Generator().manual_seed(0)
    d = torch.randn(200000, 3, generator=g)
    d = d / d.norm(dim=-1, keepdim=True)
    sh = sh_encode(d, 4)
    assert sh.shape == (200000, 16)
    gram = 4 * math.pi * sh.T @ sh / len(d)  # Monte-Carlo integral over the sphere
    assert torch.allclose(gram, torch.eye(16), atol=0.05)
    assert sh_encode(d[:5], 2).shape == (5, 4)


def test_density_field_outputs_and_codes():
    cfg = FieldConfig(grid=SMALL, appearance_dim=4)
    f = DensityField(cfg, bound=1.0, n_frames=3)
    x = torch.rand(64, 3) * 2 - 1
    d = torch.nn.functional.normalize(torch.randn(64, 3), dim=-1)
    sigma, rgb = f(x, d, torch.zeros(64, dtype=torch.long))
    assert sigma.shape == (64,) and (sigma >= 0).all()
    assert rgb.shape == (64, 3) and (rgb >= 0).all() and (rgb <= 1).all()
    assert f.diffuse_color(x).shape == (64, 3)
    codes = AppearanceCodes(3, 4)
    with torch.no_grad():
        codes.codes.copy_(torch.arange(12.0).view(3, 4))
    assert torch.equal(codes(None, 2), codes.codes.mean(0).expand(2, 4))


def test_sdf_field_init_sphere_and_numerical_derivatives():
    f = SDFField(FieldConfig(kind="sdf", grid=SMALL, sdf_init_radius=0.5), bound=1.0)
    d = torch.nn.functional.normalize(torch.randn(500, 3), dim=-1)
    s = f.sdf(0.5 * d)
    assert s.abs().mean() < 0.1  # geometric init: roughly a sphere of radius 0.5
    assert (f.sdf(0.05 * d) < 0).all() and (f.sdf(0.95 * d) > 0).all()

    class Analytic(SDFField):
        def geometry(self, x):
            return x.norm(dim=-1) - 0.5, x.new_zeros(len(x), self.cfg.geo_feat_dim)

    a = Analytic(FieldConfig(kind="sdf", grid=SMALL), bound=1.0)
    x = 0.7 * d
    g = a.sdf_with_grad(x, step=1e-3)
    assert torch.allclose(g.grad, d, atol=1e-3)  # grad |x| = x/|x|
    assert torch.allclose(g.laplacian, torch.full((500,), 2 / 0.7), rtol=0.05)  # lap |x| = 2/|x|
    assert torch.allclose(g.normals.norm(dim=-1), torch.ones(500), atol=1e-5)
    assert a.fd_step() == pytest.approx(2.0 / a.encoding.finest_active_resolution())
    assert f.inv_s().item() == pytest.approx(math.exp(3.0), rel=1e-5)
    c = f.diffuse_color(x)
    assert c.shape == (500, 3) and (c >= 0).all() and (c <= 1).all()
