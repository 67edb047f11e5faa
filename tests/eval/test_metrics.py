import numpy as np
import pytest
import torch

from recon.eval.grid_sampling import sample_grid
from recon.eval.mesh_extract import extract_mesh, marching_cubes, to_original_units
from recon.eval.metrics import chamfer_fscore, mask_iou, mesh_chamfer_fscore, psnr, ssim


def test_psnr_known_values():
    a = np.zeros((4, 4, 3))
    assert psnr(a, a + 0.1) == pytest.approx(20.0)
    assert psnr(a, a + 0.01) == pytest.approx(40.0)
    assert psnr(a, a) == float("inf")
    m = np.zeros((4, 4), bool)
    m[0] = True
    b = a.copy()
    b[1:] = 0.5  # errors only outside the mask
    assert psnr(a, b, m) == float("inf")


def test_ssim_matches_skimage_or_known_case():
    rng = np.random.default_rng(0)
    a = rng.random((48, 40, 3))
    b = np.clip(a + 0.1 * rng.standard_normal(a.shape), 0, 1)
    assert ssim(a, a) == pytest.approx(1.0)
    try:
        from skimage.metrics import structural_similarity
    except ImportError:  # hand-computed case: a constant offset of a constant image
        c = np.full((32, 32), 0.5)
        c1 = 0.01 ** 2
        expected = (2 * 0.5 * 0.6 + c1) / (0.5 ** 2 + 0.6 ** 2 + c1)
        assert ssim(c, c + 0.1) == pytest.approx(expected, abs=1e-6)
        return
    ref = structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                data_range=1.0, channel_axis=-1)
    assert abs(ssim(a, b) - ref) < 1e-3
    ref_gray = structural_similarity(a[..., 0], b[..., 0], gaussian_weights=True, sigma=1.5,
                                     use_sample_covariance=False, data_range=1.0)
    assert abs(ssim(a[..., 0], b[..., 0]) - ref_gray) < 1e-3


def test_mask_iou():
    a = np.zeros((10, 10), np.uint8)
    b = np.zeros((10, 10), np.uint8)
    a[:5] = 255
    b[:, :5] = 255
    assert mask_iou(a, b) == pytest.approx(25 / 75)
    assert mask_iou(a, a) == 1.0
    assert mask_iou(np.zeros((3, 3)), np.zeros((3, 3))) == 1.0


def test_chamfer_fscore_known_shift():
    rng = np.random.default_rng(1)
    p = rng.random((2000, 3))
    res = chamfer_fscore(p, p, 0.01)
    assert res["chamfer"] == 0 and res["fscore"] == 1.0
    # a far outlier set: half the predictions are 1 away from everything
    q = np.concatenate([p, p + np.array([10.0, 0, 0])])
    res = chamfer_fscore(q, p, 0.01)
    assert res["precision"] == pytest.approx(0.5)
    assert res["recall"] == 1.0
    assert res["fscore"] == pytest.approx(2 / 3)
    assert res["accuracy"] > 4.0 and res["completeness"] == 0


def test_marching_cubes_sphere_and_units():
    import trimesh

    vals = sample_grid(lambda x: x.norm(dim=-1) - 0.5, 48)
    mesh = marching_cubes(vals, 1.0)
    assert mesh.volume == pytest.approx(4 / 3 * np.pi * 0.125, rel=0.03)  # positive: outward normals
    gt = trimesh.creation.icosphere(4, radius=0.5)
    res = mesh_chamfer_fscore(mesh, gt, threshold=0.03, n_points=20000)  # 20k points: ~0.0125 apart
    assert res["chamfer"] < 0.01 and res["fscore"] > 0.95
    # original units: normalisation scaled by 0.5 and shifted -> inverse doubles and shifts back
    T = np.diag([0.5, 0.5, 0.5, 1.0])
    T[:3, 3] = [0.1, 0.0, -0.2]
    big = to_original_units(mesh, T)
    assert big.bounds[1][0] == pytest.approx((0.5 - 0.1) / 0.5, abs=0.03)
    # an occupancy grid limits evaluation but not the surface inside it
    occ = torch.zeros(16, 16, 16, dtype=torch.bool)
    occ[3:13, 3:13, 3:13] = True
    vals2 = sample_grid(lambda x: x.norm(dim=-1) - 0.5, 48, occupancy=occ)
    assert marching_cubes(vals2, 1.0).volume == pytest.approx(mesh.volume, rel=1e-4)


def test_extract_mesh_density_field_orientation():
    class Ball(torch.nn.Module):
        kind, bound = "density", 1.0

        def density(self, x):
            return 100.0 * (x.norm(dim=-1) < 0.4).float()

    mesh = extract_mesh(Ball(), resolution=32)
    assert mesh.volume > 0 and abs(mesh.bounds).max() < 0.5


def test_fill_interior_pockets():
    # a sphere of radius 0.6 with an unseen bubble of radius 0.2 inside (positive sdf there)
    sdf = lambda x: torch.maximum(x.norm(dim=-1) - 0.6, 0.2 - x.norm(dim=-1))  # noqa: E731
    vals = sample_grid(sdf, 48)
    assert len(marching_cubes(vals, 1.0, fill_interior=False).split(only_watertight=False)) == 2
    filled = marching_cubes(vals, 1.0)
    assert len(filled.split(only_watertight=False)) == 1
    assert filled.volume == pytest.approx(4 / 3 * np.pi * 0.6 ** 3, rel=0.03)
    # an occupancy grid around the surface only: the unevaluated interior (fill > 0) is a pocket too
    G = 16
    c = (torch.arange(G) + 0.5) / G * 2 - 1
    r = torch.stack(torch.meshgrid(c, c, c, indexing="ij"), -1).norm(dim=-1)
    shell = (r - 0.6).abs() < 0.2
    vals = sample_grid(lambda x: x.norm(dim=-1) - 0.6, 48, occupancy=shell)
    assert len(marching_cubes(vals, 1.0).split(only_watertight=False)) == 1
