"""Image and mask files: sRGB uint8 on disk, masks 0/255 with 1 = subject."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import InputError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".heic", ".heif"}


def read_image_rgba(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Read an image as (H, W, 3) uint8 RGB plus its alpha (H, W) uint8 if it has one."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "image file not found")
    if path.suffix.lower() in {".heic", ".heif"}:
        try:
            import pillow_heif  # type: ignore

            pillow_heif.register_heif_opener()
        except ImportError:
            raise InputError(path, "HEIC images need the optional package pillow-heif (pip install pillow-heif)")
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info):
                rgba = np.asarray(im.convert("RGBA"))
                return np.ascontiguousarray(rgba[..., :3]), np.ascontiguousarray(rgba[..., 3])
            return np.asarray(im.convert("RGB")).copy(), None
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(path, f"cannot read image ({exc.__class__.__name__})") from exc


def read_image(path: str | Path) -> np.ndarray:
    """Read an image as (H, W, 3) uint8 RGB, dropping any alpha."""
    return read_image_rgba(path)[0]


def read_mask(path: str | Path) -> np.ndarray:
    """Read a mask as (H, W) uint8 0/255 (any non-zero pixel, or alpha > 127, is subject)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "mask file not found")
    try:
        with Image.open(path) as im:
            a = np.asarray(im.convert("RGBA"))
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(path, f"cannot read mask ({exc.__class__.__name__})") from exc
    has_alpha = bool((a[..., 3] < 255).any())
    sel = a[..., 3] > 127 if has_alpha else a[..., :3].max(axis=-1) > 127
    return (sel * 255).astype(np.uint8)


def write_image(path: str | Path, rgb: np.ndarray, alpha: np.ndarray | None = None) -> None:
    """Write (H, W, 3) uint8 (or float in [0,1]) RGB, with optional (H, W) alpha, as PNG/JPEG."""
    rgb = to_uint8(rgb)
    if alpha is not None:
        rgb = np.concatenate([rgb, to_uint8(alpha)[..., None]], axis=-1)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)


def write_mask(path: str | Path, mask: np.ndarray) -> None:
    """Write a boolean or 0/255 (H, W) mask as an 8-bit PNG."""
    m = np.asarray(mask)
    m = ((m > 127) if m.dtype == np.uint8 else (m > 0.5)).astype(np.uint8) * 255
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(m).save(path)


def to_uint8(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype == np.uint8:
        return x
    return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
