"""Bad capture input: one line naming the file, exit code 2, no output folder left behind."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from recon.cli import main


def _image(path: Path, size=(40, 30)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((size[1], size[0], 3), np.uint8)).save(path)


def _transforms(folder: Path, frames, **top) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / "transforms.json"
    p.write_text(json.dumps({"fl_x": 30.0, **top, "frames": frames}))
    return p


def _frame(i: int, **extra):
    return {"file_path": f"images/{i}.png", "transform_matrix": np.eye(4).tolist(), **extra}


def _missing_source(tmp: Path):
    return tmp / "nope", tmp / "nope"


def _malformed_json(tmp: Path):
    (tmp / "src").mkdir()
    (tmp / "src" / "transforms.json").write_text('{"frames": [ {"file_path": "a.png", }')
    return tmp / "src", tmp / "src" / "transforms.json"


def _no_transform_matrix(tmp: Path):
    _image(tmp / "src" / "images" / "0.png")
    p = _transforms(tmp / "src", [{"file_path": "images/0.png"}])
    return tmp / "src", p


def _missing_image(tmp: Path):
    _image(tmp / "src" / "images" / "0.png")
    _transforms(tmp / "src", [_frame(0), _frame(1)])
    return tmp / "src", tmp / "src" / "images" / "1"


def _mask_size_mismatch(tmp: Path):
    _image(tmp / "src" / "images" / "0.png")
    _image(tmp / "src" / "masks" / "0.png", size=(20, 15))
    _transforms(tmp / "src", [_frame(0, mask_path="masks/0.png")])
    return tmp / "src", tmp / "src" / "masks" / "0.png"


def _idr_mask_size_mismatch(tmp: Path):
    src = tmp / "src"
    _image(src / "image" / "000.png")
    _image(src / "mask" / "000.png", size=(41, 30))
    P = np.eye(4)
    P[:3, :3] = [[30, 0, 20], [0, 30, 15], [0, 0, 1]]
    P[2, 3] = 3.0
    np.savez(src / "cameras_sphere.npz", world_mat_0=P, scale_mat_0=np.eye(4))
    return src, src / "mask" / "000.png"


def _posed(tmp: Path, matrix: np.ndarray):
    _image(tmp / "src" / "images" / "0.png")
    return tmp / "src", _transforms(tmp / "src", [{**_frame(0), "transform_matrix": matrix.tolist()}])


def _singular_pose(tmp: Path):
    return _posed(tmp, np.zeros((4, 4)))


def _scaled_pose(tmp: Path):
    return _posed(tmp, np.diag([2.0, 2.0, 2.0, 1.0]))


def _mirrored_pose(tmp: Path):
    return _posed(tmp, np.diag([1.0, 1.0, -1.0, 1.0]))


def _idr_singular_projection(tmp: Path):
    src = tmp / "src"
    _image(src / "image" / "000.png")
    P = np.eye(4)
    P[:3] = [[30, 0, 20, 1], [0, 30, 15, 1], [30, 30, 35 + 1e-13, 2]]  # row 3 = row 1 + row 2, up to rounding
    np.savez(src / "cameras_sphere.npz", world_mat_0=P, scale_mat_0=np.eye(4))
    return src, src / "cameras_sphere.npz"


def _colmap_zero_quaternion(tmp: Path):
    src = tmp / "src"
    _image(src / "images" / "0.png")
    (src / "cameras.txt").write_text("1 PINHOLE 40 30 30 30 20 15\n")
    (src / "images.txt").write_text("1 0 0 0 0 0 0 1 1 0.png\n\n")
    return src, src / "images.txt"


def _image_size_vs_wh(tmp: Path):
    _image(tmp / "src" / "images" / "0.png")
    _image(tmp / "src" / "images" / "1.png", size=(50, 30))
    _transforms(tmp / "src", [_frame(0), _frame(1)], w=40, h=30)
    return tmp / "src", tmp / "src" / "images" / "1.png"


def _no_intrinsics(tmp: Path):
    _image(tmp / "src" / "images" / "0.png")
    p = tmp / "src" / "transforms.json"
    p.write_text(json.dumps({"frames": [_frame(0)]}))
    return tmp / "src", p


def _no_frames(tmp: Path):
    (tmp / "src").mkdir()
    (tmp / "src" / "transforms.json").write_text(json.dumps({"camera_angle_x": 0.7}))
    return tmp / "src", tmp / "src" / "transforms.json"


def _nothing_readable(tmp: Path):
    (tmp / "src").mkdir()
    (tmp / "src" / "notes.txt").write_text("hello")
    return tmp / "src", tmp / "src"


CASES = [_missing_source, _malformed_json, _no_transform_matrix, _missing_image, _mask_size_mismatch,
         _idr_mask_size_mismatch, _image_size_vs_wh, _no_intrinsics, _no_frames, _nothing_readable,
         _singular_pose, _scaled_pose, _mirrored_pose, _idr_singular_projection, _colmap_zero_quaternion]


@pytest.mark.parametrize("case", CASES, ids=[c.__name__.strip("_") for c in CASES])
def test_bad_input(case, tmp_path, capsys):
    source, named = case(tmp_path)
    out = tmp_path / "out" / "cap"
    rc = main(["capture", str(source), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1, err
    assert err.startswith("recon: error: ") and str(named) in err, err
    assert not out.exists()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
