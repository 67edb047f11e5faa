"""Texture baking: base colour matches the field's albedo, the normal map carries the fine normals."""
from __future__ import annotations

import numpy as np
import torch
import trimesh

from recon.bake.extract import transform_points
from recon.bake.texture import dilate, vertex_tangents
from recon.eval.metrics import psnr


def sample_texture(tex: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Bilinear lookup at glTF-convention uvs, as a renderer does (recon.synth's sampler, OpenGL uvs), 0..255."""
    from recon.synth.mesh import sample_texture as synth_sample

    uv_gl = np.stack([uv[:, 0], 1.0 - uv[:, 1]], -1)
    return synth_sample(torch.as_tensor(tex, dtype=torch.float64), torch.as_tensor(uv_gl)).numpy()


def _surface_samples(asset, n=20000, seed=0):
    """Random points on the baked mesh: positions, faces, barycentrics, uvs."""
    mesh = trimesh.Trimesh(asset.positions, asset.faces, process=False)
    pts, fid = trimesh.sample.sample_surface(mesh, n, seed=seed)
    bc = trimesh.triangles.points_to_barycentric(mesh.triangles[fid], pts)
    uv = (bc[:, :, None] * asset.uvs[asset.faces[fid]]).sum(1)
    return pts, fid, bc, uv


def test_baked_base_colour_matches_the_albedo(baked):
    asset, field, N = baked.asset, baked.field, baked.normalization
    pts, _, _, uv = _surface_samples(asset)
    looked_up = sample_texture(asset.base_color, uv) / 255.0  # bilinear, as a renderer does
    truth = field.albedo(torch.as_tensor(transform_points(N, pts)).float()).numpy()
    assert psnr(looked_up, truth) > 40.0
    # the PLY's vertex colours are the albedo at the vertices too
    vc = asset.vertex_colors / 255.0
    truth_v = field.albedo(torch.as_tensor(transform_points(N, asset.positions.astype(np.float64))).float()).numpy()
    assert psnr(vc, truth_v) > 45.0


def _angle_deg(a, b):
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return np.degrees(np.arccos(np.clip((a * b).sum(1), -1, 1)))


def test_normal_map_restores_the_fine_normals(baked):
    """Decode the normal map as a glTF renderer does (interpolated N and T, B = cross(N, T) * w)."""
    asset, field, N = baked.asset, baked.field, baked.normalization
    pts, fid, bc, uv = _surface_samples(asset, seed=1)
    corners = asset.faces[fid]
    n_geo = (bc[..., None] * asset.normals[corners]).sum(1)
    n_geo /= np.linalg.norm(n_geo, axis=1, keepdims=True)
    t = (bc[..., None] * asset.tangents[corners, :3]).sum(1)
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    b = np.cross(n_geo, t) * asset.tangents[corners[:, 0], 3:4]
    ts = sample_texture(asset.normal_map, uv) / 255.0 * 2 - 1
    n_map = ts[:, :1] * t + ts[:, 1:2] * b + ts[:, 2:3] * n_geo

    x = torch.as_tensor(transform_points(N, pts)).requires_grad_(True)
    (g,) = torch.autograd.grad(field.sdf(x).sum(), x)
    n_true = g.numpy() @ N[:3, :3]  # gradients map back by A^T

    err_map, err_geo = _angle_deg(n_map, n_true), _angle_deg(n_geo, n_true)
    assert err_map.mean() < 0.5 and np.median(err_map) < 0.5
    assert err_map.mean() < 0.5 * err_geo.mean()  # the map beats the decimated mesh's normals


def test_tangent_frames(baked):
    a = baked.asset
    t, w, n = a.tangents[:, :3], a.tangents[:, 3], a.normals
    assert np.allclose(np.linalg.norm(t, axis=1), 1, atol=1e-4)
    assert np.abs((t * n).sum(1)).max() < 1e-4
    assert set(np.unique(w)) <= {-1.0, 1.0}
    # +u along the tangent and "up the image" (-v) along B = cross(N, T) * w, on every face
    f = a.faces
    p, uv = a.positions[f].astype(np.float64), a.uvs[f].astype(np.float64)
    du = uv[:, 1] - uv[:, 0]
    dp = p[:, 1] - p[:, 0]
    b = np.cross(n[f[:, 0]], t[f[:, 0]]) * w[f[:, 0], None]
    big = np.abs(du[:, 1]) > 4 * np.abs(du[:, 0])  # edges mostly along v
    assert (np.sign((dp[big] * b[big]).sum(1)) == -np.sign(du[big, 1])).mean() > 0.95


def test_vertex_tangents_of_a_flat_quad():
    pos = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], np.float32)
    uv = np.array([[0, 1], [1, 1], [1, 0], [0, 0]], np.float32)  # glTF: v down, so +y is up the image
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    tan = vertex_tangents(pos, np.tile([[0, 0, 1.0]], (4, 1)), uv, faces)
    assert np.allclose(tan, [[1, 0, 0, 1]] * 4, atol=1e-6)
    mirrored = vertex_tangents(pos, np.tile([[0, 0, 1.0]], (4, 1)), uv[:, [0, 1]] * [1, -1] + [0, 1], faces)
    assert np.allclose(mirrored[:, 3], -1)


def test_dilation_fills_outside_and_keeps_inside():
    torch.manual_seed(0)
    img = torch.rand(64, 48, 3)
    mask = torch.zeros(64, 48, dtype=torch.bool)
    mask[10:30, 5:20] = True
    out = dilate(img, mask, iterations=3)
    assert torch.equal(out[mask], img[mask])
    assert torch.isfinite(out).all()
    # the first ring outside the chart is the mean of its valid neighbours
    assert torch.allclose(out[30, 10], img[29, 9:12].mean(0), atol=1e-6)
    # far away texels are filled with values inside the chart's range
    assert (out[~mask] >= img[mask].min(0).values - 1e-6).all()
    assert (out[~mask] <= img[mask].max(0).values + 1e-6).all()


def test_vertex_normals_are_unit_even_where_faces_cancel():
    from recon.bake.texture import unit_vertex_normals

    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [5, 5, 5], [6, 5, 5], [5, 6, 5.0]])
    f = np.array([[0, 1, 2], [0, 2, 1], [3, 4, 5]])  # a folded pair: its normals sum to zero
    n = unit_vertex_normals(trimesh.Trimesh(v, f, process=False))
    assert np.allclose(np.linalg.norm(n, axis=1), 1.0)
    assert np.allclose(n[3:], [0, 0, 1])
