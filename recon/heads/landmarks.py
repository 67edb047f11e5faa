"""Landmarks defined once on the head topology: surface points as (face id, barycentrics), so they follow
any identity and expression and project into any render.

Sets an asset carries (``landmark_sets``): ``multipie68`` (the 68 Multi-PIE points: ICT's landmark
vertices), ``dense`` (``DENSE_POINTS`` points spread evenly over the skin of the face and head by
farthest-point sampling on the neutral head, deterministic) and ``mediapipe478`` (where MediaPipe's face
mesh points sit on a frontal face: ``scripts/make_landmark_embedding.py``; ``mediapipe_embeddings`` has
them at other yaws too, where the outline's points have slid round the face).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch import Tensor

from .model import HeadModel

EMBEDDING = Path(__file__).resolve().parent / "data" / "mediapipe_embedding.npz"
DENSE_POINTS = 1000


@dataclass(frozen=True, eq=False)
class SurfacePoints:
    """face: (N,) int64 triangle ids; bary: (N, 3) barycentrics (weights of the triangle's corners)."""

    face: np.ndarray
    bary: np.ndarray

    def __len__(self) -> int:
        return len(self.face)

    def at(self, vertices: Tensor, faces: Tensor) -> Tensor:
        """(..., N, 3) the points on a mesh with vertices (..., V, 3) and these faces (F, 3)."""
        corners = faces[torch.as_tensor(self.face)]  # (N, 3)
        b = torch.as_tensor(self.bary, dtype=vertices.dtype)
        return (vertices[..., corners, :] * b[..., None]).sum(-2)

    def to_json(self) -> list[dict]:
        return [{"face": int(f), "bary": [round(float(x), 6) for x in b]} for f, b in zip(self.face, self.bary)]

    @staticmethod
    def of_vertices(vertex_ids: np.ndarray, faces: np.ndarray) -> "SurfacePoints":
        """Points at mesh vertices: each as a corner of one triangle that uses it."""
        face_of = np.full(faces.max() + 1, -1)
        corner_of = np.zeros(faces.max() + 1, np.int64)
        for c in range(3):
            face_of[faces[:, c]] = np.arange(len(faces))
            corner_of[faces[:, c]] = c
        ids = np.asarray(vertex_ids)
        bary = np.zeros((len(ids), 3), np.float32)
        bary[np.arange(len(ids)), corner_of[ids]] = 1.0
        return SurfacePoints(face_of[ids], bary)


def _closest_on_triangles(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """(N, 3) barycentrics of the closest point to each p on triangle (a, b, c) (Ericson, Real-Time
    Collision Detection 5.1.5), all (N, 3) arrays."""
    ab, ac, ap = b - a, c - a, p - a
    d1, d2 = (ab * ap).sum(1), (ac * ap).sum(1)
    bp, cp = p - b, p - c
    d3, d4 = (ab * bp).sum(1), (ac * bp).sum(1)
    d5, d6 = (ab * cp).sum(1), (ac * cp).sum(1)
    va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2
    out = np.zeros((len(p), 3))
    den = np.where(np.abs(va + vb + vc) > 1e-30, va + vb + vc, 1e-30)
    v, w = vb / den, vc / den
    out[:] = np.stack([1 - v - w, v, w], 1)  # inside the face
    cases = [  # (condition, barycentrics) from the last applied to the first, so the first wins
        ((va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0),
         lambda: (lambda t: np.stack([0 * t, 1 - t, t], 1))((d4 - d3) / np.maximum((d4 - d3) + (d5 - d6), 1e-30))),
        ((vb <= 0) & (d2 >= 0) & (d6 <= 0),
         lambda: (lambda t: np.stack([1 - t, 0 * t, t], 1))(d2 / np.maximum(d2 - d6, 1e-30))),
        ((d6 >= 0) & (d5 <= d6), lambda: np.tile([0.0, 0.0, 1.0], (len(p), 1))),
        ((vc <= 0) & (d1 >= 0) & (d3 <= 0),
         lambda: (lambda t: np.stack([1 - t, t, 0 * t], 1))(d1 / np.maximum(d1 - d3, 1e-30))),
        ((d3 >= 0) & (d4 <= d3), lambda: np.tile([0.0, 1.0, 0.0], (len(p), 1))),
        ((d1 <= 0) & (d2 <= 0), lambda: np.tile([1.0, 0.0, 0.0], (len(p), 1))),
    ]
    for cond, value in cases:
        out = np.where(cond[:, None], value(), out)
    return out


def closest_surface_points(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray,
                           candidates: int = 48) -> SurfacePoints:
    """The closest point on the mesh (vertices (V, 3), faces (F, 3)) to each of ``points`` (N, 3), among the
    ``candidates`` triangles whose centroids are nearest."""
    tri = vertices[faces]
    _, cand = cKDTree(tri.mean(1)).query(points, k=min(candidates, len(faces)))
    n, k = cand.shape
    p = np.repeat(points, k, 0)
    t = tri[cand.reshape(-1)]
    bary = _closest_on_triangles(p, t[:, 0], t[:, 1], t[:, 2])
    q = (bary[:, :, None] * t).sum(1)
    best = np.linalg.norm(q - p, axis=1).reshape(n, k).argmin(1)
    pick = np.arange(n) * k + best
    return SurfacePoints(cand.reshape(-1)[pick].astype(np.int64), bary[pick].astype(np.float32))


@dataclass(frozen=True, eq=False)
class YawEmbedding:
    """MediaPipe's 478 landmarks on the topology at several yaws (``scripts/make_landmark_embedding.py``):
    yaw (B,) degrees (``view_yaw``); face (B, 478) triangle ids; bary (B, 478, 3); noise (B, 478) how far
    MediaPipe's detections of each land from it, RMS image distance in face sizes."""

    yaw: np.ndarray
    face: np.ndarray
    bary: np.ndarray
    noise: np.ndarray

    def at(self, b: int) -> SurfacePoints:
        return SurfacePoints(self.face[b], self.bary[b])

    def weights(self, yaw_deg) -> np.ndarray:
        """(N, B) linear interpolation weights over the calibrated yaws for views at ``yaw_deg`` (N,)
        (clamped to the calibrated range)."""
        y = np.clip(np.atleast_1d(np.asarray(yaw_deg, np.float64)), self.yaw[0], self.yaw[-1])
        eye = np.eye(len(self.yaw))
        return np.stack([np.array([np.interp(v, self.yaw, eye[:, b]) for b in range(len(self.yaw))]) for v in y])

    def points(self, vertices: Tensor, faces: Tensor, yaw_deg: float) -> Tensor:
        """(478, 3): the landmarks on a mesh (vertices (V, 3)) seen at ``yaw_deg``."""
        w = torch.as_tensor(self.weights(yaw_deg)[0], dtype=vertices.dtype)
        return sum(w[b] * self.at(b).at(vertices, faces) for b in range(len(self.yaw)) if w[b] > 0)


def view_yaw(head_to_camera: np.ndarray) -> float:
    """Degrees the head is turned from a camera (head -> camera rotation and translation, (4, 4) or
    (3, 4)): the azimuth of the camera's centre in the head frame, atan2(x, z); 0 frontal, + the head's left
    seen (``recon.synth.heads.head_cameras``' convention)."""
    R, t = np.asarray(head_to_camera)[:3, :3], np.asarray(head_to_camera)[:3, 3]
    c = -R.T @ t
    return float(np.degrees(np.arctan2(c[0], c[2])))


@lru_cache(maxsize=1)
def mediapipe_embeddings() -> YawEmbedding:
    d = np.load(EMBEDDING)
    return YawEmbedding(d["yaw"].astype(np.float64), d["face"], d["bary"], d["noise"])


def mediapipe_embedding() -> tuple[SurfacePoints, np.ndarray]:
    """MediaPipe's 478 landmarks on the topology seen frontally, and their noise (478,) in face sizes."""
    e = mediapipe_embeddings()
    b = int(np.argmin(np.abs(e.yaw)))
    return e.at(b), e.noise[b]


def farthest_points(points: np.ndarray, n: int, start: int = 0) -> np.ndarray:
    """Indices of ``n`` of ``points`` (P, 3) picked by farthest-point sampling from ``start``."""
    chosen = [start]
    dist = np.linalg.norm(points - points[start], axis=1)
    for _ in range(n - 1):
        chosen.append(int(dist.argmax()))
        dist = np.minimum(dist, np.linalg.norm(points - points[chosen[-1]], axis=1))
    return np.array(chosen)


def landmark_sets(model: HeadModel) -> dict[str, SurfacePoints]:
    """The landmark sets every head asset carries (module docstring)."""
    faces = model.faces.numpy()
    skin = model.skin_faces().numpy()
    skin_ids = np.unique(skin)
    v = model.neutral.double().numpy()
    tip = skin_ids[np.argmax(v[skin_ids, 2])]  # start at the nose tip: the same set every time
    dense_v = skin_ids[farthest_points(v[skin_ids], DENSE_POINTS, int(np.flatnonzero(skin_ids == tip)[0]))]
    return {"multipie68": SurfacePoints.of_vertices(model.landmarks68.numpy(), faces),
            "dense": SurfacePoints.of_vertices(dense_v, faces),
            "mediapipe478": mediapipe_embedding()[0]}
