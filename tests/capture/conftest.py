"""Synthetic posed captures with a known subject (a sphere or a box), built analytically."""
from __future__ import annotations

import numpy as np
import pytest

from recon.core.types import Cameras, Capture, FrameInfo


def look_at_c2w(eye: np.ndarray, target: np.ndarray, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """OpenCV camera-to-world at ``eye`` looking at ``target`` (x right, y down, z forward)."""
    z = np.asarray(target, float) - np.asarray(eye, float)
    z /= np.linalg.norm(z)
    x = np.cross(z, up)
    if np.linalg.norm(x) < 1e-8:
        x = np.cross(z, (0.0, 1.0, 0.0))
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = x, y, z, eye
    return c2w


def orbit_cameras(n: int, center, distance: float, width=64, height=48, fx=50.0, seed=0,
                  min_elev=-0.6, max_elev=1.2) -> Cameras:
    """n cameras spread around ``center`` (random azimuth/elevation), looking at it."""
    rng = np.random.default_rng(seed)
    center = np.asarray(center, float)
    az = np.linspace(0, 2 * np.pi, n, endpoint=False) + rng.uniform(0, 0.3, n)
    el = rng.uniform(min_elev, max_elev, n)
    dirs = np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], 1)
    c2w = np.stack([look_at_c2w(center + distance * d, center) for d in dirs])
    return Cameras.create(c2w, fx, fx * 1.01, width / 2 + 0.7, height / 2 - 0.4, width, height)


def _rays(cams: Cameras, i: int) -> tuple[np.ndarray, np.ndarray]:
    H, W = int(cams.height[i]), int(cams.width[i])
    v, u = np.mgrid[0:H, 0:W] + 0.5
    d = np.stack([(u - cams.cx[i]) / cams.fx[i], (v - cams.cy[i]) / cams.fy[i], np.ones_like(u)], -1)
    d = d @ cams.c2w[i, :3, :3].T
    return cams.c2w[i, :3, 3], d / np.linalg.norm(d, axis=-1, keepdims=True)


def sphere_masks(cams: Cameras, center, radius) -> list[np.ndarray]:
    out = []
    for i in range(len(cams)):
        o, d = _rays(cams, i)
        oc = o - np.asarray(center, float)
        b = d @ oc
        hit = (b * b - (oc @ oc - radius**2) >= 0) & (b < 0)
        out.append(np.where(hit, 255, 0).astype(np.uint8))
    return out


def box_masks(cams: Cameras, lo, hi) -> list[np.ndarray]:
    out = []
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    for i in range(len(cams)):
        o, d = _rays(cams, i)
        with np.errstate(divide="ignore", invalid="ignore"):
            t1, t2 = (lo - o) / d, (hi - o) / d
        tmin = np.nanmax(np.minimum(t1, t2), axis=-1)
        tmax = np.nanmin(np.maximum(t1, t2), axis=-1)
        out.append(np.where((tmax >= tmin) & (tmax > 0), 255, 0).astype(np.uint8))
    return out


def make_capture(cams: Cameras, masks=None, points=None, test_every=4, seed=0) -> Capture:
    rng = np.random.default_rng(seed)
    images = [rng.integers(0, 256, (int(cams.height[i]), int(cams.width[i]), 3), dtype=np.uint8)
              for i in range(len(cams))]
    frames = [FrameInfo(name=f"img_{i:03d}", source=f"/src/img_{i:03d}.jpg", index=i, timestamp=i / 30.0,
                        split="test" if test_every and i % test_every == 0 else "train")
              for i in range(len(cams))]
    rgb = None if points is None else rng.integers(0, 256, (len(points), 3), dtype=np.uint8)
    return Capture(images=images, cameras=cams, frames=frames, masks=masks, points=points, points_rgb=rgb,
                   meta={"source": "/src", "source_kind": "test", "source_hash": "abc123"})


def mask_coverage(cams: Cameras, masks: list[np.ndarray], center=(0.0, 0.0, 0.0), radius=1.0) -> np.ndarray:
    """Per view, the fraction of mask pixels whose ray (through the pixel centre) meets the sphere."""
    out = []
    for i in range(len(cams)):
        o, d = _rays(cams, i)
        m = masks[i] > 127
        oc = o - np.asarray(center, float)
        b = d[m] @ oc
        hit = (b * b - (oc @ oc - radius**2) >= 0) & ((b < 0) | (oc @ oc <= radius**2))  # in front
        out.append(float(np.mean(hit)) if m.any() else 1.0)
    return np.array(out)


@pytest.fixture
def synth():
    """Namespace of the synthetic-capture builders above."""
    import types

    return types.SimpleNamespace(look_at_c2w=look_at_c2w, orbit_cameras=orbit_cameras,
                                 sphere_masks=sphere_masks, box_masks=box_masks, make_capture=make_capture,
                                 mask_coverage=mask_coverage)

