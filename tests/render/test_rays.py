import numpy as np
import pytest
import torch

from recon.core.types import Cameras
from recon.render.rays import CameraTensors, distort, image_rays, pixel_rays, project, ray_aabb, undistort


def _cams(dist=None):
    rng = np.random.default_rng(0)
    c2w = []
    for _ in range(3):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        w, x, y, z = q
        R = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                      [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                      [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])
        m = np.eye(4)
        m[:3, :3], m[:3, 3] = R, rng.normal(size=3)
        c2w.append(m)
    return Cameras.create(np.stack(c2w), [50.0, 60.0, 40.0], [52.0, 61.0, 40.0], [20.0, 31.5, 16.0],
                          [24.0, 20.0, 16.5], [40, 64, 32], [48, 40, 33], dist)


def test_rays_round_trip_with_cameras_project():
    cams = _cams()
    ct = CameraTensors.from_cameras(cams)
    for i in range(len(cams)):
        rays = image_rays(ct, i)
        w, h = int(cams.width[i]), int(cams.height[i])
        assert len(rays) == w * h
        assert torch.allclose(rays.dirs.norm(dim=-1), torch.ones(w * h), atol=1e-5)
        pts = (rays.origins + 2.7 * rays.dirs).double().numpy()
        uv, z = cams[i].project(pts)
        v, u = np.mgrid[:h, :w]
        expect = np.stack([u.reshape(-1) + 0.5, v.reshape(-1) + 0.5], -1)  # pixel centres at +0.5
        assert np.abs(uv[0] - expect).max() < 1e-3
        assert (z > 0).all()


def test_rays_round_trip_with_distortion():
    dist = [[-0.2, 0.05, 0.001, -0.002, 0.01]] * 3
    cams = _cams(dist)
    ct = CameraTensors.from_cameras(cams)
    assert ct.has_distortion
    idx = torch.tensor([0, 1, 2, 1])
    px = torch.tensor([0.5, 10.25, 31.5, 63.5])
    py = torch.tensor([0.5, 20.0, 32.5, 0.5])
    rays = pixel_rays(ct, idx, px, py)
    uv, z = project(ct, idx, rays.origins + 1.3 * rays.dirs)
    assert torch.allclose(uv[:, 0], px, atol=1e-3) and torch.allclose(uv[:, 1], py, atol=1e-3)
    # and the distortion really changes the rays relative to the undistorted cameras
    plain = pixel_rays(CameraTensors.from_cameras(_cams()), idx, px, py)
    assert (plain.dirs - rays.dirs).norm(dim=-1).max() > 1e-2


def test_undistort_inverts_distort():
    x = torch.linspace(-0.6, 0.6, 50)
    y = torch.linspace(0.5, -0.4, 50)
    d = torch.tensor([-0.25, 0.07, 0.002, 0.001, -0.01])
    xd, yd = distort(x, y, d)
    xu, yu = undistort(xd, yd, d)
    assert torch.allclose(xu, x, atol=1e-5) and torch.allclose(yu, y, atol=1e-5)


def test_ray_aabb():
    o = torch.tensor([[-3.0, 0.0, 0.0], [0.0, 0.0, 0.0], [-3.0, 5.0, 0.0]])
    d = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    near, far = ray_aabb(o, d, 1.0)
    assert near[0] == pytest.approx(2.0) and far[0] == pytest.approx(4.0)
    assert near[1] == 0.0 and far[1] == pytest.approx(1.0)
    assert far[2] <= near[2]  # a miss
