"""refine_base_color: a wrong base colour is fitted to training photos and then matches held-out views."""
from __future__ import annotations

import numpy as np
import torch

from recon.bake.extract import transform_points
from recon.bake.preview import render
from recon.bake.texture_refine import refine_base_color
from recon.core.types import Capture, FrameInfo
from recon.eval.metrics import psnr


def _photos(baked, n_train=16, n_test=3, size=64):
    """Photos of the true torus whose colour is the inverse of the field's albedo (what the bake starts from)."""
    from recon.synth.cameras import sphere_cameras
    from recon.synth.mesh import Mesh
    from recon.synth.render import render_views

    gt, N = baked.fine, baked.normalization
    colors = 1.0 - baked.field.albedo(torch.as_tensor(transform_points(N, gt.vertices)).float()).numpy()
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


def _heldout_psnr(asset, capture, cams):
    idx = capture.split_indices("test")
    views = render(asset, cams[idx], lit=False)
    return np.mean([psnr(v["rgb"], capture.images[i] / 255.0, mask=capture.masks[i] > 127)
                    for v, i in zip(views, idx)])


def test_texture_fit_recovers_the_photos_colour(baked):
    capture, cams = _photos(baked)
    before = _heldout_psnr(baked.asset, capture, cams)
    refined, stats = refine_base_color(baked.asset, capture, baked.normalization, steps=300, lr=0.05)
    after = _heldout_psnr(refined, capture, cams)
    assert stats["texture_fit_psnr_after"] > stats["texture_fit_psnr_before"] + 10
    assert before < 15 and after > 25, (before, after, stats)
    assert refined.base_color.dtype == np.uint8 and refined.base_color.shape == baked.asset.base_color.shape
    assert np.array_equal(refined.positions, baked.asset.positions)  # the mesh is untouched


def test_no_train_views_or_zero_steps_leave_the_texture(baked):
    capture, _ = _photos(baked, n_train=0, n_test=2)
    same, stats = refine_base_color(baked.asset, capture, baked.normalization)
    assert same is baked.asset and stats == {}
    capture, _ = _photos(baked, n_train=2, n_test=0)
    same, stats = refine_base_color(baked.asset, capture, baked.normalization, steps=0)
    assert same is baked.asset and stats == {}
