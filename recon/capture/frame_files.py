"""Loading the image (and mask) files of posed captures: sizes checked, downscaled, hashed.

Shared by the readers of sources that come with cameras (transforms.json,
COLMAP, IDR/DTU). Each frame is read once, its mask taken from a mask file or
the image's alpha channel, checked against the size its camera declares, and
downscaled right away to ``cfg.max_size`` so a large capture never sits in
memory at full resolution. Downscaling uses the same rounding as
``Cameras.scaled`` so images and cameras stay consistent.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..core.config import CaptureConfig
from ..core.errors import InputError
from ..core.fsutil import sha256_file
from ..core.imageio import read_image_rgba, read_mask
from ..core.log import get_logger
from ..core.progress import track

log = get_logger(__name__)

# Tried in this order when a listed image path has no extension ("./train/r_0").
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".PNG", ".JPG", ".JPEG", ".exr", ".webp")


@dataclass(frozen=True)
class LoadedFrames:
    """Images and masks at working resolution, with their original sizes.

    images: N (H, W, 3) uint8; masks: N (H, W) uint8 0/255 or None.
    sizes: (N, 2) int64 original (width, height); scale: (N,) factor applied
    (1.0 = not resized), to be passed to ``Cameras.scaled``.
    """

    images: list[np.ndarray]
    masks: list[np.ndarray] | None
    sizes: np.ndarray
    scale: np.ndarray


def resolve_image_path(base: Path, listed: str) -> Path | None:
    """The file ``listed`` (relative to ``base`` unless absolute), trying image extensions."""
    p = Path(listed)
    p = p if p.is_absolute() else base / p
    if p.is_file():
        return p
    for ext in IMAGE_EXTENSIONS:
        cand = p.with_name(p.name + ext)
        if cand.is_file():
            return cand
    return None


def frame_names(paths: list[Path], root: Path) -> list[str]:
    """Unique, file-system-safe frame names: the file stem, or the relative path when stems collide."""
    stems = [p.stem for p in paths]
    if len(set(stems)) < len(stems):
        def rel(p: Path) -> str:
            try:
                parts = p.relative_to(root).with_suffix("").parts
            except ValueError:
                parts = p.with_suffix("").parts[-2:]
            return "_".join(x for x in parts if x not in (".", ""))
        stems = [rel(p) for p in paths]
    names = [re.sub(r"[^A-Za-z0-9._-]+", "_", s).strip("._") or "frame" for s in stems]
    if len(set(names)) < len(names):  # still colliding: number them
        names = [f"{n}_{i:05d}" for i, n in enumerate(names)]
    return names


def scale_for(width: int, height: int, max_size: int | None) -> float:
    """Factor that brings the longest side down to ``max_size`` (never up)."""
    if max_size is None or max(width, height) <= max_size:
        return 1.0
    return max_size / max(width, height)


def scaled_size(width: int, height: int, factor: float) -> tuple[int, int]:
    """(w, h) after scaling by ``factor``, rounded exactly as ``Cameras.scaled`` rounds."""
    return int(np.round(width * factor)), int(np.round(height * factor))


def resize_image(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if (img.shape[1], img.shape[0]) == size:
        return img
    return np.asarray(Image.fromarray(img).resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0))


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-average a 0/255 mask to ``size`` and threshold it again."""
    if (mask.shape[1], mask.shape[0]) == size:
        return mask
    m = np.asarray(Image.fromarray(mask).resize(size, Image.Resampling.BOX))
    return np.where(m >= 128, 255, 0).astype(np.uint8)


def load_frames(image_paths: list[Path], mask_paths: list[Path | None] | None, cfg: CaptureConfig,
                expected_sizes: list[tuple[int, int] | None] | None = None,
                listed_in: Path | None = None, description: str = "reading images") -> LoadedFrames:
    """Read images and masks, check sizes, downscale to ``cfg.max_size``.

    A frame's mask is its mask file when given, else its alpha channel (when not
    fully opaque). ``cfg.masks == "none"`` ignores both. When only some frames
    have an alpha mask, the others get an all-subject mask (with a warning);
    mask files given for only some frames are an error. ``expected_sizes``
    (width, height) per frame, when known from the cameras, must match the
    image (``listed_in`` is named in that error).
    """
    n = len(image_paths)
    use_masks = cfg.masks != "none"
    if mask_paths is not None and use_masks:
        given = sum(p is not None for p in mask_paths)
        if 0 < given < n:
            raise InputError(listed_in, f"mask files are given for {given} of {n} frames (all or none)")
    images: list[np.ndarray] = []
    masks: list[np.ndarray | None] = []
    sizes = np.zeros((n, 2), dtype=np.int64)
    scale = np.ones(n)
    for i in track(range(n), description, total=n):
        path = image_paths[i]
        rgb, alpha = read_image_rgba(path)
        h, w = rgb.shape[:2]
        exp = expected_sizes[i] if expected_sizes is not None else None
        if exp is not None and (int(exp[0]), int(exp[1])) != (w, h):
            where = f" but {listed_in.name} says {exp[0]}x{exp[1]}" if listed_in is not None \
                else f" but its camera is {exp[0]}x{exp[1]}"
            raise InputError(path, f"image is {w}x{h}{where}")
        mask = None
        if use_masks:
            mpath = mask_paths[i] if mask_paths is not None else None
            if mpath is not None:
                mask = read_mask(mpath)
                if mask.shape != (h, w):
                    raise InputError(mpath, f"mask is {mask.shape[1]}x{mask.shape[0]} but its image "
                                            f"{path.name} is {w}x{h}")
            elif alpha is not None and (alpha < 255).any():
                mask = np.where(alpha > 127, 255, 0).astype(np.uint8)
        f = scale_for(w, h, cfg.max_size)
        size = scaled_size(w, h, f)
        images.append(resize_image(rgb, size))
        masks.append(None if mask is None else resize_mask(mask, size))
        sizes[i] = (w, h)
        scale[i] = f
    with_mask = sum(m is not None for m in masks)
    if with_mask == 0:
        out_masks = None
    else:
        if with_mask < n:
            log.warning(f"{n - with_mask} of {n} frames have no alpha mask; treating them as all subject")
        out_masks = [m if m is not None else np.full(img.shape[:2], 255, np.uint8)
                     for m, img in zip(masks, images)]
    return LoadedFrames(images, out_masks, sizes, scale)


def hash_inputs(root: Path, files: list[Path]) -> str:
    """sha256 over the sorted (path relative to ``root``, content sha256) of every input file."""
    h = hashlib.sha256()
    entries = []
    for p in set(files):
        try:
            rel = p.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            rel = p.name
        entries.append((rel, p))
    for rel, p in sorted(entries):
        h.update(rel.encode())
        h.update(b"\0")
        h.update(sha256_file(p).encode())
        h.update(b"\n")
    return h.hexdigest()
