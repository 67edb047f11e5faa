"""refine_base_color: a wrong base colour is fitted to training photos and then matches held-out views."""
from __future__ import annotations

import numpy as np

from recon.bake.preview import render
from recon.bake.texture_refine import refine_base_color
from recon.eval.metrics import psnr

from .conftest import torus_photos


def _heldout_psnr(asset, capture, cams):
    idx = capture.split_indices("test")
    views = render(asset, cams[idx], lit=False)
    return np.mean([psnr(v["rgb"], capture.images[i] / 255.0, mask=capture.masks[i] > 127)
                    for v, i in zip(views, idx)])


def test_texture_fit_recovers_the_photos_colour(baked):
    capture, cams = torus_photos(baked, inverted=True)
    before = _heldout_psnr(baked.asset, capture, cams)
    refined, stats = refine_base_color(baked.asset, capture, baked.normalization, steps=300, lr=0.05)
    after = _heldout_psnr(refined, capture, cams)
    assert stats["texture_fit_kept"] and stats["texture_fit_psnr_after"] > stats["texture_fit_psnr_before"] + 10
    assert before < 15 and after > 25, (before, after, stats)
    assert refined.base_color.dtype == np.uint8 and refined.base_color.shape == baked.asset.base_color.shape
    assert np.array_equal(refined.positions, baked.asset.positions)  # the mesh is untouched


def test_a_fit_that_hurts_is_discarded_and_reported(baked):
    capture, _ = torus_photos(baked, n_train=4, n_test=0)  # the baked colour already matches
    same, stats = refine_base_color(baked.asset, capture, baked.normalization, steps=1, lr=1.0)
    assert same is baked.asset and not stats["texture_fit_kept"]
    assert stats["texture_fit_psnr_after"] < stats["texture_fit_psnr_before"] - 1, stats  # measured, not overwritten


def test_no_train_views_or_zero_steps_leave_the_texture(baked):
    capture, _ = torus_photos(baked, inverted=True, n_train=0, n_test=2)
    same, stats = refine_base_color(baked.asset, capture, baked.normalization)
    assert same is baked.asset and stats == {}
    capture, _ = torus_photos(baked, inverted=True, n_train=2, n_test=0)
    same, stats = refine_base_color(baked.asset, capture, baked.normalization, steps=0)
    assert same is baked.asset and stats == {}


def test_pyramid_samples_match_the_texture_it_writes():
    """Training looks each level up at the uvs; the written texture upsamples them first. At full resolution
    the two agree exactly; the coarse residual levels differ only by how they are interpolated."""
    import torch

    from recon.render.texture_lookup import ResidualPyramid, lookup_texture

    gen = torch.Generator().manual_seed(0)
    base = (torch.rand(64, 64, 3, generator=gen) * 255).to(torch.uint8).numpy()
    pyr = ResidualPyramid(base, levels=3)
    uv = torch.rand(2000, 2, generator=gen)
    with torch.no_grad():
        torch.testing.assert_close(pyr.sample(uv), lookup_texture(pyr.texture(), uv))  # residuals zero: exact
        pyr.levels[0].add_(torch.randn(pyr.levels[0].shape, generator=gen) * 0.05)  # the finest level holds the base
        torch.testing.assert_close(pyr.sample(uv), lookup_texture(pyr.texture(), uv), atol=1e-5, rtol=1e-5)
        for lv in pyr.levels[1:]:  # smooth coarse residuals, as the fit makes them
            lv.copy_(torch.nn.functional.avg_pool2d(torch.randn(lv.shape, generator=gen)[None], 3, 1, 1)[0] * 0.05)
        err = (pyr.sample(uv) - lookup_texture(pyr.texture(), uv)).abs()
    assert float(err.mean()) < 2e-3 and float(err.max()) < 2e-2
    assert pyr.to_u8().shape == (64, 64, 3)
