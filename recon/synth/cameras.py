"""Cameras on a sphere around a subject, looking at its centre (OpenCV convention).

Directions follow a Fibonacci spiral (evenly spread over the whole sphere), each
nudged by a seeded random rotation of a fraction of the spacing between views, so
that cameras do not sit on a perfect lattice. Test views use a second spiral,
rotated by a random rotation, so no test view repeats a training view.
"""
from __future__ import annotations

import math

import numpy as np

from ..core.types import Cameras, concat_cameras
from ..fields.base import fibonacci_directions


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def _jitter(dirs: np.ndarray, angle: float, rng: np.random.Generator) -> np.ndarray:
    """Rotate each direction by an angle up to ``angle`` (radians) towards a random tangent."""
    t = rng.normal(size=dirs.shape)
    t -= (t * dirs).sum(1, keepdims=True) * dirs
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    a = angle * rng.uniform(0.0, 1.0, (len(dirs), 1))
    out = dirs * np.cos(a) + t * np.sin(a)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def look_at(eyes: np.ndarray, target: np.ndarray, up: np.ndarray) -> np.ndarray:
    """(N, 4, 4) OpenCV camera-to-world for cameras at ``eyes`` looking at ``target``.

    Image "up" (-y of the camera) is as close to ``up`` as possible; a camera looking
    along ``up`` uses another world axis instead.
    """
    up = np.asarray(up, dtype=np.float64) / np.linalg.norm(up)
    z = np.asarray(target, dtype=np.float64)[None] - eyes
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    ups = np.broadcast_to(up, z.shape).copy()
    along = np.abs(z @ up) > 0.999
    ups[along] = np.roll(up, 1)  # any axis not parallel to up
    x = np.cross(z, ups)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y = np.cross(z, x)
    c2w = np.tile(np.eye(4), (len(eyes), 1, 1))
    c2w[:, :3, 0], c2w[:, :3, 1], c2w[:, :3, 2], c2w[:, :3, 3] = x, y, z, eyes
    return c2w


def distance_for_fill(radius: float, fov_deg: float, fill: float = 0.7) -> float:
    """Distance at which a sphere of ``radius`` spans ``fill`` of the image width at field of view ``fov_deg``."""
    half = math.atan(fill * math.tan(math.radians(fov_deg) / 2.0))
    return radius / math.sin(half)


def sphere_cameras(n: int, center, radius: float, size: int, fov_deg: float = 40.0, fill: float = 0.7,
                   seed: int = 0, up=(0.0, 1.0, 0.0), test: bool = False) -> Cameras:
    """``n`` square ``size``-pixel cameras around the ball (center, radius), framing it to ``fill``.

    Training views (``test=False``) and test views (``test=True``) come from different
    spirals, both jittered by ``seed``.
    """
    rng = np.random.default_rng([int(seed), int(test)])
    dirs = fibonacci_directions(n).double().numpy()
    if test:
        dirs = dirs @ _random_rotation(rng).T
    spacing = math.sqrt(4.0 * math.pi / max(n, 1))  # typical angle between neighbours
    dirs = _jitter(dirs, 0.25 * spacing, rng)
    eyes = np.asarray(center, dtype=np.float64)[None] + distance_for_fill(radius, fov_deg, fill) * dirs
    f = 0.5 * size / math.tan(math.radians(fov_deg) / 2.0)
    return Cameras.create(look_at(eyes, center, up), f, f, size / 2.0, size / 2.0, size, size)


def train_test_cameras(n_train: int, n_test: int, center, radius: float, size: int, seed: int = 0,
                       **kwargs) -> Cameras:
    """Training cameras followed by test cameras (see ``sphere_cameras``)."""
    cams = [sphere_cameras(n_train, center, radius, size, seed=seed, **kwargs)]
    if n_test:
        cams.append(sphere_cameras(n_test, center, radius, size, seed=seed, test=True, **kwargs))
    return concat_cameras(cams)
