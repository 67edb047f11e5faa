"""``synth_capture`` / ``recon synth``: a capture folder that recon reads back, with ground truth."""
from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh
from scipy.ndimage import binary_dilation
from scipy.spatial import cKDTree

from recon.capture import load_capture
from recon.capture.normalize import MARGIN, similarity
from recon.cli import main
from recon.core.errors import InputError
from recon.core.fsutil import sha256_file
from recon.core.imageio import read_image, read_mask
from recon.synth import load_mesh, synth_capture
from recon.synth.synthetic_capture import read_depth, read_normals_png


@pytest.fixture(scope="module")
def bunny_capture(shared_data, tmp_path_factory):
    mesh_path = shared_data / "meshes" / "bunny" / "bunny.ply"
    out = tmp_path_factory.mktemp("synth") / "bunny"
    cap = synth_capture(mesh_path, out, views=8, test_views=2, size=64, seed=3)
    return mesh_path, out, cap


def test_folder_reads_back_with_the_rendered_cameras(bunny_capture):
    mesh_path, out, cap = bunny_capture
    for sub in ("frames", "masks", "depth", "normals"):
        assert sorted(p.stem for p in (out / sub).iterdir()) == [f"r_{i:03d}" for i in range(10)]
    back = load_capture(out)
    assert [f.name for f in back.frames] == [f"r_{i:03d}" for i in range(10)]
    assert [f.split for f in back.frames] == ["train"] * 8 + ["test"] * 2
    # the stored normalisation maps the mesh's bounding sphere into the unit sphere
    mesh = load_mesh(mesh_path)
    np.testing.assert_allclose(back.normalization, cap.normalization, atol=1e-12)
    T = back.normalization
    np.testing.assert_allclose(T, similarity(mesh.center, mesh.radius * MARGIN))
    v = mesh.vertices @ T[:3, :3].T + T[:3, 3]
    assert 0.8 < np.linalg.norm(v, axis=1).max() <= 1.0
    # cameras: the ones rendered (mesh world), moved by the normalisation
    from recon.synth.cameras import train_test_cameras

    rendered = train_test_cameras(8, 2, mesh.center, mesh.radius, 64, seed=3)
    expected = rendered.transformed(T)
    np.testing.assert_allclose(back.cameras.c2w, expected.c2w, atol=1e-9)
    for k in ("fx", "fy", "cx", "cy", "width", "height"):
        np.testing.assert_allclose(getattr(back.cameras, k), getattr(expected, k))
    # projecting the normalised mesh with the loaded cameras lands on the masks
    uv, z = back.cameras.project(v)
    for i in range(len(back)):
        px = np.clip(np.floor(uv[i]).astype(int), 0, 63)
        assert (z[i] > 0).all()
        # silhouette vertices may fall just outside; thin tips (a vertex or two) can miss the mask
        near_mask = binary_dilation(back.masks[i] == 255)
        assert near_mask[px[:, 1], px[:, 0]].mean() > 0.999
    # images and masks are the ones rendered
    for i in range(len(back)):
        np.testing.assert_array_equal(back.images[i], cap.images[i])
        np.testing.assert_array_equal(back.masks[i], cap.masks[i])
        assert 0.05 < (back.masks[i] > 0).mean() < 0.6


def test_ground_truth_depth_normals_mesh_and_provenance(bunny_capture):
    mesh_path, out, cap = bunny_capture
    mesh = load_mesh(mesh_path)
    cams = cap.cameras.transformed(np.linalg.inv(cap.normalization))  # back in mesh units
    gt = trimesh.load(out / "gt_mesh.ply")
    np.testing.assert_allclose(gt.vertices, mesh.vertices, atol=1e-6)  # mesh units, not normalised
    for i in (0, 9):
        name = cap.frames[i].name
        depth = read_depth(out / "depth" / f"{name}.npz")
        normal = read_normals_png(out / "normals" / f"{name}.png")
        assert depth.shape == (64, 64) and depth.dtype == np.float32
        hit = depth > 0
        assert (read_mask(out / "masks" / f"{name}.png")[hit] == 255).mean() > 0.97
        # depth back-projected through the pixel centres lies on the mesh
        ii, jj = np.nonzero(hit)
        ii, jj, d = ii + 0.5, jj + 0.5, depth[hit]
        pc = np.stack([(jj - cams.cx[i]) / cams.fx[i] * d, (ii - cams.cy[i]) / cams.fy[i] * d, d], 1)
        pw = pc @ cams.c2w[i, :3, :3].T + cams.c2w[i, :3, 3]
        dist, _ = cKDTree(gt.vertices).query(pw)  # a point on a face is within an edge of a vertex
        assert dist.max() < gt.edges_unique_length.max()
        assert np.median(dist) < 0.5 * np.median(gt.edges_unique_length)
        np.testing.assert_allclose(np.linalg.norm(normal[hit], axis=-1), 1.0, atol=1e-3)
        assert (normal[~hit] == 0).all()
        # normals face the camera that sees them (but for inner faces seen through the bunny's base holes)
        rays = pw - cams.centers[i]
        facing = ((normal[hit] * rays).sum(-1) < 0).mean()
        assert facing > 0.95
    record = json.loads((out / "capture.json").read_text())
    syn = record["meta"]["synthetic"]
    assert syn["mesh"] == str(mesh_path) and syn["mesh_sha256"] == sha256_file(mesh_path)
    assert (syn["views"], syn["test_views"], syn["size"], syn["seed"]) == (8, 2, 64, 3)


def test_same_seed_same_capture_other_seed_other_cameras(tmp_path):
    mesh_path = tmp_path / "box.ply"
    trimesh.creation.box(extents=(1.0, 2.0, 0.5)).export(mesh_path)
    a = synth_capture(mesh_path, tmp_path / "a", views=3, test_views=1, size=32, seed=5)
    b = synth_capture(mesh_path, tmp_path / "b", views=3, test_views=1, size=32, seed=5)
    c = synth_capture(mesh_path, tmp_path / "c", views=3, test_views=1, size=32, seed=6)
    np.testing.assert_array_equal(a.cameras.c2w, b.cameras.c2w)
    for name in ("r_000", "r_003"):
        assert (tmp_path / "a" / "frames" / f"{name}.png").read_bytes() == \
            (tmp_path / "b" / "frames" / f"{name}.png").read_bytes()
        np.testing.assert_array_equal(read_depth(tmp_path / "a" / "depth" / f"{name}.npz"),
                                      read_depth(tmp_path / "b" / "depth" / f"{name}.npz"))
    assert np.abs(a.cameras.c2w - c.cameras.c2w).max() > 1e-3
    assert not np.array_equal(read_image(tmp_path / "a" / "frames" / "r_000.png"),
                              read_image(tmp_path / "c" / "frames" / "r_000.png"))
    # an existing folder is kept unless overwrite
    with pytest.raises(InputError):
        synth_capture(mesh_path, tmp_path / "a", views=3, test_views=1, size=32, seed=7)
    assert (tmp_path / "a" / "frames" / "r_000.png").read_bytes() == \
        (tmp_path / "b" / "frames" / "r_000.png").read_bytes()


def test_cli_synth(tmp_path, capsys):
    mesh_path = tmp_path / "ball.obj"
    trimesh.creation.icosphere(subdivisions=2).export(mesh_path)
    out = tmp_path / "cap"
    rc = main(["synth", str(mesh_path), "--out", str(out), "--views", "2", "--test-views", "1",
               "--size", "24", "--seed", "1", "--quiet"])
    assert rc == 0
    assert len(list((out / "frames").iterdir())) == 3
    assert json.loads((out / "capture.json").read_text())["meta"]["synthetic"]["seed"] == 1
    rc = main(["synth", str(tmp_path / "missing.ply"), "--out", str(tmp_path / "x"), "--quiet"])
    assert rc == 2 and "missing.ply" in capsys.readouterr().err
    rc = main(["synth", str(mesh_path), "--out", str(tmp_path / "y"), "--views", "0", "--quiet"])
    assert rc == 2 and "--views" in capsys.readouterr().err and not (tmp_path / "y").exists()
