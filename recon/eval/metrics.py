"""Image and geometry metrics: PSNR, SSIM, mask IoU, Chamfer-L1 and F-score.

Images are float arrays in [0, 1] (H, W, C) or (H, W); NumPy in, Python floats out.
SSIM follows Wang et al. 2004 with an 11x11 gaussian window (sigma 1.5), the
setting skimage's ``structural_similarity(gaussian_weights=True,
use_sample_covariance=False, data_range=1)`` uses, which the tests check.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter


def psnr(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Peak signal-to-noise ratio in dB for data in [0, 1]; ``mask`` (H, W) limits the pixels."""
    diff = (np.asarray(pred, np.float64) - np.asarray(target, np.float64)) ** 2
    if mask is not None:
        m = np.asarray(mask).astype(bool)
        diff = diff[m]
    mse = float(diff.mean()) if diff.size else 0.0
    return float("inf") if mse <= 0 else float(-10.0 * np.log10(mse))


def ssim(pred: np.ndarray, target: np.ndarray, sigma: float = 1.5, data_range: float = 1.0) -> float:
    """Mean structural similarity of two (H, W) or (H, W, C) images (channels averaged)."""
    a = np.asarray(pred, np.float64)
    b = np.asarray(target, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"ssim: shapes differ {a.shape} vs {b.shape}")
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    # truncate=3.5 gives the 11x11 window (radius 5) of the reference implementation
    filt = lambda x: gaussian_filter(x, sigma=sigma, truncate=3.5, mode="reflect")  # noqa: E731
    vals = []
    pad = 5  # skimage crops (win_size - 1) // 2 pixels at the borders before averaging
    for c in range(a.shape[-1]):
        x, y = a[..., c], b[..., c]
        mx, my = filt(x), filt(y)
        vx = filt(x * x) - mx * mx
        vy = filt(y * y) - my * my
        cxy = filt(x * y) - mx * my
        s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
        crop = s[pad:-pad, pad:-pad] if min(s.shape) > 2 * pad else s
        vals.append(crop.mean())
    return float(np.mean(vals))


def mask_iou(pred: np.ndarray, target: np.ndarray) -> float:
    """Intersection over union of two boolean (or 0/1, 0/255) masks; 1.0 when both are empty."""
    p = np.asarray(pred) > (127 if np.asarray(pred).dtype == np.uint8 else 0.5)
    t = np.asarray(target) > (127 if np.asarray(target).dtype == np.uint8 else 0.5)
    union = np.logical_or(p, t).sum()
    return 1.0 if union == 0 else float(np.logical_and(p, t).sum() / union)


def chamfer_fscore(pred_points: np.ndarray, gt_points: np.ndarray, threshold: float) -> dict[str, float]:
    """Chamfer-L1 and F-score between two point sets (P, 3) and (Q, 3).

    Chamfer-L1 is the mean of the two mean nearest-neighbour distances
    (accuracy: pred -> gt, completeness: gt -> pred). F-score at ``threshold``
    is the harmonic mean of precision (pred points within it of gt) and recall.
    """
    from scipy.spatial import cKDTree

    p = np.asarray(pred_points, np.float64).reshape(-1, 3)
    g = np.asarray(gt_points, np.float64).reshape(-1, 3)
    if len(p) == 0 or len(g) == 0:
        return {"chamfer": float("inf"), "accuracy": float("inf"), "completeness": float("inf"),
                "precision": 0.0, "recall": 0.0, "fscore": 0.0}
    d_pg = cKDTree(g).query(p, workers=-1)[0]
    d_gp = cKDTree(p).query(g, workers=-1)[0]
    precision = float((d_pg < threshold).mean())
    recall = float((d_gp < threshold).mean())
    f = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return {"chamfer": float(0.5 * (d_pg.mean() + d_gp.mean())), "accuracy": float(d_pg.mean()),
            "completeness": float(d_gp.mean()), "precision": precision, "recall": recall, "fscore": f}


def sample_surface(mesh, n: int, seed: int = 0) -> np.ndarray:
    """``n`` points sampled uniformly (by area) on a trimesh mesh's surface, reproducibly."""
    import trimesh

    if len(mesh.faces) == 0:
        return np.zeros((0, 3))
    pts, _ = trimesh.sample.sample_surface(mesh, n, seed=seed)
    return np.asarray(pts)


def mesh_chamfer_fscore(pred_mesh, gt_mesh, threshold: float, n_points: int = 100_000,
                        seed: int = 0) -> dict[str, float]:
    """Chamfer-L1 / F-score between two trimesh meshes from ``n_points`` surface samples each."""
    return chamfer_fscore(sample_surface(pred_mesh, n_points, seed), sample_surface(gt_mesh, n_points, seed + 1),
                          threshold)
