"""Camera-convention conversions, both ways, and a projection with known answer."""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from recon.core.conventions import (c2w_to_colmap, colmap_to_c2w, opencv_to_opengl, opengl_to_opencv,
                                    qvec_to_rotmat, rotmat_to_qvec)
from recon.core.types import Cameras


def _random_c2w(rng, n=20):
    c2w = np.tile(np.eye(4), (n, 1, 1))
    c2w[:, :3, :3] = Rotation.random(n, random_state=rng.integers(1 << 31)).as_matrix()
    c2w[:, :3, 3] = rng.normal(size=(n, 3)) * 3
    return c2w


def test_opengl_opencv_round_trip():
    rng = np.random.default_rng(0)
    c2w = _random_c2w(rng)
    assert np.allclose(opencv_to_opengl(opengl_to_opencv(c2w)), c2w, atol=1e-12)
    assert np.allclose(opengl_to_opencv(opencv_to_opengl(c2w)), c2w, atol=1e-12)
    cv = opengl_to_opencv(c2w)
    # Same centre; OpenCV looks along +z = OpenGL's -z; OpenCV y (down) = OpenGL -y (up).
    assert np.allclose(cv[:, :3, 3], c2w[:, :3, 3])
    assert np.allclose(cv[:, :3, 2], -c2w[:, :3, 2])
    assert np.allclose(cv[:, :3, 1], -c2w[:, :3, 1])
    assert np.allclose(cv[:, :3, 0], c2w[:, :3, 0])
    assert np.allclose(np.linalg.det(cv[:, :3, :3]), 1.0)


def test_colmap_qvec_round_trips():
    rng = np.random.default_rng(1)
    for R in Rotation.random(50, random_state=2).as_matrix():
        q = rotmat_to_qvec(R)
        assert q[0] >= 0 and np.isclose(np.linalg.norm(q), 1.0)
        assert np.allclose(qvec_to_rotmat(q), R, atol=1e-12)
        assert np.allclose(rotmat_to_qvec(qvec_to_rotmat(q)), q, atol=1e-12)
    for c2w in _random_c2w(rng):
        q, t = c2w_to_colmap(c2w)
        assert np.allclose(colmap_to_c2w(q, t), c2w, atol=1e-12)
    # qvec and -qvec are the same rotation.
    q = rotmat_to_qvec(Rotation.random(random_state=3).as_matrix())
    assert np.allclose(qvec_to_rotmat(-q), qvec_to_rotmat(q))


def test_colmap_known_pose():
    # Identity rotation, t = (0, 0, 5): world origin is 5 units in front; the centre is (0, 0, -5).
    c2w = colmap_to_c2w(np.array([1.0, 0, 0, 0]), np.array([0.0, 0, 5]))
    assert np.allclose(c2w[:3, 3], [0, 0, -5])
    # 90 degrees about z (w = cos 45, z = sin 45): camera x axis maps to world y... as w2c.
    R = qvec_to_rotmat(np.array([np.cos(np.pi / 4), 0, 0, np.sin(np.pi / 4)]))
    assert np.allclose(R @ [1, 0, 0], [0, 1, 0])


def test_project_known_points():
    # OpenCV camera at the origin looking along +z.
    cams = Cameras.create(np.eye(4), fx=100.0, fy=120.0, cx=50.0, cy=40.0, width=100, height=80)
    uv, z = cams.project(np.array([[1.0, 2.0, 10.0], [0.0, 0.0, 3.0]]))
    assert np.allclose(uv[0], [[60.0, 64.0], [50.0, 40.0]]) and np.allclose(z[0], [10.0, 3.0])
    # A Blender camera 5 units up z, with identity rotation, looks down -z at the origin:
    # after conversion the origin is 5 units in front, at the principal point, and a point
    # at +x / +y world lands right / *up* in the image (smaller v).
    gl = np.eye(4)
    gl[2, 3] = 5.0
    cams = Cameras.create(opengl_to_opencv(gl), fx=100.0, fy=100.0, cx=50.0, cy=40.0, width=100, height=80)
    uv, z = cams.project(np.array([[0.0, 0, 0], [1.0, 0, 0], [0, 1.0, 0]]))
    assert np.allclose(z[0], 5.0)
    assert np.allclose(uv[0, 0], [50, 40])
    assert uv[0, 1, 0] > 50 and np.isclose(uv[0, 1, 1], 40)
    assert uv[0, 2, 1] < 40 and np.isclose(uv[0, 2, 0], 50)
    # The same camera through COLMAP's world-to-camera form projects the same.
    q, t = c2w_to_colmap(cams.c2w[0])
    w2c = np.eye(4)
    w2c[:3, :3], w2c[:3, 3] = qvec_to_rotmat(q), t
    p = w2c @ [1.0, 0, 0, 1]
    assert np.allclose([100 * p[0] / p[2] + 50, 100 * p[1] / p[2] + 40], uv[0, 1])
