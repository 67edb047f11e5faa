"""rasterize_torch against a per-pixel brute-force reference, and basic contract checks."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from recon.ops import rasterize, rasterize_torch


def _edge(a, b, p):
    """Edge function of edge a->b at p, evaluated with the endpoints in canonical order."""
    if (a[0], a[1]) > (b[0], b[1]):
        return -_edge(b, a, p)
    return (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])


def brute_force(verts: np.ndarray, faces: np.ndarray, H: int, W: int):
    """Per pixel, per face: inclusive edge test, perspective-correct depth, nearest (float32) wins."""
    fid = np.full((H, W), -1)
    bary = np.zeros((H, W, 3))
    depth = np.zeros((H, W))
    for i in range(H):
        for j in range(W):
            p = (j + 0.5, i + 0.5)
            best = None
            for f, (i0, i1, i2) in enumerate(faces):
                v = verts[[i0, i1, i2]]
                area = _edge(v[1], v[2], v[0])
                if area == 0 or (v[:, 2] <= 0).any():
                    continue
                e = np.array([_edge(v[1], v[2], p), _edge(v[2], v[0], p), _edge(v[0], v[1], p)])
                if not (e * np.sign(area) >= 0).all():
                    continue
                w = e * (1.0 / v[:, 2])  # same operation order as the op, for exact ties
                z = e.sum() / w.sum()
                key = (np.float32(z), f)
                if best is None or key < best[0]:
                    best = (key, w / w.sum(), z)
            if best is not None:
                fid[i, j], bary[i, j], depth[i, j] = best[0][1], best[1], best[2]
    return fid, bary, depth


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_brute_force_on_random_triangles(seed):
    rng = np.random.default_rng(seed)
    H, W, F = 23, 31, 12
    centres = rng.uniform([0, 0], [W, H], size=(F, 1, 2))
    xy = centres + rng.normal(scale=6.0, size=(F, 3, 2))
    z = rng.uniform(1.0, 5.0, size=(F, 3))
    verts = np.concatenate([xy, z[..., None]], -1).reshape(-1, 3)
    # a shared edge (faces 0 and 1 use vertices 0 and 1) and a duplicated-position vertex
    faces = np.arange(3 * F).reshape(F, 3)
    faces[1, :2] = faces[0, [1, 0]]
    verts[faces[2, 0]] = verts[faces[0, 2]]
    ref_fid, ref_bary, ref_depth = brute_force(verts, faces, H, W)
    fid, bary, depth = rasterize_torch(torch.from_numpy(verts), torch.from_numpy(faces), H, W)
    assert (ref_fid >= 0).sum() > 100  # the scene actually covers pixels
    np.testing.assert_array_equal(fid.numpy(), ref_fid)
    np.testing.assert_allclose(bary.numpy(), ref_bary, atol=1e-9)
    np.testing.assert_allclose(depth.numpy(), ref_depth, rtol=1e-12)
    # the float32 path agrees with the float64 one except where rounding changes the visible face
    fid32, bary32, _ = rasterize_torch(torch.from_numpy(verts).float(), torch.from_numpy(faces), H, W)
    same = fid32.numpy() == ref_fid
    assert same.mean() > 0.99
    np.testing.assert_allclose(bary32.numpy()[same], ref_bary[same], atol=1e-4)


def test_matches_brute_force_when_edges_pass_through_pixel_centres():
    """A tilted grid mesh whose vertices sit on pixel centres: ties on shared edges resolve identically."""
    H = W = 12
    g = np.arange(0.5, 12, 2.0)
    xx, yy = np.meshgrid(g, g)
    zz = 2.0 + 0.1 * xx + 0.05 * yy
    verts = np.stack([xx, yy, zz], -1).reshape(-1, 3)
    n = len(g)
    idx = np.arange(n * n).reshape(n, n)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
    faces = np.concatenate([np.stack([a, b, d], 1), np.stack([a, d, c], 1)])
    ref = brute_force(verts, faces, H, W)
    out = rasterize_torch(torch.from_numpy(verts), torch.from_numpy(faces), H, W)
    np.testing.assert_array_equal(out[0].numpy(), ref[0])
    np.testing.assert_allclose(out[1].numpy(), ref[1], atol=1e-12)
    covered = (slice(0, 11), slice(0, 11))
    assert (out[0].numpy()[covered] >= 0).all()


def test_shared_edges_leave_no_cracks():
    """A fan of triangles around a centre covers every pixel of its polygon exactly once."""
    H = W = 64
    n = 37
    ang = np.linspace(0, 2 * np.pi, n, endpoint=False) + 0.1
    ring = np.stack([32 + 25.3 * np.cos(ang), 32 + 25.3 * np.sin(ang), np.full(n, 2.0)], 1)
    verts = np.concatenate([[[32.2, 31.7, 2.0]], ring])
    faces = np.stack([np.zeros(n, int), 1 + np.arange(n), 1 + (np.arange(n) + 1) % n], 1)
    fid, _, depth = rasterize_torch(torch.tensor(verts, dtype=torch.float32), torch.from_numpy(faces), H, W)
    yy, xx = np.mgrid[:H, :W] + 0.5
    r = np.hypot(xx - 32, yy - 32)
    inner = r < 25.3 * np.cos(np.pi / n) - 0.5  # strictly inside the polygon
    assert (fid.numpy()[inner] >= 0).all()
    assert (fid.numpy()[r > 25.5] == -1).all()
    np.testing.assert_allclose(depth.numpy()[inner], 2.0, rtol=1e-6)


def test_nearest_wins_and_ties_go_to_lower_index():
    H = W = 8
    quad = np.array([[0, 0], [8, 0], [0, 8], [8, 8]], dtype=np.float64)
    # two coincident quads at z=2 (faces 0-1 and 2-3) and one in front at z=1 (faces 4-5)
    verts = np.concatenate([np.concatenate([quad, np.full((4, 1), z)], 1) for z in (2.0, 2.0, 1.0)])
    faces = np.array([[0, 1, 2], [1, 3, 2]])
    faces = np.concatenate([faces, faces + 4, faces + 8])
    fid, _, depth = rasterize_torch(torch.tensor(verts), torch.tensor(faces), H, W)
    assert set(fid.unique().tolist()) == {4, 5}
    fid, _, _ = rasterize_torch(torch.tensor(verts), torch.tensor(faces[:4]), H, W)
    assert set(fid.unique().tolist()) == {0, 1}  # ties between 0/2 and 1/3 go to the lower index
    np.testing.assert_allclose(depth.numpy(), 1.0)


def test_perspective_correct_barycentrics_reproduce_3d_points():
    """Interpolating camera-space vertex positions with bary gives points on the ray through the pixel."""
    fx, cx, H = 40.0, 16.0, 32
    P = torch.tensor([[-1.0, -1.0, 2.0], [1.5, -0.5, 6.0], [-0.5, 1.5, 4.0]], dtype=torch.float64)
    scr = torch.stack([fx * P[:, 0] / P[:, 2] + cx, fx * P[:, 1] / P[:, 2] + cx, P[:, 2]], 1)
    fid, bary, depth = rasterize(scr, torch.tensor([[0, 1, 2]]), H, H)
    hit = fid >= 0
    X = bary[hit] @ P  # (N, 3) interpolated 3D points
    ii, jj = torch.nonzero(hit, as_tuple=True)
    torch.testing.assert_close(X[:, 2], depth[hit])
    torch.testing.assert_close(fx * X[:, 0] / X[:, 2] + cx, jj.double() + 0.5)
    torch.testing.assert_close(fx * X[:, 1] / X[:, 2] + cx, ii.double() + 0.5)


def test_gradients_flow_to_vertices():
    verts = torch.tensor([[2.0, 2.0, 1.0], [14.0, 3.0, 2.0], [5.0, 13.0, 3.0]], requires_grad=True)
    fid, bary, depth = rasterize_torch(verts, torch.tensor([[0, 1, 2]]), 16, 16)
    (bary[..., 0].sum() + depth.sum()).backward()
    assert verts.grad is not None and torch.isfinite(verts.grad).all() and verts.grad.abs().sum() > 0


def test_skips_faces_behind_the_camera_and_degenerate_faces():
    verts = torch.tensor([[0.0, 0, 1], [8, 0, 1], [0, 8, -1], [0, 0, 1], [4, 4, 1], [8, 8, 1]])
    fid, _, _ = rasterize_torch(verts, torch.tensor([[0, 1, 2], [3, 4, 5]]), 8, 8)
    assert (fid == -1).all()
