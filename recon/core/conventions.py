"""Camera-convention conversions at the borders of recon (one function per direction).

Inside recon every pose is OpenCV camera-to-world (x right, y down, z forward).
"""
from __future__ import annotations

import numpy as np

# Flips y and z camera axes: OpenGL/Blender (x right, y up, z backward) <-> OpenCV.
_FLIP_YZ = np.diag([1.0, -1.0, -1.0, 1.0])


def opengl_to_opencv(c2w_gl: np.ndarray) -> np.ndarray:
    """(…, 4, 4) OpenGL/Blender camera-to-world -> OpenCV camera-to-world."""
    return np.asarray(c2w_gl, dtype=np.float64) @ _FLIP_YZ


def opencv_to_opengl(c2w_cv: np.ndarray) -> np.ndarray:
    """(…, 4, 4) OpenCV camera-to-world -> OpenGL/Blender camera-to-world."""
    return np.asarray(c2w_cv, dtype=np.float64) @ _FLIP_YZ


def qvec_to_rotmat(qvec: np.ndarray) -> np.ndarray:
    """COLMAP quaternion (w, x, y, z) -> 3x3 rotation matrix."""
    w, x, y, z = np.asarray(qvec, dtype=np.float64) / np.linalg.norm(qvec)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def rotmat_to_qvec(R: np.ndarray) -> np.ndarray:
    """3x3 rotation matrix -> COLMAP quaternion (w, x, y, z) with w >= 0."""
    R = np.asarray(R, dtype=np.float64)
    K = np.array([
        [R[0, 0] - R[1, 1] - R[2, 2], 0, 0, 0],
        [R[1, 0] + R[0, 1], R[1, 1] - R[0, 0] - R[2, 2], 0, 0],
        [R[2, 0] + R[0, 2], R[2, 1] + R[1, 2], R[2, 2] - R[0, 0] - R[1, 1], 0],
        [R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1], R[0, 0] + R[1, 1] + R[2, 2]],
    ]) / 3.0
    vals, vecs = np.linalg.eigh(K)
    q = vecs[[3, 0, 1, 2], np.argmax(vals)]
    return -q if q[0] < 0 else q


def colmap_to_c2w(qvec: np.ndarray, tvec: np.ndarray) -> np.ndarray:
    """COLMAP world-to-camera (qvec, tvec) -> 4x4 OpenCV camera-to-world."""
    w2c = np.eye(4)
    w2c[:3, :3] = qvec_to_rotmat(qvec)
    w2c[:3, 3] = tvec
    return np.linalg.inv(w2c)


def c2w_to_colmap(c2w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """4x4 OpenCV camera-to-world -> COLMAP world-to-camera (qvec, tvec)."""
    w2c = np.linalg.inv(np.asarray(c2w, dtype=np.float64))
    return rotmat_to_qvec(w2c[:3, :3]), w2c[:3, 3].copy()
