"""refine_mesh: silhouette anti-aliasing, mesh adjacency, and a shrunk torus fitted back to its photos."""
from __future__ import annotations

import numpy as np
import torch
import trimesh

from recon.bake.extract import transform_points
from recon.bake.mesh_refine import refine_mesh
from recon.render.mesh_raster import edge_neighbours, silhouette_antialias, UniformLaplacian, weld
from recon.bake.preview import render
from recon.eval.metrics import psnr

from .conftest import torus_photos


def test_edge_neighbours_of_a_quad_and_its_boundary():
    faces = np.array([[0, 1, 2], [0, 2, 3]])  # edge k runs corner k+1 -> k+2
    nb = edge_neighbours(faces)
    assert nb.tolist() == [[-1, 1, -1], [-1, -1, 0]]  # face 0's edge 2->0 and face 1's edge 0->2 are shared
    box = trimesh.creation.box().faces
    assert (edge_neighbours(box) >= 0).all()  # closed: no boundary edge


def test_uniform_laplacian_is_each_vertex_minus_the_mean_of_its_neighbours():
    mesh = trimesh.creation.icosphere(subdivisions=2)
    faces, n = np.asarray(mesh.faces), len(mesh.vertices)
    x = torch.randn(n, 3, generator=torch.Generator().manual_seed(0), requires_grad=True)
    adj = np.zeros((n, n))
    for a, b in np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]):
        adj[a, b] = adj[b, a] = 1
    L = torch.as_tensor(np.eye(n) - adj / adj.sum(1, keepdims=True), dtype=torch.float32)
    lap = UniformLaplacian(faces, n)
    torch.testing.assert_close(lap(x), L @ x, atol=1e-5, rtol=1e-5)
    (g,) = torch.autograd.grad(lap(x).pow(2).sum(), x)
    torch.testing.assert_close(g, 2 * L.T @ (L @ x), atol=1e-4, rtol=1e-4)


def test_weld_merges_seam_copies():
    pos = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 0, 0]], np.float32)  # vertex 3 copies vertex 1
    index, faces = weld(pos, np.array([[0, 1, 2], [3, 2, 0]]))
    assert index[1] == index[3] and len(set(index.tolist())) == 3
    assert faces[1, 0] == faces[0, 1]


def _edge_image(x_edge: torch.Tensor, H=4, W=16):
    """A big triangle covering u < x_edge (its right side is the vertical line u = x_edge), colour 0 on white."""
    screen = torch.stack([torch.stack([x_edge, torch.tensor(-50.0), torch.tensor(1.0)]),
                          torch.stack([x_edge, torch.tensor(50.0), torch.tensor(1.0)]),
                          torch.tensor([-100.0, 0.0, 1.0])])
    faces = torch.tensor([[0, 1, 2]])
    cols = torch.arange(W)[None].expand(H, W)
    fid = torch.where(cols + 0.5 <= x_edge.detach(), 0, -1)  # pixel centres left of the edge are covered
    color = torch.where(fid[..., None] >= 0, torch.zeros(3), torch.ones(3))
    depth = torch.where(fid >= 0, 1.0, 0.0)
    return silhouette_antialias(color, fid, depth, screen, faces, torch.as_tensor(edge_neighbours(faces.numpy())))


def test_antialias_gives_the_exact_coverage_of_a_vertical_edge_and_its_gradient():
    for x in (10.3, 10.8, 10.5):
        x_edge = torch.tensor(x, requires_grad=True)
        img = _edge_image(x_edge)
        coverage = 1.0 - img[0, :, 0].detach()  # foreground is black
        exact = np.clip(x - np.arange(16), 0, 1)  # box-filter coverage of pixel [j, j+1]
        # the two pixels around the edge get the area the edge leaves them (nvdiffrast's approximation
        # is exact for a straight edge within half a pixel of their shared border)
        np.testing.assert_allclose(coverage.numpy(), exact, atol=1e-5)
        img[0, 10, 0].backward()
        assert abs(float(x_edge.grad) - (-1.0)) < 1e-4  # moving the edge right darkens pixel 10 one-for-one


def _shrunk(asset, factor):
    c = asset.positions.mean(0)
    return asset.with_(positions=((asset.positions - c) * factor + c).astype(np.float32))


def test_a_shrunk_torus_is_fitted_back_to_its_photos(baked):
    capture, cams = torus_photos(baked, n_train=24, n_test=4)
    start = _shrunk(baked.asset, 0.94)
    idx = capture.split_indices("test")

    def heldout(asset):  # whole image: silhouettes count
        return np.mean([psnr(v["rgb"], capture.images[i] / 255.0)
                        for v, i in zip(render(asset, cams[idx], lit=False), idx)])

    def surface_error(asset):  # mean distance of the vertices to the true (analytic) surface, normalised units
        x = torch.as_tensor(transform_points(baked.normalization, asset.positions)).float()
        return float(baked.field.sdf(x).abs().mean())

    refined, stats = refine_mesh(start, capture, baked.normalization, steps=150)
    # fails when the fit is disabled or its optimizer does nothing (after == before, the start kept)
    assert stats["refine_kept"] and stats["refine_psnr_after"] > stats["refine_psnr_before"] + 3, stats
    assert refined is not start
    assert heldout(refined) > heldout(start) + 3, (heldout(start), heldout(refined))
    assert surface_error(refined) < 0.6 * surface_error(start)  # ~0.5 measured
    assert np.array_equal(refined.faces, start.faces) and np.array_equal(refined.uvs, start.uvs)
    n = np.linalg.norm(refined.normals, axis=1)
    np.testing.assert_allclose(n, 1.0, atol=1e-4)
    assert refined.tangents is not None and len(refined.tangents) == len(refined.positions)


def test_a_fit_that_hurts_is_discarded_and_reported(baked):
    capture, _ = torus_photos(baked, n_train=8, n_test=0)
    same, stats = refine_mesh(baked.asset, capture, baked.normalization, steps=1, lr_position=30.0)
    assert same is baked.asset and not stats["refine_kept"]
    assert stats["refine_psnr_after"] < stats["refine_psnr_before"] - 1, stats  # measured, not overwritten


def test_no_masks_or_zero_steps_leave_the_mesh(baked):
    capture, _ = torus_photos(baked, n_train=2, n_test=0)
    same, stats = refine_mesh(baked.asset, capture, baked.normalization, steps=0)
    assert same is baked.asset and stats == {}
    unmasked = type(capture)(capture.images, capture.cameras, capture.frames, None,
                             normalization=capture.normalization)
    same, stats = refine_mesh(baked.asset, unmasked, baked.normalization)
    assert same is baked.asset and stats == {}
