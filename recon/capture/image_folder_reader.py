"""Read a folder of photos without poses into an unposed Capture (cameras come from SfM).

Layout: image files in ``path`` or in ``path/images``, taken in natural name
order (``img2`` before ``img10``); optional masks in ``path/masks`` with the
same stems (``a.jpg`` -> ``masks/a.png``, or COLMAP's ``masks/a.jpg.png``).
Without a masks folder, alpha channels count as masks when every image has one.

EXIF orientation is applied. The EXIF focal length, when present, becomes a
per-image focal-length prior in pixels, ``meta["intrinsics_prior"][name]``,
which structure-from-motion starts from; photos of different sizes need one
(their cameras cannot share intrinsics).
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import cv2
import numpy as np

from ..core.config import CaptureConfig
from ..core.errors import InputError
from ..core.fsutil import sha256_tree
from ..core.imageio import IMAGE_SUFFIXES, read_image_rgba, read_mask
from ..core.log import get_logger
from ..core.progress import track
from ..core.types import Capture, FrameInfo
from .frame_selection import fit_size
from .split import holdout_split

log = get_logger(__name__)

# EXIF tags (CIPA DC-008)
_ORIENTATION = 0x0112
_EXIF_IFD = 0x8769
_FOCAL_LENGTH = 0x920A
_FOCAL_35MM = 0xA405
_FOCAL_PLANE_XRES = 0xA20E
_FOCAL_PLANE_UNIT = 0xA210
_PIXEL_X_DIMENSION = 0xA002
_UNIT_MM = {2: 25.4, 3: 10.0, 4: 1.0, 5: 1e-3}  # inch, cm, mm, um
_DIAGONAL_35MM = math.hypot(36.0, 24.0)  # the equivalent focal length is defined on the diagonal


def _natural_key(p: Path):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", p.name)]


def _list_images(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                   and not p.name.startswith(".")), key=_natural_key)


def image_files(path: Path) -> tuple[Path, list[Path]]:
    """The folder holding the images (``path`` or ``path/images``) and its image files, sorted."""
    files = _list_images(path) if path.is_dir() else []
    if not files and (path / "images").is_dir():
        path = path / "images"
        files = _list_images(path)
    if not files:
        raise InputError(path, "no image files in the folder")
    return path, files


def _mask_files(root: Path, images: list[Path]) -> list[Path] | None:
    """Mask file of each image from ``root/masks``, or None when there is no masks folder."""
    mask_dir = root / "masks"
    if not mask_dir.is_dir():
        return None
    by_name = {p.name: p for p in _list_images(mask_dir)}
    by_stem = {p.stem: p for p in by_name.values()}
    out = []
    for img in images:
        m = by_name.get(img.name + ".png") or by_stem.get(img.stem)
        if m is None:
            raise InputError(mask_dir, f"no mask for image {img.name} (expected {img.stem}.png)")
        out.append(m)
    return out


def _orient(img: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) so the image shows upright."""
    ops = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
           5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, -1),
           7: lambda a: a[::-1, ::-1].swapaxes(0, 1), 8: lambda a: np.rot90(a, 1)}
    op = ops.get(orientation)
    return img if op is None else np.ascontiguousarray(op(img))


def _exif(path: Path) -> tuple[int, dict]:
    """(orientation, Exif-IFD tags) of an image file; (1, {}) when it has none."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            exif = im.getexif()
            return int(exif.get(_ORIENTATION, 1) or 1), dict(exif.get_ifd(_EXIF_IFD))
    except Exception:  # unreadable EXIF is no EXIF; the pixels were read already
        return 1, {}


def _num(v) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return x if math.isfinite(x) and x > 0 else None


def exif_focal_px(tags: dict, width: int, height: int) -> float | None:
    """Focal length in pixels for an upright image of ``width`` x ``height`` from EXIF tags.

    ``FocalLengthIn35mmFilm`` (scaled by the image diagonal against the 35 mm
    frame's), else ``FocalLength`` (mm) times the sensor's pixels per mm
    (``FocalPlaneXResolution`` / unit), rescaled if the image was resized
    after capture (``PixelXDimension``). None when neither is there.
    """
    f35 = _num(tags.get(_FOCAL_35MM))
    if f35:
        return f35 * math.hypot(width, height) / _DIAGONAL_35MM
    f_mm, xres = _num(tags.get(_FOCAL_LENGTH)), _num(tags.get(_FOCAL_PLANE_XRES))
    unit_mm = _UNIT_MM.get(int(_num(tags.get(_FOCAL_PLANE_UNIT)) or 2))
    if not (f_mm and xres and unit_mm):
        return None
    f_px = f_mm * xres / unit_mm
    orig_w = _num(tags.get(_PIXEL_X_DIMENSION))
    if orig_w and round(orig_w) not in (width, height):
        f_px *= max(width, height) / orig_w  # resized after capture
    return f_px


def _size_list(sizes: list[tuple[int, int]]) -> str:
    uniq = sorted(set(sizes), key=sizes.index)
    text = ", ".join(f"{w}x{h}" for w, h in uniq[:4])
    return text + (", ..." if len(uniq) > 4 else "")


def read_image_folder(path: str | Path, cfg: CaptureConfig | None = None) -> Capture:
    """Read the photos in ``path`` (or ``path/images``) into a Capture without cameras.

    Images are downscaled to ``cfg.max_size``; masks come from ``masks/`` or
    alpha (unless ``cfg.masks`` is "none"); every ``cfg.test_every``-th image is
    held out as test. Raises InputError for masks of the wrong size, or images
    of mixed sizes without EXIF focal lengths.
    """
    cfg = cfg or CaptureConfig()
    root = Path(path)
    folder, files = image_files(root)
    stems = [f.stem for f in files]
    if len(set(stems)) != len(stems):
        dup = next(s for s in stems if stems.count(s) > 1)
        raise InputError(folder, f"two images share the name '{dup}' (different extensions)")
    mask_files = _mask_files(root, files) if cfg.masks != "none" else None

    images, masks, alphas, sizes = [], [], [], []
    priors: dict[str, float] = {}
    for i, f in enumerate(track(files, f"reading {len(files)} images")):
        rgb, alpha = read_image_rgba(f)
        orientation, tags = _exif(f)
        rgb = _orient(rgb, orientation)
        alpha = None if alpha is None else _orient(alpha, orientation)
        h, w = rgb.shape[:2]
        sizes.append((w, h))
        mask = None
        if mask_files is not None:
            mask = read_mask(mask_files[i])
            if mask.shape != (h, w):
                raise InputError(mask_files[i], f"mask is {mask.shape[1]}x{mask.shape[0]} but image "
                                                f"{f.name} is {w}x{h}")
        nw, nh = fit_size(w, h, cfg.max_size) if cfg.max_size else (w, h)
        focal = exif_focal_px(tags, w, h)
        if focal is not None:
            priors[f.stem] = focal * nw / w
        if (nw, nh) != (w, h):
            rgb = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA)
            if mask is not None:
                mask = np.where(cv2.resize(mask, (nw, nh), interpolation=cv2.INTER_AREA) > 127, 255, 0).astype(np.uint8)
            if alpha is not None:
                alpha = cv2.resize(alpha, (nw, nh), interpolation=cv2.INTER_AREA)
        images.append(rgb)
        masks.append(mask)
        alphas.append(alpha)

    if len(set(sizes)) > 1 and len(priors) < len(files):
        raise InputError(folder, f"images of mixed sizes ({_size_list(sizes)}) and no intrinsics "
                                 "(no EXIF focal length); resize them to one size or keep their EXIF")
    if mask_files is None:
        use_alpha = cfg.masks != "none" and all(a is not None for a in alphas)
        masks = [np.where(a > 127, 255, 0).astype(np.uint8) for a in alphas] if use_alpha else None

    splits = holdout_split(len(files), cfg.test_every)
    frames = [FrameInfo(name=f.stem, source=str(f), split=s) for f, s in zip(files, splits)]
    meta = {
        "source": str(root),
        "source_kind": "images",
        "source_hash": sha256_tree(files + (mask_files or [])),
        "intrinsics_prior": priors,
        "image_sizes": [list(s) for s in sizes],
    }
    log.info(f"{folder}: {len(files)} images{' with masks' if masks else ''}, "
             f"{len(priors)} with an EXIF focal length")
    return Capture(images=images, cameras=None, frames=frames, masks=masks, meta=meta)
