"""Which way is up in a capture, and the rigid transform that stands its asset upright.

glTF is +Y up, so an asset must come out with the subject's up along +Y and, for an
object resting on something, its lowest point at y = 0. The capture's up direction
(in its world frame; the normalisation is a scale + translation, so the direction is
the same in the original and the normalised world) comes from, best first:

``override``    ``capture.up`` / ``--up x|y|z|-x|-y|-z``
``convention``  what the source's convention says: Blender / nerfstudio / instant-ngp
                ``transforms.json`` worlds are +Z up; recon's own capture folders and
                ``recon synth`` record theirs
``cameras``     estimated from the cameras (video, photos, COLMAP, DTU): people hold
                cameras level, so every camera's x axis is horizontal and up is the
                direction orthogonal to all of them (the least eigenvector of
                sum x x^T), signed by the cameras' mean image-up. When the x axes hardly
                vary (a camera that only slides sideways) that direction is ill-posed and
                the mean image-up, made orthogonal to the x axes, is used instead.

``meta["up"]`` (3 floats, in the capture's original world: the frame assets are exported
in) and ``meta["up_method"]`` carry the result through capture folders (transforms.json's
"recon" block) to the bake, which calls ``upright_transform``.
"""
from __future__ import annotations

import numpy as np

from ..core.types import Cameras

AXES = {"x": (1.0, 0, 0), "y": (0, 1.0, 0), "z": (0, 0, 1.0),
        "-x": (-1.0, 0, 0), "-y": (0, -1.0, 0), "-z": (0, 0, -1.0)}
Z_UP = np.array([0.0, 0.0, 1.0])
MIN_SPREAD = 0.02  # x axes must spread over ~8 degrees of yaw for the eigenvector to be trusted
LEVEL_TOLERANCE = np.sin(np.radians(20.0))  # cameras rolled more than this are left out of the estimate


def axis_vector(name: str) -> np.ndarray:
    """The unit vector of an axis name (``x``, ``-z``, ...); raises ValueError for others."""
    if name not in AXES:
        raise ValueError(f"unknown up axis '{name}' (one of {', '.join(AXES)})")
    return np.array(AXES[name], np.float64)


def cameras_up(cams: Cameras) -> np.ndarray:
    """Unit up direction (3,) of a world filmed by ``cams`` held level (see the module docstring)."""
    x = cams.c2w[:, :3, 0] / np.linalg.norm(cams.c2w[:, :3, 0], axis=1, keepdims=True)
    image_up = -cams.c2w[:, :3, 1].mean(0)  # OpenCV: image y points down
    keep = np.ones(len(x), bool)
    up = None
    for _ in range(3):  # re-fit without the cameras that disagree (rolled, or looking straight down)
        w, V = np.linalg.eigh(x[keep].T @ x[keep] / keep.sum())
        if w[1] < MIN_SPREAD or keep.sum() < 3:  # x axes nearly parallel: the mean image-up, orthogonal to them
            a = V[:, 2]
            up = image_up - (image_up @ a) * a
            break
        up = V[:, 0]
        agree = np.abs(x @ up) < LEVEL_TOLERANCE
        if agree.sum() < 3 or np.array_equal(agree, keep):
            break
        keep = agree
    n = np.linalg.norm(up)
    if n < 1e-9:
        return np.array([0.0, 1.0, 0.0])
    up = up / n
    return up if up @ image_up >= 0 else -up


def rotation_to_y(up: np.ndarray) -> np.ndarray:
    """The smallest rotation (3, 3) taking the unit vector ``up`` to +Y (+Z up -> (x, z, -y), as Blender exports)."""
    u = np.asarray(up, np.float64) / np.linalg.norm(up)
    y = np.array([0.0, 1.0, 0.0])
    c = float(u @ y)
    if c < -1 + 1e-12:  # upside down: half a turn about x
        return np.diag([1.0, -1.0, -1.0])
    v = np.cross(u, y)
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx / (1 + c)


def upright_transform(up: np.ndarray, points: np.ndarray) -> np.ndarray:
    """4x4 rigid transform: rotate ``up`` onto +Y, then move ``points`` (P, 3) so their lowest
    point is at y = 0 and their bounding box is centred on x = z = 0."""
    T = np.eye(4)
    T[:3, :3] = rotation_to_y(up)
    p = np.asarray(points, np.float64) @ T[:3, :3].T
    lo, hi = p.min(0), p.max(0)
    T[:3, 3] = [-(lo[0] + hi[0]) / 2, -lo[1], -(lo[2] + hi[2]) / 2]
    return T


def with_up(meta: dict, cams: Cameras | None, override: str = "auto", normalization=None) -> dict:
    """``meta`` with ``up`` and ``up_method`` set: the override, else what ``meta`` already holds
    (a convention the reader knew), else the estimate from ``cams``, whose world is the original
    one mapped by ``normalization`` (4x4, original -> cameras' world; None: the same world)."""
    if override != "auto":
        up, method = axis_vector(override), f"override ({override})"
    elif meta.get("up") is not None:
        return meta
    elif cams is not None:
        up, method = cameras_up(cams), "cameras (level camera x axes)"
        if normalization is not None:  # back to the original world (the similarity's rotation, undone)
            up = np.linalg.solve(np.asarray(normalization, np.float64)[:3, :3], up)
            up /= np.linalg.norm(up)
    else:
        return meta
    return {**meta, "up": [float(v) for v in up], "up_method": method}
