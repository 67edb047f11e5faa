"""Fixtures for the bake tests: an analytic textured torus under a non-identity normalisation,
extracted, decimated, unwrapped and baked once per session at small sizes."""
from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import trimesh
from scipy.spatial.transform import Rotation

from recon.bake.analytic_field import AnalyticField
from recon.bake.extract import extract_surface
from recon.bake.simplify import decimate
from recon.bake.texture import BakeStats, bake_textures
from recon.bake.textured_mesh import TexturedMesh
from recon.bake.uv import UVLayout, unwrap

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tools"
RESOLUTION = 96
TRIANGLES = 3000
TEXTURE = 256


def make_normalization(scale: float = 0.5) -> np.ndarray:
    """A similarity original -> normalised with rotation, scale and translation (not identity)."""
    T = np.eye(4)
    T[:3, :3] = scale * Rotation.from_euler("xyz", [20, 30, 40], degrees=True).as_matrix()
    T[:3, 3] = [0.1, -0.2, 0.3]
    return T


@dataclass
class Baked:
    field: AnalyticField
    normalization: np.ndarray
    fine: trimesh.Trimesh
    mesh: trimesh.Trimesh
    layout: UVLayout
    asset: TexturedMesh
    stats: BakeStats


@pytest.fixture(scope="session")
def torus_fine() -> tuple[AnalyticField, np.ndarray, trimesh.Trimesh]:
    """The analytic torus, its normalisation, and its extracted surface in original units."""
    field = AnalyticField("torus", (0.55, 0.22))
    N = make_normalization()
    return field, N, extract_surface(field, N, resolution=RESOLUTION)


@pytest.fixture(scope="session")
def baked(torus_fine) -> Baked:
    field, N, fine = torus_fine
    mesh = decimate(fine, TRIANGLES)
    layout = unwrap(mesh, TEXTURE, padding=4)
    asset, stats = bake_textures(field, N, mesh, layout, TEXTURE, voxel=2.0 / (RESOLUTION - 1))
    return Baked(field, N, fine, mesh, layout, asset, stats)


def torus_photos(baked: Baked, n_train: int = 16, n_test: int = 3, size: int = 64, inverted: bool = False):
    """A Capture of the true torus (its fine surface) with the field's albedo (or its inverse: not what
    the bake starts from) at ``size``^2, masks from coverage; and the cameras in original units."""
    import torch

    from recon.bake.extract import transform_points
    from recon.core.types import Capture, FrameInfo
    from recon.synth.cameras import sphere_cameras
    from recon.synth.mesh import Mesh
    from recon.render.mesh_render import render_views

    gt, N = baked.fine, baked.normalization
    colors = baked.field.albedo(torch.as_tensor(transform_points(N, gt.vertices)).float()).numpy()
    if inverted:
        colors = 1.0 - colors
    center = gt.bounds.mean(0)
    radius = float(np.linalg.norm(gt.vertices - center, axis=1).max())
    truth = Mesh(gt.vertices, gt.faces, None, None, colors.astype(np.float32), None, center, radius)
    cams = sphere_cameras(n_train + n_test, center, radius, size, seed=5, up=(0, 0, 1))
    views = render_views(truth, cams)
    images = [(v["rgb"] * 255 + 0.5).astype(np.uint8) for v in views]
    masks = [((v["alpha"] > 0.5) * 255).astype(np.uint8) for v in views]
    frames = [FrameInfo(name=f"v{i}", source="synthetic", split="train" if i < n_train else "test")
              for i in range(n_train + n_test)]
    return Capture(images, cams.transformed(N), frames, masks, normalization=N), cams


def run_node_tool(script: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run tools/<script> with node; the tools are installed by scripts/setup.sh (npm ci in tools/)."""
    node = shutil.which("node")
    assert node, "node not found: run scripts/setup.sh"
    assert (TOOLS / "node_modules").is_dir(), "tools/node_modules missing: run scripts/setup.sh"
    return subprocess.run([node, str(TOOLS / script), *args], capture_output=True, text=True, timeout=timeout)


def validate_gltf(path: Path) -> dict:
    """The Khronos glTF validator's report for one file (see tools/validate_gltf.mjs)."""
    res = run_node_tool("validate_gltf.mjs", str(path))
    assert res.stdout.strip(), f"validator printed nothing: {res.stderr[-2000:]}"
    return json.loads(res.stdout.strip().splitlines()[-1])


def play_in_model_viewer(glb: Path, animation: str, folder: Path) -> dict:
    """check_animation.mjs's report for ``glb`` in a page with <model-viewer autoplay animation-name=...>."""
    import base64

    from recon.bake.report import viewer_script

    js = viewer_script()
    assert js is not None, "model-viewer bundle missing: run scripts/setup.sh"
    src = "data:model/gltf-binary;base64," + base64.b64encode(Path(glb).read_bytes()).decode()
    page = Path(folder) / f"{animation}.html"
    page.write_text(f'<!doctype html><html><head><meta charset="utf-8"><script>{js}</script></head>'
                    f'<body><model-viewer src="{src}" autoplay animation-name="{animation}" loading="eager">'
                    '</model-viewer></body></html>')
    res = run_node_tool("check_animation.mjs", str(page))
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(res.stdout.strip().splitlines()[-1])
