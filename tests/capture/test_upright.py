"""Which way is up: the cameras' estimate, the sources' conventions, the override, and the
transform that stands an asset upright (+Y, base at y = 0)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from recon.capture.upright import axis_vector, cameras_up, rotation_to_y, upright_transform, with_up
from recon.core.types import Cameras
from recon.synth.cameras import look_at


def _angle(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.degrees(np.arccos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1))))


def _orbit(up: np.ndarray, n: int, arc_deg: float, elevation_deg: float, roll_deg: float, seed: int) -> Cameras:
    """Cameras on an arc around the origin, held level with ``up`` but for random roll (a person filming)."""
    rng = np.random.default_rng(seed)
    a = np.cross(up, [1.0, 0, 0] if abs(up[0]) < 0.9 else [0, 0, 1.0])
    a /= np.linalg.norm(a)
    b = np.cross(up, a)
    t = np.radians(np.linspace(0, arc_deg, n)) + rng.uniform(0, 2 * np.pi)
    el = np.radians(elevation_deg + rng.normal(0, 5, n))
    eyes = 3 * (np.cos(el)[:, None] * (np.cos(t)[:, None] * a + np.sin(t)[:, None] * b) + np.sin(el)[:, None] * up)
    c2w = look_at(eyes, np.zeros(3), up)
    for i in range(n):  # roll about the optical axis
        c2w[i, :3, :3] = c2w[i, :3, :3] @ Rotation.from_euler("z", rng.normal(0, roll_deg), degrees=True).as_matrix()
    return Cameras.create(c2w, 100.0, 100.0, 64, 48, 128, 96)


@pytest.mark.parametrize("arc,elevation", [(360, 30), (90, 10), (40, 45), (360, 70)])
def test_cameras_up_recovers_a_tilted_up_from_level_cameras(arc, elevation):
    up = Rotation.from_euler("xyz", [35, -20, 10], degrees=True).as_matrix() @ [0, 0, 1.0]
    cams = _orbit(up, 30, arc, elevation, roll_deg=2.0, seed=arc + elevation)
    assert _angle(cameras_up(cams), up) < 3.0
    # the mean image-up alone is biased by the elevation on a partial arc (what this estimate avoids)
    if arc < 360 and elevation >= 30:
        assert _angle(-cams.c2w[:, :3, 1].mean(0), up) > 10


def test_cameras_up_ignores_a_few_rolled_cameras():
    up = np.array([0, 1.0, 0])
    cams = _orbit(up, 30, 180, 20, roll_deg=1.0, seed=3)
    c2w = cams.c2w.copy()
    c2w[:4, :3, :3] = c2w[:4, :3, :3] @ Rotation.from_euler("z", 90, degrees=True).as_matrix()  # portrait shots
    assert _angle(cameras_up(Cameras.create(c2w, 100.0, 100.0, 64, 48, 128, 96)), up) < 3.0


def test_a_camera_that_only_slides_uses_its_image_up():
    c2w = np.tile(np.eye(4), (10, 1, 1))
    c2w[:, :3, :3] = [[1, 0, 0], [0, 0, 1], [0, -1, 0]]  # looking along +y, image down = -z: up is +z
    c2w[:, 0, 3] = np.linspace(0, 2, 10)
    assert _angle(cameras_up(Cameras.create(c2w, 100.0, 100.0, 64, 48, 128, 96)), [0, 0, 1]) < 1e-6


def test_rotation_to_y_is_blenders_z_up_conversion_and_handles_every_axis():
    R = rotation_to_y([0, 0, 1.0])
    assert np.allclose(R @ [1, 2, 3.0], [1, 3, -2])  # (x, y, z) -> (x, z, -y), as Blender's glTF export
    for name in ("x", "y", "z", "-x", "-y", "-z"):
        R = rotation_to_y(axis_vector(name))
        assert np.allclose(R @ axis_vector(name), [0, 1, 0]) and np.isclose(np.linalg.det(R), 1)
    with pytest.raises(ValueError, match="unknown up axis"):
        axis_vector("up")


def test_upright_transform_puts_the_base_at_zero_and_centres_x_z():
    pts = np.random.default_rng(0).uniform([-1, 5, 2], [3, 6, 9], (500, 3))
    T = upright_transform(np.array([0, 0, 1.0]), pts)
    out = pts @ T[:3, :3].T + T[:3, 3]
    assert np.isclose(out[:, 1].min(), 0) and np.allclose((out.min(0) + out.max(0))[[0, 2]], 0)
    assert np.isclose(out[:, 1].max(), 7, atol=0.1)  # the old z range (2..9) is now the height


def test_with_up_override_and_original_frame():
    cams = _orbit(np.array([0, 0, 1.0]), 20, 360, 20, 0.5, seed=1)
    assert with_up({"up": [0, 1, 0]}, cams)["up"] == [0, 1, 0]  # a known convention wins over the estimate
    assert with_up({"up": [0, 1, 0]}, cams, "-x")["up"] == [-1, 0, 0]
    N = np.eye(4)
    N[:3, :3] = 0.5 * Rotation.from_euler("x", 90, degrees=True).as_matrix()  # a normalisation that rotates
    meta = with_up({}, cams.transformed(N), normalization=N)
    assert _angle(meta["up"], [0, 0, 1]) < 2.0 and meta["up_method"].startswith("cameras")


def test_sources_record_their_up(tmp_path, shared_data):
    from recon.capture import load_capture
    from recon.core.config import CaptureConfig
    from recon.synth import synth_capture

    lego = load_capture("data/lego-50", CaptureConfig(max_size=32))
    assert lego.meta["up"] == [0, 0, 1] and "Blender" in lego.meta["up_method"]
    assert load_capture("data/lego-50", CaptureConfig(max_size=32, up="-y")).meta["up"] == [0, -1, 0]
    out = tmp_path / "synth"
    synth_capture(shared_data / "meshes" / "bunny" / "bunny.ply", out, views=6, test_views=0, size=16, up=(1, 0, 0))
    block = json.loads((out / "transforms.json").read_text())["recon"]
    assert block["up"] == [1, 0, 0] and load_capture(out).meta["up"] == [1, 0, 0]  # kept through the folder
