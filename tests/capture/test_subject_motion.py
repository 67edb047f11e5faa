"""Does the subject move? The evidence behind the automatic segmenter's choice (motion or static)."""
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from recon.capture.load import pick_segmenter
from recon.capture.subject_motion import subject_motion
from recon.core.config import CaptureConfig
from recon.core.types import Capture, FrameInfo
from recon.synth.composite import background_photo, moving_subject_video

MESHES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "meshes"


def frames(n: int, timed: bool = True) -> list[FrameInfo]:
    return [FrameInfo(name=f"f{i:05d}", source="v.mp4", index=i, timestamp=i / 30 if timed else None)
            for i in range(n)]


def camera_pan(n: int = 12) -> list[np.ndarray]:
    """A camera turning and zooming over a still photo: one homography per frame, nothing moves."""
    photo = background_photo("coffee")
    out = []
    for k in range(n):
        a, s = np.radians(0.5 * k), 0.8 * (1 + 0.01 * k)
        R = s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        c = np.array([128 + 2 * k, 96 + k]) - R @ np.array([photo.shape[1] / 2, photo.shape[0] / 2])
        H = np.array([[*R[0], c[0]], [*R[1], c[1]], [0, 0, 1]])
        out.append(np.ascontiguousarray(cv2.warpPerspective(photo, H, (256, 192))[..., :3]))
    return out


@pytest.mark.parametrize("background", ["chelsea", "coffee"])
def test_a_moving_subject_is_seen_and_picks_motion(background):
    path = MESHES / "avocado/avocado.gltf"
    if not path.is_file():
        pytest.skip(f"{path} not available")
    cap = moving_subject_video(path, n_frames=14, background=background, seed=0).capture
    ev = subject_motion(cap)
    assert ev["moving"], ev["reason"]
    assert sum(p["vote"] for p in ev["pairs"]) >= 6
    method, why = pick_segmenter(cap, CaptureConfig())
    assert method == "motion" and why.startswith("automatic: ") and why.endswith("the subject moves")


def test_a_still_scene_under_a_turning_camera_picks_static():
    cap = Capture(images=camera_pan(), cameras=None, frames=frames(12))
    ev = subject_motion(cap)
    assert not ev["moving"] and ev["reason"].endswith("the subject stands still")
    assert pick_segmenter(cap, CaptureConfig())[0] == "static"


def test_photo_sets_and_source_masks():
    imgs = camera_pan(4)
    photos = Capture(images=imgs, cameras=None, frames=frames(4, timed=False))
    assert subject_motion(photos)["reason"].startswith("a photo set")
    assert pick_segmenter(photos, CaptureConfig())[0] == "static"
    masked = replace(photos, masks=[np.zeros(im.shape[:2], np.uint8) for im in imgs])
    assert pick_segmenter(masked, CaptureConfig()) == ("none", None)  # the source's own masks win
    assert pick_segmenter(masked, CaptureConfig(segmenter="motion")) == ("motion", None)
