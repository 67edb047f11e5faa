"""Surface extraction: closed, on the analytic surface, in original units."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from recon.bake.analytic_field import AnalyticField
from recon.bake.extract import closed_level_set, extract_surface, keep_components, transform_points
from recon.eval.grid_sampling import sample_grid
from recon.bake.field_protocol import DensityLevelSet, as_surface_field
from recon.core.errors import ReconError
from recon.eval.metrics import chamfer_fscore, sample_surface

from .conftest import RESOLUTION, make_normalization


def test_extracted_torus_is_watertight_and_on_the_analytic_surface_in_original_units(torus_fine):
    field, N, mesh = torus_fine
    assert mesh.is_watertight and mesh.is_winding_consistent
    assert mesh.volume > 0  # normals point outwards
    scale = 0.5  # make_normalization(): normalised = 0.5 * R @ original + t
    voxel = 2.0 / (RESOLUTION - 1)

    # vertices lie on the level set: |sdf| of the vertices mapped to the normalised frame
    d = field.sdf(torch.as_tensor(transform_points(N, mesh.vertices))).abs().numpy()
    assert d.max() < 0.05 * voxel, d.max()

    # Chamfer / F-score against exact, uniform surface samples mapped back to original units;
    # two samplings of the exact surface give the floor that finite samples allow
    inv = np.linalg.inv(N)
    n, tau = 20000, 0.25 * voxel / scale
    gt = transform_points(inv, field.surface_points(n, seed=1))
    floor = chamfer_fscore(transform_points(inv, field.surface_points(n, seed=2)), gt, tau)
    cf = chamfer_fscore(sample_surface(mesh, n), gt, tau)
    assert cf["chamfer"] < floor["chamfer"] + 0.02 * voxel / scale, (cf, floor)
    assert cf["fscore"] > floor["fscore"] - 0.02, (cf, floor)

    # original units: sizes scale by 1/0.5, areas by 4, volumes by 8
    assert mesh.area == pytest.approx(field.area / scale**2, rel=0.01)
    R, r = field.size
    assert mesh.volume == pytest.approx(2 * np.pi**2 * R * r**2 / scale**3, rel=0.01)


def test_chunking_does_not_change_the_grid():
    field = AnalyticField("sphere", (0.6,))
    a = sample_grid(field.sdf, 24, chunk_points=24 * 24 * 24)  # one slab
    b = sample_grid(field.sdf, 24, chunk_points=1000)  # slabs of one z plane, split further
    assert np.array_equal(a, b)
    x = np.linspace(-1, 1, 24)
    i, j, k = 3, 17, 9  # indexing is [x, y, z]
    assert a[i, j, k] == pytest.approx(np.sqrt(x[i] ** 2 + x[j] ** 2 + x[k] ** 2) - 0.6, abs=1e-6)


def test_surface_cut_by_the_box_is_capped_closed():
    # a sphere larger than the extraction box: without capping the mesh would be open
    mesh = extract_surface(AnalyticField("sphere", (1.3,)), resolution=32)
    assert mesh.is_watertight
    assert mesh.bounds == pytest.approx(np.array([[-1, -1, -1], [1, 1, 1]]), abs=0.1)


def test_small_components_are_dropped():
    class TwoSpheres:
        def sdf(self, x):
            big = (x - x.new_tensor([-0.4, 0, 0])).norm(dim=-1) - 0.45
            small = (x - x.new_tensor([0.6, 0, 0])).norm(dim=-1) - 0.12
            return torch.minimum(big, small)

        def albedo(self, x):
            return torch.ones_like(x)

    both = extract_surface(TwoSpheres(), resolution=48, min_component_fraction=0.01)
    assert len(both.split(only_watertight=False)) == 2
    one = extract_surface(TwoSpheres(), resolution=48, min_component_fraction=0.5)
    assert len(one.split(only_watertight=False)) == 1
    assert one.bounds[0, 0] < -0.8  # the big one survives
    assert len(keep_components(one, 1.0).faces) == len(one.faces)


def test_density_fields_use_the_same_path():
    sphere = AnalyticField("sphere", (0.5,))

    class Density:  # a fitted density field's interface (recon.fields): density + diffuse_color
        def density(self, x):
            return 40.0 * torch.sigmoid(-20 * sphere.sdf(x))  # 20 on the sphere

        def diffuse_color(self, x):
            return sphere.albedo(x)

    surf = as_surface_field(Density(), density_threshold=20.0)
    assert isinstance(surf, DensityLevelSet)
    mesh = extract_surface(surf, make_normalization(), resolution=48)
    assert mesh.is_watertight
    # radius 0.5 normalised = 1.0 original
    r = np.linalg.norm(mesh.vertices - transform_points(np.linalg.inv(make_normalization()), np.zeros((1, 3))), axis=1)
    assert r == pytest.approx(np.full_like(r, 1.0), abs=0.01)


def test_as_surface_field_rejects_objects_without_geometry():
    with pytest.raises(TypeError, match="not a surface field"):
        as_surface_field(object())


def test_no_surface_is_a_clear_error():
    with pytest.raises(ReconError, match="no surface"):
        extract_surface(AnalyticField("sphere", (5.0,)), resolution=16)  # all inside the box


@pytest.mark.parametrize("shape,size", [("torus", (0.55, 0.22)), ("rounded_box", (0.5, 0.4, 0.3, 0.1))])
def test_narrow_band_gives_the_dense_result_with_fewer_queries(shape, size):
    field = AnalyticField(shape, size)
    calls = []

    class Counting:
        def sdf(self, x):
            calls.append(len(x))
            return field.sdf(x)

    dense = sample_grid(Counting().sdf, 128)
    n_dense, calls[:] = sum(calls), []
    narrow = sample_grid(Counting().sdf, 128, narrow_band=True)
    assert sum(calls) < 0.75 * n_dense
    assert np.array_equal(np.sign(narrow), np.sign(dense))
    # marching cubes only reads cells with a sign change, where both grids are exact
    a, b = closed_level_set(dense, 1.0), closed_level_set(narrow, 1.0)
    assert np.array_equal(a.faces, b.faces) and np.array_equal(a.vertices, b.vertices)


class _BallWithFloater:
    """A ball of radius 0.5 plus a small floater at x=0.8 (an SDF, negative inside)."""

    def sdf(self, x):
        return torch.minimum(x.norm(dim=-1) - 0.5, (x - torch.tensor([0.8, 0.0, 0.0])).norm(dim=-1) - 0.08)

    def albedo(self, x):
        return torch.full_like(x, 0.5)


def _ball_occupancy(G=32, radius=0.6):
    c = (torch.arange(G) + 0.5) / G * 2 - 1
    return torch.stack(torch.meshgrid(c, c, c, indexing="ij"), -1).norm(dim=-1) < radius


@pytest.mark.parametrize("narrow_band", [True, False])
def test_occupancy_grid_removes_floaters_the_fit_never_rendered(narrow_band):
    field = _BallWithFloater()
    free = extract_surface(field, resolution=64, min_component_fraction=1e-4, narrow_band=narrow_band)
    assert len(free.split(only_watertight=False)) == 2  # the floater survives a loose component filter
    occ = _ball_occupancy()
    mesh = extract_surface(field, resolution=64, min_component_fraction=1e-4, narrow_band=narrow_band, occupancy=occ)
    assert len(mesh.split(only_watertight=False)) == 1 and mesh.is_watertight
    assert mesh.volume == pytest.approx(4 / 3 * np.pi * 0.5 ** 3, rel=0.03)


def test_narrow_band_with_occupancy_matches_dense_with_occupancy():
    field, occ = _BallWithFloater(), _ball_occupancy()
    dense = sample_grid(field.sdf, 64, occupancy=occ)
    narrow = sample_grid(field.sdf, 64, occupancy=occ, narrow_band=True)
    assert np.array_equal(np.sign(dense), np.sign(narrow))
