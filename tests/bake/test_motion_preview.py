"""A rigged asset's motion video (input frames beside the model posed at their instants) and its report."""
from __future__ import annotations

import base64
import re

import av
import numpy as np
import pytest

from recon.bake.preview import frames_in_order, orbit_cameras, render, write_motion_video
from recon.bake.report import build_report
from recon.bake.rigging import posed_at
from recon.core.types import Capture, FrameInfo

from .conftest import make_normalization
from .test_rig import rigged  # noqa: F401 (the rigged tube fixture: keys at source frames 0, 3, .., 12)

SIZE = 96
INSTANTS = [9, 0, 5, 12, 3, 7]  # the capture's frames out of source order, some between the rig's keys


@pytest.fixture(scope="module")
def capture(rigged):  # noqa: F811
    """Photos of the tube posed at INSTANTS from one still camera (masks from coverage), normalised by N."""
    N = make_normalization()
    cams = orbit_cameras(np.array([0.4, 0.3, 0.0]), 2.0, 1, SIZE)[[0] * len(INSTANTS)]
    views = [render(posed_at(rigged, t), cams[[0]], lit=False)[0] for t in INSTANTS]
    images = [(v["rgb"] * 255 + 0.5).astype(np.uint8) for v in views]
    masks = [((v["alpha"] > 0.5) * 255).astype(np.uint8) for v in views]
    frames = [FrameInfo(name=f"f{t}", source="video.mp4", index=t) for t in INSTANTS]
    return Capture(images, cams.transformed(N), frames, masks, normalization=N)


def _decode(path) -> list[np.ndarray]:
    with av.open(str(path)) as video:
        return [f.to_ndarray(format="rgb24") for f in video.decode(video.streams.video[0])]


def test_frames_in_order_follow_the_source_and_spread_evenly(capture):
    assert [INSTANTS[i] for i in frames_in_order(capture, 10)] == [0, 3, 5, 7, 9, 12]
    assert [INSTANTS[i] for i in frames_in_order(capture, 4)] == [0, 5, 7, 12]


@pytest.fixture(scope="module")
def motion(rigged, capture, tmp_path_factory):  # noqa: F811
    path = tmp_path_factory.mktemp("motion") / "motion.mp4"
    return path, write_motion_video(rigged, capture, capture.normalization, path, size=SIZE, max_frames=4)


def test_motion_video_pairs_each_frame_with_the_model_posed_at_its_instant(motion):
    path, info = motion
    frames = _decode(path)
    assert info["motion_frames"] == 4 == len(frames) and info["motion_codec"] in ("libx264", "h264", "mpeg4")
    assert all(f.shape == (SIZE, 2 * SIZE, 3) for f in frames)  # photo | render, each SIZE high
    photo, model = [np.stack([f[:, k * SIZE:(k + 1) * SIZE] for f in frames]).astype(np.float64) for k in (0, 1)]
    assert np.abs(model[0] - model[-1]).mean() > 5  # the pose changes between instants 0 and 12
    # the render lands on its photo (the photos were rendered so): silhouettes against the dimmed / white backgrounds
    photo_in, model_in = np.abs(photo - 129).max(-1) > 40, model.min(-1) < 220
    iou = np.array([[(p & m).sum() / (p | m).sum() for m in model_in] for p in photo_in])
    assert np.all(np.diag(iou) > 0.7), iou
    assert np.all(np.diag(iou) > iou.max(1, initial=0, where=~np.eye(len(iou), dtype=bool))), iou


def test_report_plays_the_motion_offline(rigged, motion, monkeypatch):  # noqa: F811
    import recon.bake.report as report
    from recon.bake.writers.glb import ANIMATION

    monkeypatch.setattr(report, "viewer_script", lambda: "/* viewer */")  # the bundle itself is tested elsewhere
    path, _ = motion
    mp4 = path.read_bytes()
    metrics = {"triangles": len(rigged.faces), "joints": rigged.rig.num_joints, "animation_keys": rigged.rig.num_keys}
    page = build_report("tube", b"glb", metrics, motion=mp4, turntable=mp4, animation=ANIMATION)
    assert page.count("data:video/mp4;base64," + base64.b64encode(mp4).decode()) == 2
    assert "<h2>Motion</h2>" in page and page.count("<video autoplay loop muted playsinline") == 2
    assert "input frames (masks overlaid) beside the fitted model replaying their motion" in page
    viewer = re.search(r"<model-viewer [^>]*>", page).group(0)
    assert 'animation-name="motion"' in viewer and " autoplay " in viewer
    assert "<td>joints</td><td>3</td>" in page and "<td>animation_keys</td><td>5</td>" in page
    assert re.search(r"https?://", page) is None  # nothing to fetch
    still = build_report("tube", b"glb", {"triangles": 1})
    assert "animation-name" not in still and "<video" not in still and "Motion" not in still


class _StillSkeleton:
    """A one-joint ``rig_source`` (``bake_asset``'s) that holds still at two instants (normalised world)."""

    def skeleton(self) -> dict:
        return {"names": ["root"], "parents": [-1], "bind": np.eye(4)[None], "pose": np.tile(np.eye(4), (2, 1, 1, 1)),
                "instants": [0, 10]}

    def skin(self, x):
        return np.zeros((len(x), 4), np.int64), np.tile(np.float32([1, 0, 0, 0]), (len(x), 1))


def test_bake_asset_writes_the_motion_video_in_the_capture_frames(tmp_path):
    """Through bake_asset (the asset stood upright, cameras normalised): each photo lies under its render."""
    from dataclasses import replace

    from recon.bake import bake_asset
    from recon.bake.analytic_field import AnalyticField
    from recon.bake.extract import extract_surface

    from .test_bake_asset import CFG, _capture

    field, N = AnalyticField("torus", (0.55, 0.22)), make_normalization()
    cap = _capture(field, N, extract_surface(field, N, resolution=64))
    cap.frames = [replace(f, index=10 * i) for i, f in enumerate(cap.frames)]
    m = bake_asset(field, N, tmp_path, "torus", capture=cap, cfg=CFG, rig_source=_StillSkeleton())
    assert "motion.mp4" in m["files"] and m["motion_frames"] == 2 and m["joints"] == 1
    frames = np.stack(_decode(tmp_path / "asset" / "motion.mp4")).astype(np.float64)
    w = frames.shape[2] // 2
    photo_in, model_in = np.abs(frames[..., :w, :] - 129).max(-1) > 40, frames[..., w:, :].min(-1) < 220
    assert ((photo_in & model_in).sum((1, 2)) / (photo_in | model_in).sum((1, 2)) > 0.8).all()
    page = (tmp_path / "asset" / "report.html").read_text()
    assert 'animation-name="motion"' in page and page.count("<video autoplay") == 2
