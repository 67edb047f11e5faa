"""Reading videos: the bundled cat clip, display rotation, and bad files through the CLI."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recon.capture.video_reader import read_video
from recon.cli import main
from recon.core.config import CaptureConfig
from recon.core.errors import InputError
from recon.core.fsutil import sha256_file

ROOT = Path(__file__).resolve().parents[2]
CAT = ROOT / "data" / "cat-pikachu-0.mp4"  # 384x216, 30 fps, 366 frames


def _write_video(path: Path, frames: list[np.ndarray], rotation: int = 0, fps: int = 10) -> Path:
    import av

    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.bit_rate = 20_000_000  # near-lossless: tests compare pixel values
        if rotation:
            s.set_display_rotation(rotation)
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def test_cat_video_picks_spread_frames():
    cfg = CaptureConfig(max_frames=8, max_size=200, test_every=4)
    cap = read_video(CAT, cfg)
    assert 6 <= len(cap) <= 8
    assert cap.cameras is None
    idx = np.array([f.index for f in cap.frames])
    ts = np.array([f.timestamp for f in cap.frames])
    assert np.all(np.diff(idx) > 0) and np.all(np.diff(ts) > 0)
    np.testing.assert_allclose(ts, idx / 30.0, atol=1e-3)
    # spread over the whole clip: first pick early, last late, no gap longer than three bins
    assert idx[0] < 366 / 8 and idx[-1] >= 366 * 7 / 8
    assert np.diff(idx).max() < 3 * 366 / 8
    assert [f.name for f in cap.frames] == [f"f{i:05d}" for i in idx]
    assert all(im.shape == (113, 200, 3) and im.dtype == np.uint8 for im in cap.images)
    assert [f.split for f in cap.frames][:5] == ["test", "train", "train", "train", "test"]
    assert cap.meta["source_kind"] == "video"
    assert cap.meta["source_hash"] == sha256_file(CAT)
    assert cap.meta["video"]["n_frames"] == 366 and cap.meta["video"]["size"] == [384, 216]
    assert cap.meta["video"]["fps"] == pytest.approx(30.0)


def test_picked_frames_are_the_decoded_frames(tmp_path):
    """Frame f<k> holds the k-th frame of the video: each frame shows its index as a grey level."""
    levels = [10 * i for i in range(24)]
    frames = [np.full((32, 48, 3), v, np.uint8) for v in levels]
    for i, f in enumerate(frames):  # texture, so no frame is "blurry" by accident
        f[::4, :, :] = 255 - levels[i]
    path = _write_video(tmp_path / "count.mp4", frames)
    cap = read_video(path, CaptureConfig(max_frames=6, blur_drop=0.0, dedup_threshold=0.0))
    assert len(cap) == 6
    for f, im in zip(cap.frames, cap.images):
        assert abs(float(np.median(im[1::4])) - levels[f.index]) < 3


def test_display_rotation_is_applied(tmp_path):
    img = np.zeros((32, 64, 3), np.uint8)
    img[:, :16] = 255  # bright left band of the stored frame
    path = _write_video(tmp_path / "rot.mp4", [img] * 6, rotation=90)
    cap = read_video(path, CaptureConfig(max_frames=2, blur_drop=0.0, dedup_threshold=0.0))
    im = cap.images[0]
    assert im.shape == (64, 32, 3)  # portrait after rotation
    # 90 degrees counter-clockwise: the left band ends up at the bottom
    assert im[-10:].mean() > 200 and im[:40].mean() < 40
    assert cap.meta["video"]["size"] == [32, 64] and cap.meta["video"]["rotation"] == 90


def _zero_bytes(tmp: Path) -> Path:
    p = tmp / "empty.mp4"
    p.write_bytes(b"")
    return p


def _text_file(tmp: Path) -> Path:
    p = tmp / "notes.mp4"
    p.write_text("this is not a video\n" * 20)
    return p


def _truncated(tmp: Path) -> Path:
    p = tmp / "cut.mp4"
    p.write_bytes(CAT.read_bytes()[: CAT.stat().st_size // 3])
    return p


def _audio_only(tmp: Path) -> Path:
    import av

    p = tmp / "sound.mp4"
    with av.open(str(p), "w") as c:
        s = c.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        for pkt in list(s.encode(frame)) + list(s.encode()):
            c.mux(pkt)
    return p


def _no_frames(tmp: Path) -> Path:
    import av

    p = tmp / "blank.mkv"
    with av.open(str(p), "w") as c:
        s = c.add_stream("mpeg4", rate=10)
        s.width, s.height, s.pix_fmt = 64, 32, "yuv420p"
        c.start_encoding()
    return p


BAD = [_zero_bytes, _text_file, _truncated, _audio_only, _no_frames]


@pytest.mark.parametrize("make", BAD, ids=[m.__name__.strip("_") for m in BAD])
def test_bad_video_is_one_line_exit_2_and_no_output(make, tmp_path, capsys):
    src = make(tmp_path)
    out = tmp_path / "out" / "cap"
    rc = main(["capture", str(src), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1, err
    assert err.startswith("recon: error: ") and str(src) in err, err
    assert not out.exists()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_bad_video_messages(tmp_path):
    with pytest.raises(InputError, match="empty"):
        read_video(_zero_bytes(tmp_path))
    with pytest.raises(InputError, match="cannot read video"):
        read_video(_text_file(tmp_path))
    with pytest.raises(InputError, match="no video stream"):
        read_video(_audio_only(tmp_path))
    with pytest.raises(InputError, match="not found"):
        read_video(tmp_path / "missing.mp4")
