"""normalize_capture: a known subject ends up inside the unit sphere and fills most of it."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from recon.capture.normalize import enclosing_sphere, look_at_point, normalize_capture


def _check_similarity(T):
    s = np.cbrt(np.linalg.det(T[:3, :3]))
    assert np.allclose(T[:3, :3], s * np.eye(3)) and np.allclose(T[3], [0, 0, 0, 1])
    return s


def test_visual_hull_sphere_subject(synth):
    center, radius = np.array([3.0, -2.0, 1.5]), 2.0
    cams = synth.orbit_cameras(24, center, distance=9.0, width=96, height=72, fx=70.0)
    cap = synth.make_capture(cams, masks=synth.sphere_masks(cams, center, radius))
    out = normalize_capture(cap)
    assert out.meta["normalization_method"] == "visual_hull" and out.meta["normalized"]
    s = _check_similarity(out.normalization)
    c = out.normalization[:3, :3] @ center + out.normalization[:3, 3]
    r = s * radius
    assert np.linalg.norm(c) + r <= 1.0  # inside the unit sphere
    assert r >= 0.75  # and fills most of it (1/1.1 = 0.91 ideal)
    # Cameras moved with the world: the subject still projects to the same pixels.
    uv0, _ = cams.project(center[None])
    uv1, _ = out.cameras.project(c[None])
    assert np.allclose(uv0, uv1, atol=1e-6)
    assert np.allclose(np.linalg.det(out.cameras.c2w[:, :3, :3]), 1.0)


def test_visual_hull_box_subject(synth):
    lo, hi = np.array([-0.2, -0.5, 0.0]), np.array([0.4, 0.3, 0.25])
    cams = synth.orbit_cameras(20, (lo + hi) / 2, distance=3.0, width=80, height=60, fx=60.0, seed=3)
    out = normalize_capture(synth.make_capture(cams, masks=synth.box_masks(cams, lo, hi)))
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    cn = corners @ out.normalization[:3, :3].T + out.normalization[:3, 3]
    d = np.linalg.norm(cn, axis=1)
    assert d.max() <= 1.0 and d.max() >= 0.75


def test_points_sphere_with_outliers(synth):
    rng = np.random.default_rng(0)
    center, radius = np.array([0.5, 0.2, -1.0]), 0.8
    cams = synth.orbit_cameras(16, center, distance=4.0)
    v = rng.normal(size=(2000, 3))
    pts = center + radius * v / np.linalg.norm(v, axis=1, keepdims=True)
    pts = np.concatenate([pts, center + rng.uniform(-40, 40, (30, 3))])  # far outliers
    out = normalize_capture(synth.make_capture(cams, points=pts))
    assert out.meta["normalization_method"] == "sfm_points"
    inlier = out.points[:2000]
    d = np.linalg.norm(inlier, axis=1)
    assert np.quantile(d, 0.97) <= 1.0 and d.max() <= 1.05 and np.median(d) >= 0.7
    # points moved with the world
    assert np.allclose(out.points, pts @ out.normalization[:3, :3].T + out.normalization[:3, 3])


def test_cameras_only_and_composition(synth):
    center = np.array([10.0, 0.0, 0.0])
    cams = synth.orbit_cameras(12, center, distance=5.0)
    assert np.allclose(look_at_point(cams), center, atol=1e-6)
    cap = synth.make_capture(cams)
    out = normalize_capture(cap)
    assert out.meta["normalization_method"] == "cameras"
    assert np.linalg.norm(out.normalization[:3, :3] @ center + out.normalization[:3, 3]) < 1e-6
    # cameras stay outside the sphere; the view at the centre's distance holds the unit sphere
    dist = np.linalg.norm(out.cameras.centers, axis=1)
    assert dist.min() > 1.0
    # normalising again composes: normalization maps original -> final
    again = normalize_capture(out)
    assert np.allclose(again.cameras.transformed(np.linalg.inv(again.normalization)).c2w, cams.c2w, atol=1e-9)


def test_enclosing_sphere_is_near_minimal():
    rng = np.random.default_rng(1)
    v = rng.normal(size=(3000, 3))
    pts = np.array([1.0, 2.0, 3.0]) + 2.0 * v / np.linalg.norm(v, axis=1, keepdims=True)
    c, r = enclosing_sphere(pts)
    assert np.linalg.norm(c - [1, 2, 3]) < 0.1 and 2.0 <= r < 2.1


def _garbled(cap, mask_fill=None, shift=None):
    """``cap`` with its held-out views' masks filled with ``mask_fill`` and/or their cameras moved by ``shift``."""
    test = cap.split_indices("test")
    masks, c2w = cap.masks, cap.cameras.c2w.copy()
    if mask_fill is not None:
        masks = [np.full_like(m, mask_fill) if i in test else m for i, m in enumerate(masks)]
    if shift is not None:
        c2w[test, :3, 3] += shift
    return replace(cap, masks=masks, cameras=replace(cap.cameras, c2w=c2w))


def test_held_out_views_do_not_influence_the_transform(synth):
    lo, hi = np.array([-0.2, -0.5, 0.0]), np.array([0.4, 0.3, 0.25])
    cams = synth.orbit_cameras(20, (lo + hi) / 2, distance=3.0, width=80, height=60, fx=60.0, seed=3)
    pts = np.random.default_rng(0).uniform(lo, hi, (500, 3))
    cap = synth.make_capture(cams, masks=synth.box_masks(cams, lo, hi), points=pts)  # every 4th view held out
    assert len(cap.split_indices("test")) == 5
    ref = normalize_capture(cap)
    assert ref.meta["normalization_method"] == "visual_hull"
    for fill in (0, 255):  # empty or all-subject held-out masks
        assert np.array_equal(normalize_capture(_garbled(cap, mask_fill=fill)).normalization, ref.normalization)
    moved = _garbled(cap, shift=np.array([5.0, -3.0, 2.0]))  # held-out cameras moved away
    for masks in (cap.masks, None):  # visual hull, then SfM points
        assert np.array_equal(normalize_capture(replace(cap, masks=masks)).normalization,
                              normalize_capture(replace(moved, masks=masks)).normalization)
    no_points = replace(cap, masks=None, points=None)  # camera-only estimate
    assert np.array_equal(normalize_capture(no_points).normalization,
                          normalize_capture(_garbled(no_points, shift=5.0)).normalization)


def test_all_views_are_used_without_a_train_split(synth):
    center = np.array([0.3, 0.1, -0.2])
    cams = synth.orbit_cameras(12, center, distance=5.0)
    out = normalize_capture(synth.make_capture(cams, masks=synth.sphere_masks(cams, center, 0.8), test_every=1))
    assert out.meta["normalization_method"] == "visual_hull"
    assert np.linalg.norm(out.normalization[:3, :3] @ center + out.normalization[:3, 3]) < 0.1
