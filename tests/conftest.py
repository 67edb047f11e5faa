"""Shared fixtures: paths to the real data in ../shared/data and the CUDA marker's skip."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = (ROOT.parent / "shared" / "data").resolve()


# tests/catalog_support.py: catalogue fixtures (SQLite and PostgreSQL) shared by tests/library and
# tests/jobs, importable as ``catalog_support`` and registered once as a plugin.
sys.path.insert(0, str(Path(__file__).parent))
pytest.register_assert_rewrite("catalog_support")
pytest_plugins = ["catalog_support"]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the project; tests that need it fail loudly if it is missing."""
    assert SHARED_DATA.is_dir(), f"shared data not found at {SHARED_DATA}"
    return SHARED_DATA


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():  # called, not referenced
        return
    skip = pytest.mark.skip(reason="needs CUDA (torch.cuda.is_available() is False)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


def make_sphere_capture(n_train: int = 16, n_test: int = 4, size: int = 32, radius: float = 0.5,
                        dist=None, seed: int = 0, room: bool = False):
    """A tiny analytic capture: a sphere of ``radius`` at the origin, coloured by its normal with
    stripes, seen from cameras on a sphere of radius 2.5 looking at the origin (OpenCV axes).

    Images are black outside the sphere and masks are its silhouette (like RGBA data). With
    ``room``, the sphere stands in a checkered room (the walls of the cube [-6, 6]^3), as a real
    photo's subject does, and the masks are recorded as a segmenter's (``meta["masks"]``).
    Returns a recon.core.types.Capture.
    """
    import numpy as np
    import torch

    from recon.core.types import Cameras, Capture, FrameInfo
    from recon.render.rays import CameraTensors, image_rays

    rng = np.random.default_rng(seed)
    n = n_train + n_test
    c2ws = []
    for k in range(n):
        # spread the views over the sphere (golden spiral) with a little randomness
        z = 1 - 2 * (k + 0.5) / n
        phi = k * np.pi * (3 - 5 ** 0.5) + rng.uniform(-0.1, 0.1)
        c = 2.5 * np.array([np.sqrt(1 - z * z) * np.cos(phi), np.sqrt(1 - z * z) * np.sin(phi), z])
        fwd = -c / np.linalg.norm(c)
        up = np.array([0.0, 0.0, 1.0]) if abs(fwd[2]) < 0.9 else np.array([0.0, 1.0, 0.0])
        right = np.cross(fwd, up)
        right /= np.linalg.norm(right)
        down = np.cross(fwd, right)
        m = np.eye(4)
        m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = right, down, fwd, c
        c2ws.append(m)
    f = size * 1.2
    cams = Cameras.create(np.stack(c2ws), f, f, size / 2, size / 2, size, size, dist)
    ct = CameraTensors.from_cameras(cams)
    images, masks, frames = [], [], []
    test = set(np.linspace(1, n - 2, n_test).round().astype(int).tolist()) if n_test else set()
    for k in range(n):
        r = image_rays(ct, k)
        o, d = r.origins.double(), r.dirs.double()
        b = (o * d).sum(-1)
        disc = b * b - ((o * o).sum(-1) - radius ** 2)
        hit = disc > 0
        t = -b - torch.sqrt(disc.clamp_min(0))
        p = o + d * t[:, None]
        nrm = p / radius
        stripes = 0.5 + 0.5 * torch.sign(torch.sin(6 * torch.atan2(nrm[:, 1], nrm[:, 0])))
        rgb = (0.25 + 0.5 * (0.5 + 0.5 * nrm)) * (0.6 + 0.4 * stripes[:, None])
        back = torch.zeros_like(rgb)
        if room:  # where the ray leaves the cube [-6, 6]^3: a checker of 4-unit squares, tinted per wall
            t_wall = ((6.0 * torch.sign(d) - o) / d).min(dim=-1)
            w = o + d * t_wall.values[:, None]
            check = (torch.floor(w / 4.0).sum(-1) % 2)[:, None]
            tint = torch.tensor([[0.9, 0.5, 0.3], [0.3, 0.8, 0.4], [0.4, 0.5, 0.9]], dtype=w.dtype)
            back = tint[t_wall.indices] * (0.35 + 0.5 * check)
        rgb = torch.where(hit[:, None], rgb, back)
        images.append((rgb.reshape(size, size, 3).numpy() * 255 + 0.5).astype(np.uint8))
        masks.append((hit.reshape(size, size).numpy() * 255).astype(np.uint8))
        frames.append(FrameInfo(name=f"{k:03d}", source="analytic", split="test" if k in test else "train"))
    meta = {"source": "analytic sphere"}
    if room:
        meta["masks"] = {"method": "analytic"}
    return Capture(images=images, cameras=cams, frames=frames, masks=masks, meta=meta)


@pytest.fixture(scope="session")
def sphere_capture():
    """Factory for tiny analytic sphere captures (see ``make_sphere_capture``)."""
    return make_sphere_capture
