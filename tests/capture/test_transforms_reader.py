"""transforms.json reading (Blender lego, nerfstudio forms) and the capture-folder round trip."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from recon.capture.capture_writer import write_capture_folder
from recon.capture.normalize import normalize_capture
from recon.capture.transforms_reader import read_transforms
from recon.cli import main
from recon.core.config import CaptureConfig
from recon.core.conventions import opengl_to_opencv
from recon.core.errors import InputError


@pytest.fixture(scope="module")
def lego_out(shared_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lego") / "cap"
    rc = main(["capture", str(shared_data / "nerf_synthetic" / "lego"), "--out", str(out),
               "--set", "capture.max_size=200", "--quiet"])
    assert rc == 0
    return out


def test_lego_capture_matches_source(lego_out, shared_data):
    src = shared_data / "nerf_synthetic" / "lego"
    written = json.loads((lego_out / "transforms.json").read_text())
    frames = written["frames"]
    assert sum(f["split"] == "train" for f in frames) == 100 and sum(f["split"] == "test" for f in frames) == 25
    assert len(written["train_filenames"]) == 100 and len(written["test_filenames"]) == 25
    N = np.array(written["recon"]["normalization"])
    Ninv = np.linalg.inv(N)
    scale = np.cbrt(np.linalg.det(N[:3, :3]))
    n_checked = 0
    for split in ("train", "test"):
        meta = json.loads((src / f"transforms_{split}.json").read_text())
        focal = 0.5 * 200 / math.tan(0.5 * meta["camera_angle_x"])
        by_name = {f"{split}_{Path(f['file_path']).name}": f for f in meta["frames"]}
        for f in frames:
            name = Path(f["file_path"]).stem
            if name not in by_name:
                continue
            c2w = opengl_to_opencv(np.array(f["transform_matrix"]))
            undone = Ninv @ c2w
            undone[:3, :3] *= scale  # Ninv scaled the axes by 1/scale; cameras keep unit axes
            expect = opengl_to_opencv(np.array(by_name[name]["transform_matrix"]))
            assert np.allclose(undone, expect, atol=1e-6), name
            assert abs(f["fl_x"] - focal) < 1e-6 and abs(f["fl_y"] - focal) < 1e-6
            assert f["cx"] == 100.0 and f["cy"] == 100.0 and (f["w"], f["h"]) == (200, 200)
            assert (lego_out / f["file_path"]).is_file() and (lego_out / f["mask_path"]).is_file()
            n_checked += 1
    assert n_checked == 125
    record = json.loads((lego_out / "capture.json").read_text())
    assert record["source"]["kind"] == "transforms" and len(record["source"]["hash"]) == 64
    assert record["normalization"]["method"] == "visual_hull" and len(record["frames"]) == 125


def test_lego_folder_reads_back(lego_out, synth):
    cap = read_transforms(lego_out, CaptureConfig())
    assert len(cap) == 125 and cap.meta["normalized"] and cap.masks is not None
    test = cap.split_indices("test")
    assert len(test) == 25
    few = cap.split_indices("test", 5)  # at most 5, spread evenly from the first to the last
    assert few.tolist() == test[[0, 6, 12, 18, 24]].tolist()
    assert np.array_equal(cap.split_indices("test", 100), test)
    assert cap.frames[0].source.endswith("r_0.png") and "lego" in cap.frames[0].source  # provenance kept
    # The subject (every mask pixel) lies inside the normalised unit sphere.
    cov = synth.mask_coverage(cap.cameras, cap.masks)
    assert cov.min() > 0.995
    assert np.linalg.norm(cap.cameras.centers, axis=1).min() > 1.0


def test_write_read_round_trip(synth, tmp_path):
    cams = synth.orbit_cameras(10, (0.3, 0.1, 0.0), distance=3.0, width=40, height=30)
    dist = np.zeros((10, 5))
    dist[:, 0], dist[:, 1], dist[:, 2], dist[:, 3], dist[:, 4] = 0.05, -0.01, 1e-3, -2e-3, 0.002
    from dataclasses import replace

    cams = replace(cams, dist=dist)
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(50, 3)) * 0.3
    cap = synth.make_capture(cams, masks=synth.sphere_masks(cams, (0.3, 0.1, 0.0), 0.5), points=pts)
    cap = normalize_capture(cap)
    cap.meta["sfm"] = {"registered": 10, "mean_reprojection_error": np.float64(0.42)}
    write_capture_folder(cap, tmp_path / "c")
    back = read_transforms(tmp_path / "c", CaptureConfig(test_every=3))
    for f in ("c2w", "fx", "fy", "cx", "cy", "dist"):
        assert np.allclose(getattr(back.cameras, f), getattr(cap.cameras, f), atol=1e-6, rtol=0), f
    assert (back.cameras.width == cap.cameras.width).all() and (back.cameras.height == cap.cameras.height).all()
    assert np.allclose(back.normalization, cap.normalization, atol=1e-12)
    assert back.meta["normalized"] and back.meta["normalization_method"] == cap.meta["normalization_method"]
    assert back.meta["sfm"]["registered"] == 10 and back.meta["original_source_hash"] == "abc123"
    assert [f.name for f in back.frames] == [f.name for f in cap.frames]
    assert [f.split for f in back.frames] == [f.split for f in cap.frames]  # per-frame split wins
    assert [(f.index, f.timestamp, f.source) for f in back.frames] == \
        [(f.index, f.timestamp, f.source) for f in cap.frames]
    assert all((a == b).all() for a, b in zip(back.images, cap.images))
    assert all((a == b).all() for a, b in zip(back.masks, cap.masks))
    assert np.allclose(back.points, cap.points, atol=1e-6) and (back.points_rgb == cap.points_rgb).all()
    # A capture of the capture keeps the first source as the original.
    write_capture_folder(back, tmp_path / "c2")
    again = read_transforms(tmp_path / "c2", CaptureConfig())
    assert again.meta["original_source_hash"] == "abc123"
    assert again.meta["source_hash"] == back.meta["source_hash"]  # same content, same hash
    record = json.loads((tmp_path / "c" / "capture.json").read_text())
    assert record["sfm"]["mean_reprojection_error"] == 0.42
    assert record["frames"][1] == {"name": "img_001", "source": "/src/img_001.jpg", "index": 1,
                                   "timestamp": 1 / 30.0, "split": "train"}


# --- the other transforms.json forms -----------------------------------------------------------

def _write_images(folder: Path, n: int, size=(40, 30), mode="RGB", ext=".png") -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    names = []
    for i in range(n):
        ch = 4 if mode == "RGBA" else 3
        arr = rng.integers(0, 256, (size[1], size[0], ch), dtype=np.uint8)
        if mode == "RGBA":
            arr[..., 3] = 0
            arr[5:20, 10:30, 3] = 255
        Image.fromarray(arr, mode).save(folder / f"im_{i}{ext}")
        names.append(f"im_{i}{ext}")
    return names


def _pose(i: int) -> list:
    m = np.eye(4)
    m[:3, 3] = [np.cos(i), np.sin(i), 0.5]
    return m.tolist()


def test_camera_angle_and_extensionless_paths(tmp_path):
    _write_images(tmp_path / "imgs", 3)
    data = {"camera_angle_x": 0.8, "camera_angle_y": 0.5,
            "frames": [{"file_path": f"./imgs/im_{i}", "transform_matrix": _pose(i)} for i in range(3)]}
    (tmp_path / "transforms.json").write_text(json.dumps(data))
    cap = read_transforms(tmp_path, CaptureConfig(test_every=0))
    c = cap.cameras
    assert np.allclose(c.fx, 20 / math.tan(0.4)) and np.allclose(c.fy, 15 / math.tan(0.25))
    assert np.allclose(c.cx, 20) and np.allclose(c.cy, 15) and cap.masks is None
    assert [f.name for f in cap.frames] == ["im_0", "im_1", "im_2"]
    assert all(f.split == "train" for f in cap.frames)
    assert np.allclose(c.c2w[1], opengl_to_opencv(np.array(_pose(1))))


def test_fl_forms_per_frame_override_and_max_size(tmp_path):
    _write_images(tmp_path / "images", 10)
    frames = [{"file_path": f"images/im_{i}.png", "transform_matrix": _pose(i)} for i in range(10)]
    frames[3].update(fl_x=80.0, fl_y=82.0, cx=21.0, k1=0.1, p2=0.01)
    data = {"fl_x": 50.0, "fl_y": 51.0, "cx": 19.5, "cy": 14.5, "w": 40, "h": 30, "k2": 0.02, "frames": frames}
    (tmp_path / "transforms.json").write_text(json.dumps(data))
    cap = read_transforms(tmp_path / "transforms.json", CaptureConfig(test_every=8))
    c = cap.cameras
    assert (c.fx[0], c.fy[0], c.cx[0], c.cy[0]) == (50.0, 51.0, 19.5, 14.5)
    assert (c.fx[3], c.fy[3], c.cx[3], c.cy[3]) == (80.0, 82.0, 21.0, 14.5)
    assert np.allclose(c.dist[3], [0.1, 0.02, 0, 0.01, 0]) and np.allclose(c.dist[0], [0, 0.02, 0, 0, 0])
    assert [f.split for f in cap.frames].count("test") == 2  # frames 0 and 8 (test_every 8)
    small = read_transforms(tmp_path, CaptureConfig(max_size=20))
    assert small.images[0].shape == (15, 20, 3) and small.cameras.width[0] == 20
    assert np.allclose(small.cameras.fx[0], 25.0) and np.allclose(small.cameras.cx[0], 9.75)


def test_nerfstudio_split_lists_alpha_masks_and_mask_files(tmp_path):
    names = _write_images(tmp_path / "images", 4, mode="RGBA")
    data = {"fl_x": 30.0, "w": 40, "h": 30,
            "frames": [{"file_path": f"images/{n}", "transform_matrix": _pose(i)} for i, n in enumerate(names)],
            "train_filenames": ["images/im_0.png", "images/im_1.png", "images/im_3.png"],
            "test_filenames": ["images/im_2.png"]}
    (tmp_path / "transforms.json").write_text(json.dumps(data))
    cap = read_transforms(tmp_path, CaptureConfig())
    assert [f.split for f in cap.frames] == ["train", "train", "test", "train"]
    assert cap.masks is not None and cap.masks[0][10, 15] == 255 and cap.masks[0][25, 2] == 0
    assert read_transforms(tmp_path, CaptureConfig(masks="none")).masks is None
    # explicit mask files win over alpha
    (tmp_path / "m").mkdir()
    for i, fr in enumerate(data["frames"]):
        Image.fromarray(np.full((30, 40), 255 * (i % 2), np.uint8)).save(tmp_path / "m" / f"{i}.png")
        fr["mask_path"] = f"m/{i}.png"
    (tmp_path / "transforms.json").write_text(json.dumps(data))
    cap = read_transforms(tmp_path, CaptureConfig())
    assert cap.masks[0].max() == 0 and cap.masks[1].min() == 255


def _rotation(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]) @ np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


@pytest.mark.parametrize("rot, last, problem", [
    (np.zeros((3, 3)), [0, 0, 0, 1], "singular"),
    (1.01 * _rotation(0.3), [0, 0, 0, 1], "scaled or sheared"),
    (_rotation(0.3) @ np.array([[1, 0.05, 0], [0, 1, 0], [0, 0, 1]]), [0, 0, 0, 1], "scaled or sheared"),
    (_rotation(0.3) @ np.diag([1, 1, -1]), [0, 0, 0, 1], "reflection"),
    (_rotation(0.3), [0, 0, 1, 1], "last row"),
])
def test_non_rigid_poses_are_refused(tmp_path, rot, last, problem):
    _write_images(tmp_path / "images", 2)
    bad = np.eye(4)
    bad[:3, :3], bad[3] = rot, last
    frames = [{"file_path": "images/im_0.png", "transform_matrix": _pose(0)},
              {"file_path": "images/im_1.png", "transform_matrix": bad.tolist()}]
    (tmp_path / "transforms.json").write_text(json.dumps({"fl_x": 30.0, "frames": frames}))
    with pytest.raises(InputError, match=f"frame 1 \\(images/im_1.png\\).*{problem}") as err:
        read_transforms(tmp_path, CaptureConfig())
    assert err.value.path == str(tmp_path / "transforms.json")


def test_rounded_rigid_poses_are_accepted(tmp_path):
    _write_images(tmp_path / "images", 1)
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = _rotation(0.7), [0.1, 2.0, -0.3]
    frames = [{"file_path": "images/im_0.png", "transform_matrix": np.round(m, 4).tolist()}]  # 4 decimals
    (tmp_path / "transforms.json").write_text(json.dumps({"fl_x": 30.0, "frames": frames}))
    cap = read_transforms(tmp_path, CaptureConfig())
    assert np.allclose(cap.cameras.c2w[0], opengl_to_opencv(np.round(m, 4)))
