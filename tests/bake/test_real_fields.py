"""The baker on recon.fields' neural fields (untrained: the SDF field starts as a sphere)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from recon.bake import bake_asset
from recon.bake.extract import extract_surface
from recon.bake.field_protocol import DensityLevelSet, as_surface_field
from recon.core.config import BakeConfig, FieldConfig, HashGridConfig
from recon.fields.density_field import DensityField
from recon.fields.sdf_field import SDFField

SMALL = FieldConfig(grid=HashGridConfig(n_levels=4, log2_hashmap_size=12, max_resolution=64),
                    hidden_dim=16, color_hidden_dim=16, sdf_init_radius=0.5)


def test_sdf_field_bakes_in_its_capture_units(tmp_path):
    torch.manual_seed(0)
    field = SDFField(SMALL.model_copy(update={"kind": "sdf"})).eval()
    field.normalization.copy_(torch.as_tensor(np.diag([2.0, 2.0, 2.0, 1.0])))  # original -> normalised
    cfg = BakeConfig(resolution=40, target_triangles=600, texture_size=64, preview_size=64, turntable_frames=2)
    m = bake_asset(field, None, tmp_path, "ball", cfg=cfg)  # normalisation taken from the field
    assert m["watertight"] and abs(m["triangles"] - 600) <= 6
    # the initial sphere of radius 0.5 (normalised) is 0.5 across in original units
    assert m["extent"] == pytest.approx([0.5, 0.5, 0.5], abs=0.02)
    assert (tmp_path / "asset" / "ball.glb").is_file()


def test_density_field_is_a_level_set():
    torch.manual_seed(0)
    field = DensityField(SMALL.model_copy(update={"kind": "density"})).eval()
    surf = as_surface_field(field, density_threshold=5.0)
    assert isinstance(surf, DensityLevelSet)
    x = torch.rand(64, 3) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(surf.sdf(x), 5.0 - field.density(x).reshape(-1))
        c = surf.albedo(x)
    assert c.shape == (64, 3) and (c >= 0).all() and (c <= 1).all()


def test_level_set_of_a_shifted_density():
    """A density field whose density exceeds the threshold inside a ball extracts that ball."""
    class Ball(torch.nn.Module):
        def density(self, x):
            return 20.0 * torch.relu(0.6 - x.norm(dim=-1)) / 0.6  # 20 at the centre, 0 at r = 0.6

        def diffuse_color(self, x):
            return torch.full_like(x, 0.5)

    mesh = extract_surface(as_surface_field(Ball(), density_threshold=10.0), resolution=40)
    r = np.linalg.norm(mesh.vertices, axis=1)
    assert mesh.is_watertight and r == pytest.approx(np.full_like(r, 0.3), abs=0.01)
