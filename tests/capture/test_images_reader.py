"""Reading unposed photo folders: order, masks, alpha, EXIF orientation and focal length, errors."""
from __future__ import annotations

import math
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from recon.capture.image_folder_reader import exif_focal_px, read_image_folder
from recon.capture.load import detect_source
from recon.cli import main
from recon.core.config import CaptureConfig
from recon.core.errors import InputError


def _img(path: Path, w=40, h=30, value=None, exif: dict | None = None, mode="RGB", **save) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(zlib.crc32(path.name.encode()))
    arr = rng.integers(0, 255, (h, w, len(mode)), dtype=np.uint8) if value is None else \
        np.full((h, w, len(mode)), value, np.uint8)
    im = Image.fromarray(arr[..., 0] if mode == "L" else arr)
    if exif:
        ex = Image.Exif()
        for tag, v in exif.items():
            if tag >= 0xA000 or tag in (0x920A,):
                ex.get_ifd(0x8769)[tag] = v
            else:
                ex[tag] = v
        save["exif"] = ex
    im.save(path, **save)
    return path


def test_natural_order_split_and_hash(tmp_path):
    for name in ["img10.png", "img2.png", "img1.png", "IMG3.png"]:
        _img(tmp_path / "set" / name)
    (tmp_path / "set" / "notes.txt").write_text("not an image")
    assert detect_source(tmp_path / "set") == "images"
    cap = read_image_folder(tmp_path / "set", CaptureConfig(test_every=2))
    assert [f.name for f in cap.frames] == ["img1", "img2", "IMG3", "img10"]
    assert [f.split for f in cap.frames] == ["test", "train", "test", "train"]
    assert cap.cameras is None and cap.masks is None
    assert len(cap.meta["source_hash"]) == 64 and cap.meta["source_kind"] == "images"
    assert cap.meta["intrinsics_prior"] == {}


def test_images_subfolder_with_masks_and_downscale(tmp_path):
    root = tmp_path / "obj"
    for i in range(3):
        _img(root / "images" / f"{i}.jpg", w=80, h=60)
        m = np.zeros((60, 80), np.uint8)
        m[10:50, 20:60] = 255
        Image.fromarray(m).save((root / "masks").mkdir(exist_ok=True, parents=True) or root / "masks" / f"{i}.png")
    cap = read_image_folder(root, CaptureConfig(max_size=40))
    assert [im.shape for im in cap.images] == [(30, 40, 3)] * 3
    assert cap.masks is not None and cap.masks[0].shape == (30, 40)
    assert set(np.unique(cap.masks[0])) == {0, 255}
    assert cap.masks[0][15, 20] == 255 and cap.masks[0][2, 2] == 0


def test_colmap_style_mask_names(tmp_path):
    _img(tmp_path / "images" / "a.jpg")
    _img(tmp_path / "masks" / "a.jpg.png", mode="L", value=255)
    cap = read_image_folder(tmp_path)
    assert cap.masks[0].min() == 255


def test_missing_mask_and_wrong_size_mask(tmp_path):
    _img(tmp_path / "images" / "a.png")
    _img(tmp_path / "images" / "b.png")
    _img(tmp_path / "masks" / "a.png", mode="L")
    with pytest.raises(InputError, match="no mask for image b.png"):
        read_image_folder(tmp_path)
    _img(tmp_path / "masks" / "b.png", mode="L", w=20, h=15)
    with pytest.raises(InputError, match=r"b.png: mask is 20x15 but image b.png is 40x30"):
        read_image_folder(tmp_path)
    assert read_image_folder(tmp_path, CaptureConfig(masks="none")).masks is None


def test_alpha_channels_are_masks(tmp_path):
    for i in range(2):
        _img(tmp_path / f"{i}.png", mode="RGBA", value=200)
    cap = read_image_folder(tmp_path)
    assert cap.masks is not None and cap.masks[0].min() == 255


def test_exif_orientation_is_applied(tmp_path):
    _img(tmp_path / "a.jpg", w=40, h=30, exif={0x0112: 6})  # rotate 90 cw to display
    _img(tmp_path / "b.jpg", w=30, h=40)
    cap = read_image_folder(tmp_path)  # both upright 30x40: one size, no intrinsics needed
    assert [im.shape[:2] for im in cap.images] == [(40, 30), (40, 30)]


def test_exif_focal_length_priors(tmp_path):
    _img(tmp_path / "a.jpg", w=60, h=40, exif={0xA405: 28})  # 35 mm equivalent
    # 4 mm lens, sensor 1000 px per cm (FocalPlaneResolutionUnit 3 = cm)
    _img(tmp_path / "b.jpg", w=60, h=40, exif={0x920A: 4.0, 0xA20E: 1000.0, 0xA210: 3})
    cap = read_image_folder(tmp_path, CaptureConfig(max_size=30))
    pri = cap.meta["intrinsics_prior"]
    assert pri["a"] == pytest.approx(28 * math.hypot(60, 40) / math.hypot(36, 24) * 0.5)
    assert pri["b"] == pytest.approx(4.0 * 100.0 * 0.5)


def test_exif_focal_px_rules():
    assert exif_focal_px({}, 100, 80) is None
    assert exif_focal_px({0x920A: 5.0}, 100, 80) is None  # no sensor size: unknown
    assert exif_focal_px({0xA405: 0}, 100, 80) is None
    # inch units and an image resized from 4000 px wide after capture
    f = exif_focal_px({0x920A: 4.0, 0xA20E: 2540.0, 0xA210: 2, 0xA002: 4000}, 1000, 750)
    assert f == pytest.approx(4.0 * 100.0 * 1000 / 4000)


def test_mixed_sizes_with_exif_are_accepted(tmp_path):
    _img(tmp_path / "a.jpg", w=60, h=40, exif={0xA405: 28})
    _img(tmp_path / "b.jpg", w=40, h=30, exif={0xA405: 50})
    cap = read_image_folder(tmp_path)
    assert set(cap.meta["intrinsics_prior"]) == {"a", "b"}


def test_mixed_sizes_without_intrinsics_cli_error(tmp_path, capsys):
    src = tmp_path / "photos"
    _img(src / "a.png", w=40, h=30)
    _img(src / "b.png", w=40, h=30)
    _img(src / "c.png", w=64, h=48)
    out = tmp_path / "out" / "cap"
    rc = main(["capture", str(src), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"recon: error: {src}: images of mixed sizes (40x30, 64x48) and no intrinsics"), err
    assert not out.exists() and not (tmp_path / "out").exists()


def test_unreadable_image_names_the_file(tmp_path):
    _img(tmp_path / "a.png")
    (tmp_path / "b.png").write_text("not a png")
    with pytest.raises(InputError, match="b.png"):
        read_image_folder(tmp_path)
