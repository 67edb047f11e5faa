"""Read a video file into an unposed Capture (cameras come later, from SfM).

Two streaming passes with PyAV, so a long video never sits in memory:

1. decode every frame to a small grey copy and keep only its sharpness and a
   thumbnail (``frame_selection.frame_stats``), plus its timestamp;
2. ``select_frames`` picks the frames to keep; decode again and convert only
   those to RGB (downscaled to ``cfg.max_size``), stopping after the last pick.

Frames are named ``f<index>`` after their index in the video (``f00042``), and
keep that index and their timestamp (seconds) in ``FrameInfo``. The display
rotation of phone videos (display matrix) is applied.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from ..core.config import CaptureConfig
from ..core.errors import InputError
from ..core.fsutil import sha256_file
from ..core.log import get_logger
from ..core.progress import progress_bar
from ..core.types import Capture, FrameInfo
from .frame_selection import SHARPNESS_SIZE, fit_size, frame_stats, select_frames
from .split import holdout_split

log = get_logger(__name__)


def _av():
    import av  # a hard dependency, imported here so `import recon.capture` stays light

    return av


def open_video(path: Path):
    av = _av()
    try:
        container = av.open(str(path))
    except av.FFmpegError as exc:
        raise InputError(path, f"cannot read video ({exc.strerror or exc.__class__.__name__})") from None
    if not container.streams.video:
        container.close()
        raise InputError(path, "no video stream in the file")
    return container


def decode_frames(path: Path, container, stream) -> Iterator:
    """Decoded frames of ``stream``; a decoding error becomes an InputError naming the file."""
    av = _av()
    i = 0
    try:
        for frame in container.decode(stream):
            yield frame
            i += 1
    except av.FFmpegError as exc:
        raise InputError(path, f"corrupt video: decoding failed after {i} frames "
                               f"({exc.strerror or exc.__class__.__name__})") from None


def rotate_image(img: np.ndarray, rotation: int) -> np.ndarray:
    """Apply the display rotation (degrees counter-clockwise, a multiple of 90)."""
    k = int(round(rotation / 90.0)) % 4
    return np.ascontiguousarray(np.rot90(img, k)) if k else img


def _fps(stream) -> float | None:
    rate = stream.average_rate or stream.guessed_rate
    return float(rate) if rate else None


def _timestamp(frame, index: int, fps: float | None) -> float:
    if frame.time is not None:
        return float(frame.time)
    return index / fps if fps else float(index)


def _scan(path: Path) -> tuple[np.ndarray, list[np.ndarray], list[float], dict]:
    """First pass: sharpness, thumbnail and timestamp of every frame, plus stream facts."""
    sharp: list[float] = []
    thumbs: list[np.ndarray] = []
    times: list[float] = []
    with open_video(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        fps = _fps(stream)
        rotation = 0
        size = (stream.codec_context.width, stream.codec_context.height)
        with progress_bar(f"scanning {path.name}", total=stream.frames or None) as bar:
            for frame in decode_frames(path, container, stream):
                if not sharp:
                    rotation = int(frame.rotation or 0)
                    size = (frame.width, frame.height)
                w, h = fit_size(frame.width, frame.height, SHARPNESS_SIZE)
                grey = frame.reformat(width=w, height=h, format="gray", interpolation="AREA").to_ndarray()
                s, t = frame_stats(rotate_image(grey, rotation))
                sharp.append(s)
                thumbs.append(t)
                times.append(_timestamp(frame, len(times), fps))
                bar.advance(1)
    if not sharp:
        raise InputError(path, "the video has no frames")
    if rotation % 180:
        size = size[::-1]
    facts = {"fps": fps, "n_frames": len(sharp), "size": [int(size[0]), int(size[1])], "rotation": rotation}
    return np.asarray(sharp), thumbs, times, facts


def _decode_picks(path: Path, picks: np.ndarray, max_size: int | None, rotation: int) -> list[np.ndarray]:
    """Second pass: RGB images of the frames ``picks`` (increasing indices), downscaled."""
    wanted = set(int(i) for i in picks)
    last = int(picks[-1])
    images: list[np.ndarray] = []
    with open_video(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        with progress_bar(f"decoding {len(picks)} frames", total=len(picks)) as bar:
            for i, frame in enumerate(decode_frames(path, container, stream)):
                if i in wanted:
                    w, h = fit_size(frame.width, frame.height, max_size) if max_size else (frame.width, frame.height)
                    rgb = frame.reformat(width=w, height=h, format="rgb24", interpolation="AREA").to_ndarray()
                    images.append(rotate_image(rgb, rotation))
                    bar.advance(1)
                if i >= last:
                    break
    if len(images) != len(picks):
        raise InputError(path, f"video decoded differently on the second pass "
                               f"({len(images)} of {len(picks)} picked frames found)")
    return images


def read_video(path: str | Path, cfg: CaptureConfig | None = None) -> Capture:
    """Read a video into a Capture of the selected frames, without cameras.

    Keeps up to ``cfg.max_frames`` sharp, distinct frames spread over the video
    (``frame_selection``), downscaled to ``cfg.max_size``; every
    ``cfg.test_every``-th kept frame is held out as test.
    """
    cfg = cfg or CaptureConfig()
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "video file not found")
    if path.stat().st_size == 0:
        raise InputError(path, "cannot read video (the file is empty)")
    sharp, thumbs, times, facts = _scan(path)
    picks = select_frames(sharp, thumbs, cfg)
    del thumbs
    log.info(f"{path.name}: {facts['n_frames']} frames, {facts['size'][0]}x{facts['size'][1]} "
             f"@ {facts['fps'] or 0:.4g} fps; kept {len(picks)} (sharp, distinct, spread over time)")
    images = _decode_picks(path, picks, cfg.max_size, facts["rotation"])
    splits = holdout_split(len(picks), cfg.test_every)
    frames = [FrameInfo(name=f"f{int(i):05d}", source=str(path), index=int(i), timestamp=times[int(i)],
                        split=s) for i, s in zip(picks, splits)]
    meta = {
        "source": str(path),
        "source_kind": "video",
        "source_hash": sha256_file(path),
        "video": facts,
        "sharpness": [float(sharp[int(i)]) for i in picks],
    }
    return Capture(images=images, cameras=None, frames=frames, meta=meta)
