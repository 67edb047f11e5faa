"""Synthetic truth for segmenters: a textured mesh moving over a real photo, filmed by a moving camera.

The subject translates and turns while the camera orbits a little and moves in;
the background is a real photograph warped by a per-frame homography (a slow
pan, zoom and roll) so that it moves like a scene behind the subject. The mesh
is rendered (lambert shading, supersampled alpha) and composited over it, so
the true mask is exactly the rendered coverage (alpha >= 0.5).

Subject motion is expressed as camera motion relative to the mesh (the same
images, and the mesh-relative cameras stay valid), so procedural textures
stick to the surface.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.errors import InputError
from ..core.imageio import read_image, to_uint8
from ..core.types import Cameras, Capture, FrameInfo
from .cameras import look_at
from .mesh import load_mesh
from ..render.mesh_render import render_views

SKIMAGE_PHOTOS = ("coffee", "astronaut", "chelsea")


@dataclass(frozen=True)
class MovingSubjectVideo:
    """capture: N frames (images (H, W, 3) uint8, mesh-relative cameras, masks None);
    true_masks: N (H, W) uint8 0/255 (alpha >= 0.5); alpha: N (H, W) float32 coverage."""

    capture: Capture
    true_masks: list[np.ndarray]
    alpha: list[np.ndarray]


def background_photo(background: str | Path) -> np.ndarray:
    """(H, W, 3) uint8: a scikit-image sample photo by name, an image file, or the middle frame of a video."""
    if str(background) in SKIMAGE_PHOTOS:
        import skimage.data

        return np.ascontiguousarray(getattr(skimage.data, str(background))()[..., :3])
    path = Path(background)
    if path.suffix.lower() in {".mp4", ".mov", ".avi", ".mkv", ".webm"}:
        import av

        if not path.is_file():
            raise InputError(path, "video file not found")
        with av.open(str(path)) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        if not frames:
            raise InputError(path, "the video has no frames")
        return frames[len(frames) // 2]
    return read_image(path)


def _background_homographies(photo_size: tuple[int, int], size: tuple[int, int], n: int,
                             rng: np.random.Generator) -> np.ndarray:
    """(n, 3, 3) photo -> frame maps: the photo scaled to cover the frame with a margin, then a
    smooth pan (up to ~15% of the width), zoom (to ~1.15) and roll (a few degrees) over time."""
    (pw, ph), (w, h) = photo_size, size
    s0 = 1.25 * max(w / pw, h / ph)
    t = np.linspace(0.0, 1.0, n)
    pan = rng.uniform(-1, 1, 2) * np.array([0.15 * w, 0.08 * h])
    zoom = 1.0 + rng.uniform(0.05, 0.15)
    roll = math.radians(rng.uniform(-4, 4))
    out = np.zeros((n, 3, 3))
    for k, tk in enumerate(t):
        s, a = s0 * (1.0 + (zoom - 1.0) * tk), roll * tk
        R = s * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
        # photo centre -> frame centre + pan
        c = np.array([w / 2, h / 2]) + pan * (tk - 0.5) - R @ np.array([pw / 2, ph / 2])
        out[k] = [[*R[0], c[0]], [*R[1], c[1]], [0, 0, 1]]
    return out


def _subject_cameras(center: np.ndarray, radius: float, size: tuple[int, int], n: int, fill: float,
                     rng: np.random.Generator) -> Cameras:
    """Mesh-relative cameras: the camera orbits +-15 deg and moves in by ~15%; the subject turns
    ~120 deg about its up axis and slides across the frame (as camera offsets)."""
    w, h = size
    fov = math.radians(50.0)
    f = 0.5 * w / math.tan(fov / 2)
    dist = radius * f / (0.5 * fill * h)  # the bounding sphere spans ``fill`` of the height
    t = np.linspace(0.0, 1.0, n)
    spin = math.radians(rng.uniform(90, 150)) * rng.choice([-1, 1])
    az = spin * t + math.radians(15) * np.sin(2 * math.pi * t)  # subject turn + camera orbit
    el = math.radians(15) + math.radians(8) * t
    d = dist * (1.0 - 0.15 * t)
    eyes = center + np.stack([np.cos(el) * np.sin(az), np.sin(el) * np.ones_like(az),
                              np.cos(el) * np.cos(az)], 1) * d[:, None]
    c2w = look_at(eyes, center, up=(0.0, 1.0, 0.0))  # mesh +Y is image up
    # slide: the subject moves from one side to the other (a shift of the principal point)
    slide = rng.uniform(0.12, 0.2) * w * rng.choice([-1, 1])
    cx = w / 2 + slide * (t - 0.5) * 2
    cy = h / 2 + 0.05 * h * np.sin(math.pi * t)
    return Cameras.create(c2w, f, f, cx, cy, w, h)


def moving_subject_video(mesh_path: str | Path, n_frames: int = 30, size: tuple[int, int] = (256, 192),
                         seed: int = 0, background: str | Path = "coffee", fill: float = 0.55,
                         appearance: str = "auto") -> MovingSubjectVideo:
    """Render ``mesh_path`` moving over ``background`` into ``n_frames`` frames of ``size`` (w, h).

    ``background``: one of ``SKIMAGE_PHOTOS`` (bundled with scikit-image), an image
    file, or a video (its middle frame). ``fill``: the subject's bounding sphere
    spans this fraction of the image height. Frames are named ``f00000``... with
    ``index`` = frame number, like frames read from a video.
    """
    import cv2

    rng = np.random.default_rng(seed)
    w, h = int(size[0]), int(size[1])
    mesh = load_mesh(mesh_path, appearance=appearance, seed=seed)
    cams = _subject_cameras(np.asarray(mesh.center, float), float(mesh.radius), (w, h), n_frames, fill, rng)
    photo = background_photo(background)
    Hs = _background_homographies((photo.shape[1], photo.shape[0]), (w, h), n_frames, rng)
    views = render_views(mesh, cams, supersample=3, shading="lambert", background=(0.0, 0.0, 0.0))
    images, masks, alphas = [], [], []
    for view, H in zip(views, Hs):
        bg = cv2.warpPerspective(photo, H, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        a = view["alpha"][..., None]
        images.append(to_uint8(view["rgb"] + (1.0 - a) * (bg.astype(np.float32) / 255.0)))  # rgb is premultiplied
        masks.append(np.where(view["alpha"] >= 0.5, 255, 0).astype(np.uint8))
        alphas.append(view["alpha"])
    frames = [FrameInfo(name=f"f{i:05d}", source=str(mesh_path), index=i, timestamp=i / 30.0)
              for i in range(n_frames)]
    meta = {"source": str(mesh_path), "source_kind": "synthetic", "synthetic": {
        "kind": "moving_subject_video", "mesh": str(mesh_path), "background": str(background),
        "n_frames": n_frames, "size": [w, h], "seed": seed}}
    return MovingSubjectVideo(Capture(images=images, cameras=cams, frames=frames, meta=meta), masks, alphas)
