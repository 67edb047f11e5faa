"""Umeyama similarity alignment: exact on noiseless data, proper rotations, least squares with noise."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from recon.eval.align import aligned_errors, apply_similarity, umeyama


def _similarity(seed: int, scale: float = 2.5) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = scale * Rotation.random(random_state=seed).as_matrix()
    T[:3, 3] = np.random.default_rng(seed).normal(size=3) * 3
    return T


@pytest.mark.parametrize("seed", range(4))
def test_recovers_a_similarity_exactly(seed):
    src = np.random.default_rng(seed + 10).normal(size=(12, 3))
    T = _similarity(seed)
    est = umeyama(src, apply_similarity(T, src))
    np.testing.assert_allclose(est, T, atol=1e-9)
    np.testing.assert_allclose(aligned_errors(src, apply_similarity(T, src)), 0, atol=1e-9)


def test_rotation_is_proper_even_for_mirrored_points():
    src = np.random.default_rng(0).normal(size=(10, 3))
    dst = src * np.array([1.0, 1.0, -1.0])  # a reflection: no rotation fits exactly
    T = umeyama(src, dst)
    R = T[:3, :3] / np.cbrt(np.linalg.det(T[:3, :3]))
    assert np.linalg.det(R) == pytest.approx(1.0)
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-9)


def test_rigid_fit_without_scale():
    src = np.random.default_rng(1).normal(size=(8, 3))
    T = _similarity(3, scale=1.0)
    est = umeyama(src, apply_similarity(T, src), with_scale=False)
    np.testing.assert_allclose(est, T, atol=1e-9)


def test_least_squares_with_noise_beats_the_truth_slightly():
    rng = np.random.default_rng(2)
    src = rng.normal(size=(200, 3))
    T = _similarity(5)
    dst = apply_similarity(T, src) + rng.normal(scale=0.01, size=(200, 3))
    err_fit = aligned_errors(src, dst)
    err_true = np.linalg.norm(apply_similarity(T, src) - dst, axis=1)
    assert (err_fit ** 2).sum() <= (err_true ** 2).sum() + 1e-12
    np.testing.assert_allclose(umeyama(src, dst), T, atol=0.02)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError):
        umeyama(np.zeros((4, 3)), np.zeros((5, 3)))
