"""Automatic masks for a static subject the cameras circle (recon.capture.auto_masks)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recon.capture.auto_masks import static_subject_masks
from recon.core.errors import InputError
from recon.core.types import Cameras, Capture, FrameInfo

from .conftest import orbit_cameras

DTU24 = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "dtu" / "scan24"


def _capture(images, cams) -> Capture:
    frames = [FrameInfo(name=f"{i:03d}", source=f"{i:03d}.png") for i in range(len(images))]
    return Capture(images=images, cameras=cams, frames=frames)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 127, b > 127
    return float((a & b).sum() / max((a | b).sum(), 1))


@pytest.mark.skipif(not (DTU24 / "cameras_sphere.npz").is_file(), reason="DTU scan24 not available")
def test_dtu24_reduced_matches_dtu_masks():
    from recon.capture.idr_reader import read_idr
    from recon.core.config import CaptureConfig

    cap = read_idr(DTU24, CaptureConfig(masks="none", max_size=400, test_every=0))
    gt = read_idr(DTU24, CaptureConfig(max_size=400, test_every=0)).masks
    assert cap.masks is None
    idx = np.unique(np.linspace(0, len(cap) - 1, 16).round().astype(int))
    cap = cap.subset(idx)
    masks, stats = static_subject_masks(cap)
    assert len(masks) == len(idx)
    assert all(m.dtype == np.uint8 and m.shape == im.shape[:2] and set(np.unique(m)) <= {0, 255}
               for m, im in zip(masks, cap.images))
    ious = [_iou(m, gt[i]) for m, i in zip(masks, idx)]
    # Measured 0.982 mean / 0.925 min (16 views at 400 px); bounds leave a margin.
    assert np.mean(ious) > 0.93, ious
    assert np.min(ious) > 0.80, ious
    assert stats["method"] == "triangulated"
    assert stats["n_points_used"] > 1000
    assert len(stats["fg_fraction"]) == len(idx)


def test_parallel_forward_facing_cameras_find_no_subject():
    n = 6
    c2w = np.tile(np.eye(4), (n, 1, 1))
    c2w[:, 0, 3] = np.linspace(-1.0, 1.0, n)  # sliding sideways, all looking along +z
    cams = Cameras.create(c2w, 60.0, 60.0, 32.0, 24.0, 64, 48)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(n)]
    with pytest.raises(InputError) as exc:
        static_subject_masks(_capture(images, cams))
    msg = str(exc.value)
    assert msg.startswith("no subject found: ")
    assert "do not converge" in msg
    assert "\n" not in msg


def test_textureless_orbit_finds_no_subject():
    cams = orbit_cameras(8, center=(0.0, 0.0, 0.0), distance=3.0)
    images = [np.full((48, 64, 3), 128, np.uint8) for _ in range(8)]
    with pytest.raises(InputError) as exc:
        static_subject_masks(_capture(images, cams))
    msg = str(exc.value)
    assert msg.startswith("no subject found: ") and "\n" not in msg
