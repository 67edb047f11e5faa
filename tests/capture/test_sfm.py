"""Structure-from-motion: recover known cameras from renders of the bunny, and fail clearly on noise.

The renders come from ``recon.synth`` (procedural texture, exact rasterizer) with
cameras chosen here: 20 views on a wavy ring around the bunny (azimuth every 18
degrees, elevation 25 +- 15 degrees), 384 px. SfM sees only the image files (read
as an unposed photo folder); its cameras must match the true ones up to a
similarity.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from recon.capture.image_folder_reader import read_image_folder
from recon.capture.sfm import _intrinsics, _registration_floor, _set_focal_priors, _shared_camera, solve_cameras
from recon.cli import main
from recon.core.config import CaptureConfig, SfMConfig
from recon.core.imageio import write_image
from recon.core.types import Cameras, Capture, FrameInfo
from recon.eval.align import aligned_errors, umeyama

N_VIEWS, SIZE, FOV = 20, 384, 40.0


@pytest.fixture(scope="module")
def bunny_sfm(shared_data, tmp_path_factory):
    from recon.synth import load_mesh, render_views
    from recon.synth.cameras import distance_for_fill, look_at

    mesh = load_mesh(shared_data / "meshes" / "bunny" / "bunny.ply", seed=0)
    az = np.arange(N_VIEWS) * 2 * np.pi / N_VIEWS
    el = np.radians(25.0 + 15.0 * np.sin(2 * az))  # not one plane: a ring is a weak geometry for SfM
    dirs = np.stack([np.cos(el) * np.cos(az), np.sin(el), np.cos(el) * np.sin(az)], 1)
    orbit = distance_for_fill(mesh.radius, FOV, fill=1.05)
    f = 0.5 * SIZE / math.tan(math.radians(FOV / 2))
    cams = Cameras.create(look_at(mesh.center + orbit * dirs, mesh.center, np.array([0.0, 1.0, 0.0])),
                          f, f, SIZE / 2, SIZE / 2, SIZE, SIZE)
    folder = tmp_path_factory.mktemp("bunny") / "photos"
    for i in range(N_VIEWS):
        write_image(folder / f"view{i:02d}.png", render_views(mesh, cams[i], supersample=1)[0]["rgb"])
    cap = read_image_folder(folder, CaptureConfig(test_every=0))
    assert cap.cameras is None
    sol = solve_cameras(cap, SfMConfig())
    truth = cams[[int(fr.name[4:]) for fr in sol.frames]]
    return dict(sol=sol, truth=truth, mesh=mesh, orbit=orbit, f=f)


@pytest.mark.slow
def test_sfm_registers_every_view(bunny_sfm):
    sol = bunny_sfm["sol"]
    stats = sol.meta["sfm"]
    assert stats["registered"] == stats["total"] == N_VIEWS and stats["unregistered"] == []
    assert stats["matcher"] == "exhaustive" and stats["shared_camera"]
    assert stats["n_points"] > 300 and stats["mean_reproj_error"] < 1.0
    assert sol.points.shape == (stats["n_points"], 3) and sol.points_rgb.dtype == np.uint8
    assert np.all(sol.cameras.width == SIZE) and np.all(sol.cameras.height == SIZE)


@pytest.mark.slow
def test_sfm_camera_centres_match_the_truth_up_to_a_similarity(bunny_sfm):
    sol, truth, orbit = bunny_sfm["sol"], bunny_sfm["truth"], bunny_sfm["orbit"]
    err = aligned_errors(sol.cameras.centers, truth.centers)
    # scene radius: the ball around the bunny holding every camera (the orbit radius)
    assert np.median(err) < 0.01 * orbit, (np.median(err) / orbit, err / orbit)
    assert err.max() < 0.03 * orbit


@pytest.mark.slow
def test_up_recovered_from_the_sfm_cameras(bunny_sfm):
    """The bunny was filmed with cameras level with its +Y; SfM's world is arbitrary, and the up
    estimated from SfM's cameras, carried into the true frame by the camera alignment, is +Y."""
    from recon.capture.upright import cameras_up

    sol, truth = bunny_sfm["sol"], bunny_sfm["truth"]
    T = umeyama(sol.cameras.centers, truth.centers)
    up = T[:3, :3] @ cameras_up(sol.cameras)
    angle = np.degrees(np.arccos(np.clip(up[1] / np.linalg.norm(up), -1, 1)))
    assert angle < 5.0, angle
    assert abs(cameras_up(sol.cameras)[1]) < 0.9  # SfM's own frame is not already +Y up: the test means something


@pytest.mark.slow
def test_sfm_orientations_intrinsics_and_points_agree(bunny_sfm):
    sol, truth, mesh = bunny_sfm["sol"], bunny_sfm["truth"], bunny_sfm["mesh"]
    T = umeyama(sol.cameras.centers, truth.centers)
    s = np.cbrt(np.linalg.det(T[:3, :3]))
    R = T[:3, :3] / s
    # camera axes: OpenCV c2w rotations after alignment agree with the truth within a degree
    rel = np.einsum("ij,njk->nik", R, sol.cameras.c2w[:, :3, :3])
    cos = (np.einsum("nij,nij->n", rel, truth.c2w[:, :3, :3]) - 1) / 2
    assert np.degrees(np.arccos(np.clip(cos, -1, 1))).max() < 1.0
    np.testing.assert_allclose(sol.cameras.fx, bunny_sfm["f"], rtol=0.03)
    np.testing.assert_allclose(sol.cameras.cx, SIZE / 2, atol=1e-6)
    # sparse points land on the bunny's surface once aligned
    from scipy.spatial import cKDTree

    surface = mesh.to_trimesh().sample(100_000, seed=0)
    pts = sol.points @ T[:3, :3].T + T[:3, 3]
    dist, _ = cKDTree(surface).query(pts)
    assert np.median(dist) < 0.01 * mesh.radius


def test_intrinsics_from_colmap_models():
    import pycolmap

    c = pycolmap.Camera(model="OPENCV", width=100, height=80, params=[50, 52, 49.5, 40.5, 0.1, -0.02, 1e-3, 2e-3])
    fx, fy, cx, cy, dist = _intrinsics(c)
    assert (fx, fy, cx, cy) == (50, 52, 49.5, 40.5)
    np.testing.assert_allclose(dist, [0.1, -0.02, 1e-3, 2e-3, 0.0])
    c = pycolmap.Camera(model="SIMPLE_RADIAL", width=100, height=80, params=[60, 50, 40, -0.05])
    fx, fy, cx, cy, dist = _intrinsics(c)
    assert fx == fy == 60 and (cx, cy) == (50, 40)
    np.testing.assert_allclose(dist, [-0.05, 0, 0, 0, 0])
    c = pycolmap.Camera(model="RADIAL", width=100, height=80, params=[60, 50, 40, 0.1, 0.2])
    np.testing.assert_allclose(_intrinsics(c)[4], [0.1, 0.2, 0, 0, 0])


def _unposed(sizes, kind="images", priors=None) -> Capture:
    frames = [FrameInfo(name=f"im{i}", source=f"im{i}.png") for i in range(len(sizes))]
    images = [np.zeros((h, w, 3), np.uint8) for w, h in sizes]
    return Capture(images=images, cameras=None, frames=frames,
                   meta={"source_kind": kind, "intrinsics_prior": priors or {}})


def test_shared_camera_rules():
    same = [(64, 48)] * 3
    assert _shared_camera(_unposed(same), {})  # one size, nothing known: one camera
    assert _shared_camera(_unposed(same), {"im0": 50.0, "im1": 50.2, "im2": 50.0})
    assert not _shared_camera(_unposed(same), {"im0": 50.0, "im1": 80.0, "im2": 50.0})  # zoomed
    assert not _shared_camera(_unposed(same), {"im0": 50.0})  # some known, some not
    assert not _shared_camera(_unposed([(64, 48), (48, 64), (64, 48)]), {})
    assert _shared_camera(_unposed(same, kind="video"), {"im0": 50.0})


def test_focal_priors_reach_the_colmap_cameras(tmp_path):
    import pycolmap

    rng = np.random.default_rng(0)
    files = [f"{i:06d}.png" for i in range(3)]
    for f in files:
        write_image(tmp_path / "img" / f, rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    db = tmp_path / "db.db"
    pycolmap.Database.open(str(db)).close()
    pycolmap.import_images(db, tmp_path / "img", camera_mode=pycolmap.CameraMode.PER_IMAGE, image_names=files)
    assert _set_focal_priors(pycolmap, db, ["a", "b", "c"], {"a": 70.0, "c": 90.0}) == 2
    d = pycolmap.Database.open(str(db))
    cams = {im.name: d.read_camera(im.camera_id) for im in d.read_all_images()}
    d.close()
    assert cams[files[0]].has_prior_focal_length and cams[files[0]].focal_length == pytest.approx(70.0)
    assert cams[files[2]].has_prior_focal_length and cams[files[2]].focal_length == pytest.approx(90.0)
    assert not cams[files[1]].has_prior_focal_length


def test_registration_floor():
    cfg = SfMConfig()  # 3 frames and half of them
    assert _registration_floor(44, cfg) == 22
    assert _registration_floor(4, cfg) == 3
    assert _registration_floor(2, cfg) == 2
    assert _registration_floor(10, SfMConfig(min_registered=8, min_registered_fraction=0.1)) == 8


def test_sfm_failure_is_one_line_exit_2(tmp_path, capfd):
    """Unrelated noise images: nothing registers; one line (COLMAP's own log silenced), no output."""
    rng = np.random.default_rng(0)
    src = tmp_path / "noise"
    for i in range(4):
        write_image(src / f"{i}.png", rng.integers(0, 255, (96, 128, 3), dtype=np.uint8))
    out = tmp_path / "out" / "cap"
    rc = main(["capture", str(src), "--out", str(out), "--quiet"])
    err = capfd.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"recon: error: {src}: structure-from-motion registered only ") and "of 4 frames" in err
    assert not out.exists() and not (tmp_path / "out").exists()


def test_a_subject_that_registers_but_bends_gets_the_scene_cameras(monkeypatch):
    """sfm_region auto, motion masks: the subject's own cameras are kept only when one visual hull explains
    its masks in them (``hull_iou`` >= capture.rigid_hull_iou); a walking cat can register on its body."""
    import recon.capture.sfm as sfm

    calls = []

    def fake_solve(cap, cfg=None, region="all"):
        calls.append(region)
        return Capture(images=cap.images, cameras=None, frames=cap.frames, masks=cap.masks,
                       meta={**cap.meta, "sfm": {"region": region}})

    monkeypatch.setattr(sfm, "solve_cameras", fake_solve)
    frames = [FrameInfo(f"f{i}", "clip", i, None, "train") for i in range(3)]
    img, mask = np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.uint8)
    cap = Capture(images=[img] * 3, cameras=None, frames=frames, masks=[mask] * 3,
                  meta={"source": "clip", "masks": {"method": "motion"}})
    cfg = CaptureConfig()
    bends = sfm.solve_cameras_for(cap, cfg, hull_iou=lambda c: 0.79)
    assert calls == ["subject", "background"]
    assert "it bends" in bends.meta["sfm"]["why"] and "IoU 0.79 < capture.rigid_hull_iou 0.85" in bends.meta["sfm"]["why"]
    calls.clear()
    rigid = sfm.solve_cameras_for(cap, cfg, hull_iou=lambda c: 0.89)
    assert calls == ["subject"] and "object-centric" in rigid.meta["sfm"]["why"]
