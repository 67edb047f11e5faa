"""Masks the user supplies: a folder of mask images or a mask video.

Folder: one file per frame, matched by name stem (``masks/f00042.png`` for frame
``f00042``), any image suffix recon reads. Video: one mask frame per source
video frame; capture frame i takes mask frame ``cap.frames[i].index``.

A mask must have its frame's size, or an exact integer multiple of it (the
frame was downscaled; the mask is box-filtered down the same way), or, for a
mask video, the source video's size (``cap.meta["video"]["size"]``). Any other
size is refused. Empty masks are kept and show up in the stats.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import InputError
from ..core.imageio import IMAGE_SUFFIXES, read_mask
from ..core.types import Capture
from .frame_files import resize_mask

VIDEO_SUFFIXES = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v"}


def fit_mask(mask: np.ndarray, frame_size: tuple[int, int], path: Path | str, frame_name: str,
             source_size: tuple[int, int] | None = None) -> np.ndarray:
    """``mask`` (h, w) brought to ``frame_size`` (W, H) when allowed (see module doc), else InputError."""
    (W, H), (h, w) = frame_size, mask.shape
    if (w, h) == (W, H):
        return mask
    k = w // W
    if (k >= 1 and (w, h) == (k * W, k * H)) or (source_size is not None and (w, h) == tuple(source_size)):
        return resize_mask(mask, (W, H))
    raise InputError(path, f"mask is {w}x{h} but frame {frame_name} is {W}x{H} "
                           f"(masks must have the frame's size or an exact integer multiple of it)")


def _folder_masks(cap: Capture, folder: Path) -> list[np.ndarray]:
    files: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
            if p.stem in files:
                raise InputError(p, f"two mask files for frame {p.stem} ({files[p.stem].name} and {p.name})")
            files[p.stem] = p
    names = [f.name for f in cap.frames]
    missing = [n for n in names if n not in files]
    if missing:
        shown = ", ".join(missing[:5]) + (f", ... ({len(missing)} in all)" if len(missing) > 5 else "")
        raise InputError(folder, f"{len(files)} mask files for {len(names)} frames; no mask for {shown}")
    return [fit_mask(read_mask(files[n]), (img.shape[1], img.shape[0]), files[n], n)
            for n, img in zip(names, cap.images)]


def _video_masks(cap: Capture, path: Path) -> list[np.ndarray]:
    from .video_reader import decode_frames, open_video, rotate_image

    wanted = [f.index for f in cap.frames]
    if any(i is None for i in wanted):
        raise InputError(path, "a mask video needs frames read from a video (frames without a video index)")
    found: dict[int, np.ndarray] = {}
    n = 0
    with open_video(path) as container:
        stream = container.streams.video[0]
        for n, frame in enumerate(decode_frames(path, container, stream), start=1):
            if n - 1 in wanted:
                grey = rotate_image(frame.to_ndarray(format="gray"), int(frame.rotation or 0))
                found[n - 1] = np.where(grey > 127, 255, 0).astype(np.uint8)
            if len(found) == len(set(wanted)):
                break
    missing = [f.name for f in cap.frames if f.index not in found]
    if missing:
        raise InputError(path, f"mask video has {n} frames but {len(cap.frames)} capture frames need frames up "
                               f"to {max(wanted)}; no mask for {', '.join(missing[:5])}")
    src = cap.meta.get("video", {}).get("size")
    return [fit_mask(found[f.index], (img.shape[1], img.shape[0]), path, f.name, src)
            for f, img in zip(cap.frames, cap.images)]


def user_masks(cap: Capture, path: str | Path) -> tuple[list[np.ndarray], dict[str, Any]]:
    """Masks for every frame of ``cap`` from ``path``: a folder of mask images or a mask video.

    Returns N (H, W) uint8 0/255 masks at the frames' sizes and stats {"source": path}.
    """
    path = Path(path)
    if path.is_dir():
        masks = _folder_masks(cap, path)
    elif path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
        masks = _video_masks(cap, path)
    elif path.exists():
        raise InputError(path, f"not a mask folder or a mask video ({', '.join(sorted(VIDEO_SUFFIXES))})")
    else:
        raise InputError(path, "mask folder not found")
    return masks, {"source": str(path)}
