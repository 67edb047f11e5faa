"""Similarity alignment of point sets (Umeyama 1991): compare poses known only up to scale.

Structure-from-motion recovers cameras in its own frame and units; to measure
them against ground truth, align the estimated camera centres to the true ones
with the best rotation, translation and uniform scale, then look at what is left.
"""
from __future__ import annotations

import numpy as np


def umeyama(src: np.ndarray, dst: np.ndarray, with_scale: bool = True) -> np.ndarray:
    """4x4 similarity T minimising sum ||T(src_i) - dst_i||^2 (least squares, closed form).

    src, dst: (N, D) corresponding points, N >= D for a unique answer (D = 3 gives
    a 4x4 matrix; any D gives (D+1)x(D+1)). ``with_scale`` False fits a rigid motion.
    The rotation is proper (det +1) even when the best orthogonal fit is a reflection.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2:
        raise ValueError(f"umeyama: need two (N, D) arrays of one shape, got {src.shape} and {dst.shape}")
    n, d = src.shape
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, xd = src - mu_s, dst - mu_d
    cov = xd.T @ xs / n
    U, S, Vt = np.linalg.svd(cov)
    E = np.eye(d)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        E[-1, -1] = -1.0
    R = U @ E @ Vt
    var_s = (xs ** 2).sum() / n
    scale = float(np.trace(np.diag(S) @ E) / var_s) if with_scale and var_s > 0 else 1.0
    T = np.eye(d + 1)
    T[:d, :d] = scale * R
    T[:d, d] = mu_d - scale * R @ mu_s
    return T


def apply_similarity(T: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a (D+1)x(D+1) similarity to (N, D) points."""
    T = np.asarray(T, dtype=np.float64)
    d = T.shape[0] - 1
    return np.asarray(points, dtype=np.float64) @ T[:d, :d].T + T[:d, d]


def aligned_errors(src: np.ndarray, dst: np.ndarray, with_scale: bool = True) -> np.ndarray:
    """(N,) distances between ``dst`` and ``src`` after the best similarity alignment of src onto dst."""
    T = umeyama(src, dst, with_scale)
    return np.linalg.norm(apply_similarity(T, src) - np.asarray(dst, dtype=np.float64), axis=1)
