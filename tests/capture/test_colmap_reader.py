"""COLMAP models: text and binary round trips, camera models, pycolmap agreement, errors."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from recon.capture import detect_source, load_capture
from recon.capture.colmap_reader import (read_colmap, read_colmap_model, write_colmap_binary,
                                         write_colmap_text)
from recon.core.config import CaptureConfig
from recon.core.errors import InputError
from recon.core.imageio import write_image


def _dataset(synth, root: Path, binary: bool):
    cams = synth.orbit_cameras(6, (0.2, 0.0, 0.1), distance=3.0, width=48, height=32)
    dist = np.zeros((6, 5))
    dist[1, :4] = [0.1, -0.02, 1e-3, 2e-3]
    v = np.random.default_rng(0).normal(size=(200, 3))
    pts = 0.8 * v / np.linalg.norm(v, axis=1, keepdims=True) + 0.01 * v  # a ball-shaped subject's surface
    cap = synth.make_capture(replace(cams, dist=dist), points=pts)
    for img, fr in zip(cap.images, cap.frames):
        write_image(root / "images" / f"{fr.name}.png", img)
    (write_colmap_binary if binary else write_colmap_text)(cap, root / "sparse" / "0")
    return cap


def _same_cameras(a, b, atol=1e-9):
    for f in ("c2w", "fx", "fy", "cx", "cy", "dist", "width", "height"):
        assert np.allclose(getattr(a, f), getattr(b, f), atol=atol, rtol=0), f


@pytest.mark.parametrize("binary", [False, True])
def test_round_trip(synth, tmp_path, binary):
    cap = _dataset(synth, tmp_path, binary)
    assert detect_source(tmp_path) == "colmap"
    back = read_colmap(tmp_path, CaptureConfig(test_every=3))
    _same_cameras(back.cameras, cap.cameras)
    assert [f.name for f in back.frames] == [f.name for f in cap.frames]
    assert [f.split for f in back.frames] == ["test", "train", "train", "test", "train", "train"]
    assert np.allclose(back.points, cap.points) and (back.points_rgb == cap.points_rgb).all()
    assert all((a == b).all() for a, b in zip(back.images, cap.images))
    assert len(back.meta["source_hash"]) == 64
    # The model folder itself works too, finding images/ two levels up.
    _same_cameras(read_colmap(tmp_path / "sparse" / "0", CaptureConfig()).cameras, cap.cameras)
    # load_capture normalises with the sparse points (no masks: the segmenter is off for this reader test).
    norm = load_capture(tmp_path, CaptureConfig(segmenter="none"))
    assert norm.meta["normalization_method"] == "sfm_points"
    assert 0.8 < np.linalg.norm(norm.points, axis=1).max() < 1.05


def test_agrees_with_pycolmap(synth, tmp_path):
    pycolmap = pytest.importorskip("pycolmap")
    cap = _dataset(synth, tmp_path, binary=False)
    rec = pycolmap.Reconstruction(str(tmp_path / "sparse" / "0"))  # pycolmap reads our text
    for img in rec.images.values():
        i = [f"{f.name}.png" for f in cap.frames].index(img.name)
        assert np.allclose(img.projection_center(), cap.cameras.centers[i], atol=1e-9)
    (tmp_path / "bin").mkdir()
    rec.write_binary(str(tmp_path / "bin"))  # and we read pycolmap's binary
    model = read_colmap_model(tmp_path / "bin")
    ours = read_colmap_model(tmp_path / "sparse" / "0")
    for k, im in ours.images.items():
        same = model.images[k]
        assert same.name == im.name and same.camera_id == im.camera_id
        assert np.allclose(same.tvec, im.tvec) and min(np.abs(same.qvec - im.qvec).max(),
                                                       np.abs(same.qvec + im.qvec).max()) < 1e-9
        assert model.cameras[im.camera_id].model == ours.cameras[im.camera_id].model
        assert np.allclose(model.cameras[im.camera_id].params, ours.cameras[im.camera_id].params)
    assert np.allclose(model.points, ours.points)


def test_camera_models_and_text_quirks(tmp_path):
    (tmp_path / "images").mkdir()
    for n in ("a.png", "b.png", "c.png"):
        write_image(tmp_path / "images" / n, np.zeros((20, 30, 3), np.uint8))
    (tmp_path / "cameras.txt").write_text(
        "# comment\n1 SIMPLE_PINHOLE 30 20 25 15 10\n2 SIMPLE_RADIAL 30 20 26 14 9 0.05\n"
        "3 RADIAL 30 20 27 15.5 10.5 0.01 -0.002\n")
    (tmp_path / "images.txt").write_text(
        "# IMAGE_ID ...\n# POINTS2D ...\n"
        "3 1 0 0 0 0 0 4 3 c.png\n\n"
        "1 1 0 0 0 0 0 2 1 a.png\n1.0 2.0 -1 3.0 4.0 -1\n"
        "2 0.7071067811865476 0 0.7071067811865476 0 1 0 0 2 b.png\n\n")
    cap = read_colmap(tmp_path, CaptureConfig(test_every=0))  # no points3D file: no points
    c = cap.cameras
    assert [f.name for f in cap.frames] == ["a", "b", "c"] and cap.points is None
    assert (c.fx[0], c.fy[0], c.cx[0], c.cy[0]) == (25, 25, 15, 10)
    assert (c.fx[1], c.cx[1], c.cy[1]) == (26, 14, 9) and np.allclose(c.dist[1], [0.05, 0, 0, 0, 0])
    assert np.allclose(c.dist[2], [0.01, -0.002, 0, 0, 0])
    assert np.allclose(c.centers[0], [0, 0, -2]) and np.allclose(c.centers[2], [0, 0, -4])
    assert np.allclose(c.c2w[1, :3, :3] @ [0, 0, 1], [-1, 0, 0], atol=1e-12)  # 90 deg about y (w2c)


def test_unsupported_model_and_truncated_binary(tmp_path, synth):
    (tmp_path / "images").mkdir()
    write_image(tmp_path / "images" / "a.png", np.zeros((20, 30, 3), np.uint8))
    (tmp_path / "cameras.txt").write_text("1 OPENCV_FISHEYE 30 20 25 25 15 10 0 0 0 0\n")
    (tmp_path / "images.txt").write_text("1 1 0 0 0 0 0 2 1 a.png\n\n")
    with pytest.raises(InputError, match=r"cameras\.txt.*OPENCV_FISHEYE"):
        read_colmap(tmp_path, CaptureConfig())
    cap = _dataset(synth, tmp_path / "d", binary=True)
    assert cap is not None
    p = tmp_path / "d" / "sparse" / "0" / "images.bin"
    p.write_bytes(p.read_bytes()[:-30])
    with pytest.raises(InputError, match=r"images\.bin: file is truncated"):
        read_colmap(tmp_path / "d", CaptureConfig())
