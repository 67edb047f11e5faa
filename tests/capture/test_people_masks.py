"""The "people" segmenter (MediaPipe selfie segmentation / pose) on a real photo and a real video."""

import importlib.util
import sys

import cv2
import numpy as np
import pytest

from recon.capture.segment import segment_capture
from recon.core.errors import InputError, MissingDependencyError
from recon.core.types import Capture, FrameInfo

needs_mediapipe = pytest.mark.skipif(importlib.util.find_spec("mediapipe") is None,
                                     reason="mediapipe not installed (extra 'humans', scripts/setup.sh)")


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(((a > 0) & (b > 0)).sum() / max(1, ((a > 0) | (b > 0)).sum()))


def one_frame(img: np.ndarray, name: str = "f00000") -> Capture:
    return Capture(images=[img], cameras=None, frames=[FrameInfo(name=name, source="test", index=0)])


def parts(mask: np.ndarray) -> np.ndarray:
    """Areas of the 8-connected parts of ``mask``, largest first."""
    n, _, st, _ = cv2.connectedComponentsWithStats((mask > 0).astype(np.uint8), connectivity=8)
    return np.sort(st[1:, cv2.CC_STAT_AREA])[::-1]


def flat_texture(h: int = 240, w: int = 320) -> np.ndarray:
    """A smooth grey-brown gradient with faint noise: nothing like a person."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([120 + 40 * xx, 110 + 30 * yy, 90 + 20 * xx * yy], -1)
    return np.clip(base + rng.normal(0, 3, (h, w, 3)), 0, 255).astype(np.uint8)


@needs_mediapipe
@pytest.mark.parametrize("mode", ["selfie", "pose"])
def test_astronaut(mode):
    """skimage's astronaut (512x512, public domain): the face at about x 185..250, y 60..150 (checked by
    eye on an overlay), the flag on the left, the shuttle on the right, dark top corners."""
    skdata = pytest.importorskip("skimage.data")
    img = skdata.astronaut()
    out = segment_capture(one_frame(img, "astronaut"), "people", mode=mode)
    m = out.masks[0] > 0
    areas = parts(m)
    print(f"people ({mode}) astronaut: coverage {m.mean():.4f}, parts {areas.tolist()[:5]}, "
          f"face box {m[60:150, 185:250].mean():.3f}")
    assert m.shape == img.shape[:2] and len(areas) >= 1 and areas[0] >= 0.95 * m.sum()  # one main blob
    assert 0.3 <= m.mean() <= 0.7
    assert m[60:150, 185:250].mean() >= 0.98  # the face
    assert m[250:450, 100:250].mean() >= 0.95  # the suit's chest
    for corner in (m[:64, :64], m[:64, -64:], m[-24:, :8]):
        assert not corner.any()
    assert m[20:250, 380:450].mean() <= 0.01 and m[:200, :60].mean() <= 0.01  # shuttle, flag
    meta = out.meta["masks"]
    assert meta["method"] == "people" and meta["mode"] == mode and meta["frames_with_person"] == 1


@pytest.fixture(scope="module")
def human_video(shared_data):
    from recon.capture.video_reader import read_video
    from recon.core.config import CaptureConfig

    return read_video(shared_data / "videos/human-cap-3.mp4", CaptureConfig(max_frames=3, max_size=480, test_every=0))


@needs_mediapipe
def test_video_frames(human_video):
    """A person standing and waving in a kitchen (human-cap-3.mp4, 3 frames at 267x480)."""
    cap = human_video
    got = {mode: segment_capture(cap, "people", mode=mode) for mode in ("selfie", "pose")}
    agree = [iou(a, b) for a, b in zip(got["selfie"].masks, got["pose"].masks)]
    for mode, out in got.items():
        print(f"people ({mode}) human-cap-3: coverage {out.meta['masks']['coverage']}")
        assert out.meta["masks"]["frames_with_person"] == 3 and out.meta["masks"]["empty"] == []
        for m, img in zip(out.masks, cap.images):
            assert m.shape == img.shape[:2] and 0.08 <= (m > 0).mean() <= 0.3
            ys, xs = np.nonzero(m)
            assert ys.max() - ys.min() >= 0.5 * m.shape[0]  # a standing person, head to feet
            assert parts(m)[0] >= 0.9 * (m > 0).sum()
            assert not m[:40].any()  # the ceiling
    print(f"selfie vs pose IoU per frame: {[round(x, 3) for x in agree]}")
    assert min(agree) >= 0.8


@needs_mediapipe
def test_no_person(human_video):
    flat = Capture(images=[flat_texture(), flat_texture(200, 150)], cameras=None,
                   frames=[FrameInfo(name=f"f{i:05d}", source="test", index=i) for i in range(2)])
    for mode in ("selfie", "pose"):
        with pytest.raises(InputError) as e:
            segment_capture(flat, "people", mode=mode)
        assert str(e.value) == (f"no person found in any of the 2 frames (people segmenter, mode {mode}); "
                                f"use another mask method for this subject")
    # a person in one frame of two: the other frame's mask is empty
    img = human_video.images[0]
    mixed = Capture(images=[img, flat_texture(*img.shape[:2])], cameras=None,
                    frames=[FrameInfo(name=n, source="test", index=i) for i, n in enumerate(["person", "wall"])])
    meta = segment_capture(mixed, "people", mode="pose").meta["masks"]
    assert meta["frames_with_person"] == 1 and meta["no_person"] == ["wall"] and meta["empty"] == ["wall"]


def test_bad_options_and_missing_package(monkeypatch):
    cap = one_frame(flat_texture())
    with pytest.raises(InputError, match="people mode must be one of selfie, pose, got 'face'"):
        segment_capture(cap, "people", mode="face")
    with pytest.raises(InputError, match=r"people threshold must be a number in \(0, 1\), got 1.5"):
        segment_capture(cap, "people", threshold=1.5)
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # import mediapipe -> ImportError
    with pytest.raises(MissingDependencyError, match=r"the people segmenter needs the optional package "
                                                     r"'mediapipe': bash scripts/setup.sh"):
        segment_capture(cap, "people")
