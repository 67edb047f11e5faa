"""The internal capture representation every reader produces and every later stage reads.

Conventions (DESIGN): OpenCV cameras (x right, y down, z forward), ``c2w`` 4x4
camera-to-world, intrinsics in pixels with pixel centres at integer + 0.5,
distortion ``k1 k2 p1 p2 k3`` (OpenCV model). Images are sRGB uint8 in memory
here (float conversion happens in the render layer); masks are uint8 0/255.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

# What a capture shows; each kind gets its subject model (recon.models) and asset kind.
SUBJECT_KINDS = ("object", "articulated", "head", "body", "garment")


@dataclass(frozen=True)
class Cameras:
    """A batch of N pinhole cameras with optional OpenCV distortion.

    c2w: (N, 4, 4) float64 camera-to-world, OpenCV axes.
    fx, fy, cx, cy: (N,) float64 pixels.
    width, height: (N,) int64 pixels.
    dist: (N, 5) float64 ``k1 k2 p1 p2 k3`` (zeros = no distortion).
    """

    c2w: np.ndarray
    fx: np.ndarray
    fy: np.ndarray
    cx: np.ndarray
    cy: np.ndarray
    width: np.ndarray
    height: np.ndarray
    dist: np.ndarray

    def __post_init__(self):
        n = self.c2w.shape[0]
        if self.c2w.shape != (n, 4, 4):
            raise ValueError(f"c2w must be (N,4,4), got {self.c2w.shape}")
        for name in ("fx", "fy", "cx", "cy", "width", "height"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"{name} must be ({n},), got {getattr(self, name).shape}")
        if self.dist.shape != (n, 5):
            raise ValueError(f"dist must be ({n},5), got {self.dist.shape}")

    @staticmethod
    def create(c2w, fx, fy, cx, cy, width, height, dist=None) -> "Cameras":
        """Build from arrays or scalars, broadcasting scalars to N cameras."""
        c2w = np.asarray(c2w, dtype=np.float64).reshape(-1, 4, 4)
        n = c2w.shape[0]

        def vec(v, dtype):
            return np.broadcast_to(np.asarray(v, dtype=dtype), (n,)).copy()

        d = np.zeros((n, 5)) if dist is None else np.asarray(dist, dtype=np.float64)
        d = np.broadcast_to(d.reshape(-1, d.shape[-1]) if d.ndim else d, (n, d.shape[-1])).copy()
        if d.shape[1] < 5:
            d = np.concatenate([d, np.zeros((n, 5 - d.shape[1]))], axis=1)
        return Cameras(c2w.copy(), vec(fx, np.float64), vec(fy, np.float64), vec(cx, np.float64),
                       vec(cy, np.float64), vec(width, np.int64), vec(height, np.int64), d)

    def __len__(self) -> int:
        return self.c2w.shape[0]

    def __getitem__(self, idx) -> "Cameras":
        idx = np.atleast_1d(np.arange(len(self))[idx])
        return Cameras(*(getattr(self, f)[idx] for f in _CAMERA_FIELDS))

    @property
    def centers(self) -> np.ndarray:
        """(N, 3) camera centres in world coordinates."""
        return self.c2w[:, :3, 3]

    @property
    def K(self) -> np.ndarray:
        """(N, 3, 3) intrinsic matrices."""
        K = np.zeros((len(self), 3, 3))
        K[:, 0, 0], K[:, 1, 1] = self.fx, self.fy
        K[:, 0, 2], K[:, 1, 2] = self.cx, self.cy
        K[:, 2, 2] = 1.0
        return K

    @property
    def has_distortion(self) -> bool:
        return bool(np.any(self.dist != 0))

    def transformed(self, T: np.ndarray) -> "Cameras":
        """Apply a similarity T (4x4, world -> new world) to the poses.

        The rotation part of T may include a uniform scale; it is divided out of
        the camera axes so that ``c2w[:3,:3]`` stays a rotation.
        """
        T = np.asarray(T, dtype=np.float64)
        scale = np.cbrt(np.linalg.det(T[:3, :3]))
        c2w = T[None] @ self.c2w
        c2w[:, :3, :3] /= scale
        return replace(self, c2w=c2w)

    def scaled(self, factor: float) -> "Cameras":
        """Cameras for images resized by ``factor`` (pixel centres stay at +0.5)."""
        w = np.round(self.width * factor).astype(np.int64)
        h = np.round(self.height * factor).astype(np.int64)
        sx, sy = w / self.width, h / self.height
        return replace(self, fx=self.fx * sx, fy=self.fy * sy, cx=self.cx * sx, cy=self.cy * sy,
                       width=w, height=h)

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project world points (P, 3) into every camera, ignoring distortion.

        Returns pixel coordinates (N, P, 2) and camera-space depth (N, P).
        """
        w2c = np.linalg.inv(self.c2w)
        pc = np.einsum("nij,pj->npi", w2c[:, :3, :3], points) + w2c[:, None, :3, 3]
        z = pc[..., 2]
        zs = np.where(np.abs(z) < 1e-12, 1e-12, z)
        u = self.fx[:, None] * pc[..., 0] / zs + self.cx[:, None]
        v = self.fy[:, None] * pc[..., 1] / zs + self.cy[:, None]
        return np.stack([u, v], axis=-1), z


_CAMERA_FIELDS = ("c2w", "fx", "fy", "cx", "cy", "width", "height", "dist")


def concat_cameras(cams: list[Cameras]) -> Cameras:
    return Cameras(*(np.concatenate([getattr(c, f) for c in cams]) for f in _CAMERA_FIELDS))


@dataclass(frozen=True)
class FrameInfo:
    """Where one frame came from: file name, video frame index and timestamp, split."""

    name: str  # stem used for frames/<name>.png in a capture folder
    source: str  # original file (image path, or video path)
    index: int | None = None  # frame index in the source video
    timestamp: float | None = None  # seconds in the source video
    split: str = "train"  # "train" or "test"


@dataclass
class Capture:
    """Frames with cameras, optional masks and sparse points, normalised or not.

    images: list of N (H, W, 3) uint8 sRGB arrays.
    masks: list of N (H, W) uint8 0/255 arrays, or None when the capture has none.
    cameras: N cameras (may be None before structure-from-motion).
    frames: N FrameInfo records (names, sources, split).
    normalization: (4, 4) similarity original world -> normalised world (identity if not normalised).
    points: (P, 3) sparse points in the current world frame, or None.
    meta: free-form provenance (source path and hash, SfM statistics, ...).
    """

    images: list[np.ndarray]
    cameras: Cameras | None
    frames: list[FrameInfo]
    masks: list[np.ndarray] | None = None
    normalization: np.ndarray = field(default_factory=lambda: np.eye(4))
    points: np.ndarray | None = None
    points_rgb: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        n = len(self.images)
        if len(self.frames) != n:
            raise ValueError(f"{len(self.frames)} frame records for {n} images")
        if self.cameras is not None and len(self.cameras) != n:
            raise ValueError(f"{len(self.cameras)} cameras for {n} images")
        if self.masks is not None and len(self.masks) != n:
            raise ValueError(f"{len(self.masks)} masks for {n} images")

    def __len__(self) -> int:
        return len(self.images)

    def split_indices(self, split: str, max_count: int | None = None) -> np.ndarray:
        """Indices of frames in ``split`` ("train" or "test"); at most ``max_count``, spread evenly over them."""
        idx = np.array([i for i, f in enumerate(self.frames) if f.split == split], dtype=np.int64)
        if max_count is None or len(idx) <= max_count:
            return idx
        return idx[np.unique(np.linspace(0, len(idx) - 1, max_count).round().astype(int))]

    def subset(self, idx) -> "Capture":
        """A capture with only the frames ``idx`` (same normalisation, points and meta)."""
        idx = [int(i) for i in np.atleast_1d(idx)]
        return replace(
            self,
            images=[self.images[i] for i in idx],
            cameras=None if self.cameras is None else self.cameras[idx],
            frames=[self.frames[i] for i in idx],
            masks=None if self.masks is None else [self.masks[i] for i in idx],
        )

    def normalized(self, T: np.ndarray) -> "Capture":
        """Apply the similarity T (current world -> new world); composes with ``normalization``."""
        T = np.asarray(T, dtype=np.float64)
        pts = None if self.points is None else (self.points @ T[:3, :3].T + T[:3, 3])
        return replace(
            self,
            cameras=None if self.cameras is None else self.cameras.transformed(T),
            normalization=T @ self.normalization,
            points=pts,
        )
