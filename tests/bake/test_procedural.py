"""Procedural material priors (recon.materials.procedural): a surface painted with known procedural materials
is split into its regions, each region's family and parameters come back, and the materials regenerate at any
texture size through `recon export --texture-size N`."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from recon.materials.procedural import (ProceduralFit, ProceduralMaterial, fit_procedural, fibonacci_directions,
                                        regenerate, _texels)
from recon.render.colorspace import linear_to_srgb

STRIPES = ProceduralMaterial("stripes", {"direction": [0.6, 0.0, 0.8], "frequency": 8.0},
                             np.array([[0.40, 0.20, 0.10, 0.5], [0.0] * 4, [0.0] * 4, [0.0] * 4,
                                       [0.20, 0.10, 0.05, 0.2], [0.0] * 4,
                                       [0.05, 0.02, 0.0, 0.0], [0.0] * 4, [0.0] * 4, [0.0] * 4]))
NOISE = ProceduralMaterial("noise", {"scale": 16.0, "offset": [1.0, 2.0, 3.0]},
                           np.array([[0.10, 0.30, 0.10, 0.7], [0.0] * 4, [0.0] * 4, [0.0] * 4,
                                     [0.05, 0.10, 0.03, 0.1]]), t_mean=0.5, t_std=0.1)


def _truth(p: np.ndarray) -> np.ndarray:
    """(N, 3) points of the unit cube -> (N, 5): stripes above the equator, noise below."""
    return np.where(p[:, 1:2] > 0, STRIPES.evaluate(p), NOISE.evaluate(p))


def _u8(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)


@pytest.fixture(scope="module")
def painted():
    """A unit cube (so the normalised frame is its own) textured with ``_truth``, 256² atlas."""
    import trimesh

    from recon.bake.textured_mesh import TexturedMesh
    from recon.bake.uv import unwrap

    size = 256
    box = trimesh.creation.box((1.0, 1.0, 1.0)).subdivide().subdivide()  # no face straddles y = 0
    layout = unwrap(box, size)
    pos = np.asarray(box.vertices, np.float32)[layout.vmapping]
    normals = np.asarray(box.vertex_normals, np.float32)[layout.vmapping]
    blank = np.zeros((size, size, 3), np.uint8)
    mesh = TexturedMesh(pos, normals, layout.uvs, layout.faces, blank)
    face, x = _texels(mesh, size)
    y = np.zeros((size, size, 5), np.float32)
    y[face.numpy() >= 0] = _truth(x.numpy())
    base = _u8(linear_to_srgb(torch.as_tensor(y[..., :3])).numpy())
    orm = _u8(np.concatenate([np.ones((size, size, 1)), y[..., 3:5]], -1))
    return mesh.with_(base_color=base, orm=orm)


@pytest.fixture(scope="module")
def fitted(painted):
    return fit_procedural(painted, regions=4)


def _angle(a, b) -> float:
    c = abs(float(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b)))
    return float(np.degrees(np.arccos(min(c, 1.0))))


def test_regions_and_families_are_recovered(painted, fitted):
    rows = {r["family"]: r for r in fitted.summary()}
    assert sorted(rows) == ["noise", "stripes"], fitted.summary()
    assert all(0.4 < r["area_fraction"] < 0.6 for r in rows.values())
    stripes = next(m for m in fitted.materials if m.family == "stripes")
    assert _angle(stripes.params["direction"], STRIPES.params["direction"]) < 2.0
    assert abs(stripes.params["frequency"] - 8.0) < 0.1
    # texel for texel (8-bit textures): far better than the region's mean colour
    assert rows["stripes"]["psnr"] > 35 and rows["stripes"]["psnr"] > rows["stripes"]["psnr_uniform"] + 10
    # noise has no phase to fit: its statistics match, texels do not beat the mean
    assert rows["noise"]["stats_error"] < 0.15 and rows["noise"]["psnr"] < rows["noise"]["psnr_uniform"] + 0.5
    noise = next(m for m in fitted.materials if m.family == "noise")
    assert 12.0 < noise.params["scale"] < 21.0
    assert rows["stripes"]["accepted"] and rows["noise"]["accepted"]  # both close enough to be used on export


def test_regenerated_textures_follow_the_materials_at_any_size(painted, fitted):
    big = regenerate(painted, fitted, 512)
    assert big.base_color.shape == (512, 512, 3) and big.orm.shape == (512, 512, 3)
    face, x = _texels(painted, 512)
    covered = face.numpy() >= 0
    p = x.numpy()
    up = p[:, 1] > 0.02  # the stripes region
    truth = _u8(linear_to_srgb(torch.as_tensor(STRIPES.evaluate(p[up])[:, :3])).numpy())
    got = big.base_color[covered][up]
    err = np.abs(got.astype(int) - truth.astype(int))
    assert np.mean(err) < 2.0, np.mean(err)
    # a region too far from its texture keeps the texture (resampled) on export
    import copy

    rejected = copy.deepcopy(fitted)
    for m in rejected.materials:
        m.scores["accepted"] = m.family != "stripes"
    kept = regenerate(painted, rejected, 512).base_color[covered][up]
    resampled = regenerate(painted, ProceduralFit([], np.full_like(fitted.face_region, -1), fitted.centre,
                                                  fitted.scale), 512).base_color[covered][up]
    assert np.array_equal(kept, resampled) and not np.array_equal(kept, got)
    # round trip through materials.json
    again = ProceduralFit.from_json(json.loads(json.dumps(fitted.to_json())))
    assert np.array_equal(again.face_region, fitted.face_region)
    for a, b in zip(again.materials, fitted.materials):
        np.testing.assert_allclose(a.evaluate(p[:100]), b.evaluate(p[:100]), atol=1e-5)


def test_export_texture_size(painted, fitted, tmp_path):
    from recon.bake import read_mesh, write_mesh
    from recon.cli import main

    folder = tmp_path / "asset"
    folder.mkdir()
    write_mesh(painted.with_(material="pbr"), folder / "sphere.glb")
    (folder / "materials.json").write_text(json.dumps(fitted.to_json()))
    out = tmp_path / "big.glb"
    assert main(["export", str(folder), "--out", str(out), "--texture-size", "512"]) == 0
    mesh = read_mesh(out)
    assert mesh.base_color.shape == (512, 512, 3)
    expect = regenerate(painted, fitted, 512).base_color  # materials.json rounds the weights to 1e-6
    assert np.abs(mesh.base_color.astype(int) - expect).max() <= 1
    # without materials.json the textures are resampled
    (folder / "materials.json").unlink()
    assert main(["export", str(folder), "--out", str(tmp_path / "small.glb"), "--texture-size", "64"]) == 0
    assert read_mesh(tmp_path / "small.glb").base_color.shape == (64, 64, 3)


def test_export_texture_size_errors(painted, fitted, tmp_path, capsys):
    from recon.bake import write_mesh
    from recon.cli import main

    folder = tmp_path / "asset"
    folder.mkdir()
    write_mesh(painted.with_(material="pbr"), folder / "sphere.glb")
    bad = fitted.to_json()
    bad["faces"] = 7
    (folder / "materials.json").write_text(json.dumps(bad))
    for size, expect in (("8", "--texture-size must be between 16 and 16384"),
                         ("128", "cannot regenerate the procedural materials")):
        assert main(["export", str(folder), "--out", str(tmp_path / "x.glb"), "--texture-size", size]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and expect in err[0], err
        assert not (tmp_path / "x.glb").exists()


def test_fibonacci_directions_cover_the_hemisphere():
    d = fibonacci_directions(96).numpy()
    assert np.allclose(np.linalg.norm(d, axis=1), 1) and (d[:, 2] >= 0).all()
    probe = np.random.default_rng(0).normal(size=(500, 3))
    probe /= np.linalg.norm(probe, axis=1, keepdims=True)
    worst = np.degrees(np.arccos(np.abs(probe @ d.T).max(1))).max()
    assert worst < 12  # the search's coarsest step; the refinement does the rest
