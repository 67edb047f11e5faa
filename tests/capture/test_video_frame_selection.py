"""Frame selection on synthetic frames: blurry frames and duplicates are dropped, picks spread over time."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from recon.capture.frame_selection import drop_blurry, frame_stats, select_frames, sharpness, thumb_difference
from recon.core.config import CaptureConfig


def _scene(seed: int = 0, size: int = 600) -> np.ndarray:
    """A large random texture (blobs and edges at several scales) to pan a virtual camera over."""
    rng = np.random.default_rng(seed)
    img = np.zeros((size, size), np.float32)
    for cells in (8, 32, 96):
        noise = rng.random((cells, cells)).astype(np.float32)
        img += cv2.resize(noise, (size, size), interpolation=cv2.INTER_NEAREST)
    return np.clip(img / 3 * 255, 0, 255).astype(np.uint8)


def _video(n: int, pause: range = range(0), blurry: set[int] = frozenset()) -> list[np.ndarray]:
    """n grey 120x160 frames of a camera panning right, still during ``pause``, defocused on ``blurry``."""
    scene = _scene()
    frames, x = [], 0
    for i in range(n):
        if i not in pause:
            x += 2
        f = scene[100:220, x:x + 160].copy()
        if i in blurry:
            f = cv2.GaussianBlur(f, (0, 0), 2.5)
        frames.append(f)
    return frames


def _stats(frames):
    sharp, thumbs = zip(*(frame_stats(f) for f in frames))
    return np.array(sharp), list(thumbs)


def test_sharpness_ranks_blur():
    f = _scene()[:240, :320]
    values = [sharpness(cv2.GaussianBlur(f, (0, 0), s)) if s else sharpness(f) for s in (0, 1, 2, 4)]
    assert values == sorted(values, reverse=True)
    assert values[0] > 3 * values[2]


def test_sharpness_accepts_rgb_and_large_frames():
    rgb = cv2.cvtColor(_scene(size=1200), cv2.COLOR_GRAY2RGB)
    assert sharpness(rgb) > 0


def test_drop_blurry_fraction():
    sharp = np.array([5.0, 1.0, 4.0, 2.0, 3.0, 0.5, 6.0, 7.0])
    keep = drop_blurry(sharp, 0.25)
    assert keep.sum() == 6 and not keep[1] and not keep[5]
    assert drop_blurry(sharp, 0.0).all()
    assert drop_blurry(np.array([1.0]), 0.9).all()  # never drops everything


def test_thumb_difference_sees_motion_not_noise():
    frames = _video(4)
    _, thumbs = _stats(frames)
    rng = np.random.default_rng(1)
    noisy = np.clip(frames[0] + rng.normal(0, 2, frames[0].shape), 0, 255).astype(np.uint8)
    assert thumb_difference(thumbs[0], frame_stats(noisy)[1]) < 0.01
    assert thumb_difference(thumbs[0], thumbs[3]) > 0.05


def test_blurred_frames_are_not_picked():
    blurry = {3, 10, 11, 25, 40, 41, 42, 57}
    frames = _video(60, blurry=blurry)
    sharp, thumbs = _stats(frames)
    picks = select_frames(sharp, thumbs, CaptureConfig(max_frames=20, blur_drop=0.2, dedup_threshold=0.0))
    assert len(picks) == 20
    assert not set(picks.tolist()) & blurry


def test_a_plain_stretch_of_video_is_not_taken_for_blur():
    """Sharpness falls where the view holds less texture; blur is judged against neighbouring frames."""
    frames = _video(120, blurry={5, 17, 100})
    for i in range(40, 80):  # the camera passes a low-contrast wall: sharp, but little texture
        frames[i] = (frames[i] // 4 + 100).astype(np.uint8)
    sharp, thumbs = _stats(frames)
    assert sharp[40:80].max() < 0.5 * np.median(sharp[:40])  # globally, the wall would look blurry
    picks = select_frames(sharp, thumbs, CaptureConfig(max_frames=12, blur_drop=0.4, dedup_threshold=0.0))
    assert len(picks) == 12 and np.array_equal(picks // 10, np.arange(12))  # every bin keeps a frame
    assert not {5, 17, 100} & set(picks.tolist())


def test_duplicates_during_a_pause_are_dropped():
    pause = range(20, 50)  # the camera stops for 30 frames
    frames = _video(80, pause=pause)
    sharp, thumbs = _stats(frames)
    cfg = CaptureConfig(max_frames=80, blur_drop=0.0, dedup_threshold=0.01)
    picks = select_frames(sharp, thumbs, cfg)
    paused = [i for i in picks if 19 <= i < 50]  # frame 19 already shows the paused view
    assert len(paused) == 1, picks
    assert len(picks) > 40  # moving frames are distinct and kept
    # consecutive picks always differ by at least the threshold
    assert all(thumb_difference(thumbs[a], thumbs[b]) >= cfg.dedup_threshold for a, b in zip(picks, picks[1:]))


def test_picks_spread_over_time_and_prefer_the_sharpest_in_each_bin():
    n, k = 200, 10
    frames = _video(n, blurry={i for i in range(n) if i % 4})  # only every 4th frame is sharp
    sharp, thumbs = _stats(frames)
    picks = select_frames(sharp, thumbs, CaptureConfig(max_frames=k, blur_drop=0.0, dedup_threshold=0.0))
    assert len(picks) == k
    assert np.all(np.diff(picks) > 0)
    assert all(i % 4 == 0 for i in picks)  # the sharp frame of each bin
    assert np.array_equal(picks // (n // k), np.arange(k))  # one per time bin


@pytest.mark.parametrize("n", [0, 1, 5])
def test_short_inputs(n):
    frames = _video(n)
    sharp, thumbs = _stats(frames) if n else (np.zeros(0), [])
    picks = select_frames(sharp, thumbs, CaptureConfig(max_frames=10))
    assert 1 <= len(picks) <= n or n == 0 and len(picks) == 0
