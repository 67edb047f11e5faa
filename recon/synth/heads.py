"""Synthetic heads with known truth: ICT-FaceKit shapes with random identity and expression, painted
skin, lips, brows, hair and eyes, filmed as single photos or short turning videos.

The ground truth a head carries: its coefficients, its vertices (so the 68 Multi-PIE landmarks and
any dense point on the topology) and the cameras. Colour is per vertex (sRGB), smooth skin with a
little mottling, the face features placed from the model's own 68 landmarks on the neutral face, so
every identity and expression carries them along.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..core.types import Cameras
from ..heads.model import HeadModel, load_head_model
from ..render.mesh_render import render_views
from .cameras import look_at
from .mesh import Mesh

SKIN_TONES = np.array([[0.96, 0.80, 0.69], [0.90, 0.70, 0.56], [0.80, 0.60, 0.46], [0.65, 0.45, 0.32],
                       [0.48, 0.32, 0.22], [0.36, 0.24, 0.17]])
HAIR = np.array([[0.10, 0.07, 0.05], [0.30, 0.20, 0.12], [0.55, 0.40, 0.22], [0.20, 0.18, 0.17]])
IRIS = np.array([[0.25, 0.15, 0.08], [0.20, 0.35, 0.55], [0.25, 0.40, 0.25], [0.12, 0.08, 0.05]])


def _polyline_distance(points: np.ndarray, line: np.ndarray) -> np.ndarray:
    """(N,) distance from points (N, 3) to the polyline through ``line`` (K, 3)."""
    a, b = line[:-1], line[1:]
    ab = b - a
    t = np.clip(np.einsum("nkc,kc->nk", points[:, None] - a[None], ab) / (ab * ab).sum(1), 0, 1)
    return np.linalg.norm(points[:, None] - (a[None] + t[..., None] * ab[None]), axis=2).min(1)


def paint_head(model: HeadModel, rng: np.random.Generator) -> np.ndarray:
    """(V, 3) float32 sRGB vertex colours for the model's topology (placed on its neutral face)."""
    v = model.neutral.double().numpy()
    lm = v[model.landmarks68.numpy()]
    skin = SKIN_TONES[rng.integers(len(SKIN_TONES))] * rng.uniform(0.93, 1.05)
    # low-frequency mottling so the skin is not flat
    k = rng.normal(size=(6, 3)) * 25.0
    mottle = 0.04 * np.sin(v @ k.T + rng.uniform(0, 2 * np.pi, 6)).mean(1, keepdims=True)
    col = np.clip(skin * (1.0 + mottle), 0, 1)
    # lips: near the outer lip contour's filled region (landmarks 48..59), redder and darker
    lips = np.r_[lm[48:60], lm[48:49]]
    centre = lm[48:60].mean(0)
    inside = _polyline_distance(v, lips) < 0.004
    rad = np.linalg.norm((v - centre)[:, :2], axis=1)
    inside |= (rad < 0.8 * np.linalg.norm((lips - centre)[:, :2], axis=1).min()) & (v[:, 2] > centre[2] - 0.015)
    col[inside] = col[inside] * np.array([0.85, 0.55, 0.55])
    # brows: dark bands along landmarks 17..21 and 22..26
    hair = HAIR[rng.integers(len(HAIR))]
    for a, b in ((17, 22), (22, 27)):
        d = _polyline_distance(v, lm[a:b])
        w = np.clip(1.0 - d / 0.0045, 0, 1)[:, None] * (v[:, 2:3] > lm[a:b, 2].min() - 0.02)
        col = col * (1 - 0.85 * w) + hair * 0.85 * w
    # eyelid lines around the eyes (36..41, 42..47)
    for a in (36, 42):
        d = _polyline_distance(v, np.r_[lm[a:a + 6], lm[a:a + 1]])
        w = np.clip(1.0 - d / 0.0015, 0, 1)[:, None] * 0.6
        col = col * (1 - w) + hair * w
    # hair: the scalp above the forehead and at the back of the head
    brow_y = lm[17:27, 1].max()
    top = (v[:, 1] > brow_y + 0.035 + 0.02 * np.clip(v[:, 2] - lm[27, 2] + 0.04, 0, None) * 10) \
        | ((v[:, 2] < lm[0, 2] - 0.03) & (v[:, 1] > lm[0, 1] - 0.02))
    skin_only = np.arange(len(v)) < model.skin_vertices
    col[top & skin_only] = hair * rng.uniform(0.9, 1.1)
    # sockets: dark pink; eyeballs: white with an iris and a pupil on the front
    col[model.skin_vertices:model.soft_vertices] = np.array([0.45, 0.2, 0.2])
    eyes = np.arange(len(v)) >= model.soft_vertices
    col[eyes] = 0.92
    iris = IRIS[rng.integers(len(IRIS))]
    half = model.soft_vertices + (len(v) - model.soft_vertices) // 2
    for sl in (slice(model.soft_vertices, half), slice(half, len(v))):
        e = v[sl]
        depth = e[:, 2].max() - e[:, 2]  # 0 at the front of the ball
        col[sl][depth < 0.0022] = iris
        col[sl][depth < 0.0006] = 0.03
    return col.astype(np.float32)


@dataclass(frozen=True, eq=False)
class SyntheticHead:
    """identity (100,), expression (57,) coefficients; vertices (V, 3) metres in the world (the model's
    frame: +Y up, facing +Z); colors (V, 3) sRGB."""

    identity: np.ndarray
    expression: np.ndarray
    vertices: np.ndarray
    colors: np.ndarray
    seed: int

    def mesh(self, faces: np.ndarray) -> Mesh:
        v = self.vertices.astype(np.float64)
        c = v.mean(0)
        return Mesh(v, faces, None, None, self.colors, None, c, float(np.linalg.norm(v - c, axis=1).max()))


def random_expression(model: HeadModel, rng: np.random.Generator, active: int = 6) -> np.ndarray:
    """(57,) weights: ``active`` random shapes at U(0.2, 0.9), the rest 0."""
    w = np.zeros(model.num_expression)
    w[rng.choice(model.num_expression, active, replace=False)] = rng.uniform(0.2, 0.9, active)
    return w


def random_head(seed: int, model: HeadModel | None = None, identity_scale: float = 1.0,
                expression_active: int = 6) -> SyntheticHead:
    """A head with identity ~ N(0, identity_scale²) per mode and a random sparse expression."""
    model = model or load_head_model()
    rng = np.random.default_rng([seed, 14])
    ident = rng.normal(size=model.num_identity) * identity_scale
    expr = random_expression(model, rng, expression_active)
    v = model.vertices(torch.as_tensor(ident, dtype=torch.float32),
                       torch.as_tensor(expr, dtype=torch.float32)).double().numpy()
    return SyntheticHead(ident, expr, v, paint_head(model, rng), seed)


def head_cameras(yaw_deg, pitch_deg, size: int, distance: float = 0.6, fov_deg: float = 30.0,
                 target=(0.0, 0.01, 0.02)) -> Cameras:
    """Cameras at ``distance`` metres from ``target``, at the given yaw (+ = the head's left seen) and
    pitch (+ = from above) angles in degrees, square ``size`` pixels, looking at the face."""
    yaw, pitch = np.radians(np.atleast_1d(yaw_deg)), np.radians(np.broadcast_to(pitch_deg, np.shape(np.atleast_1d(yaw_deg))))
    d = np.stack([np.sin(yaw) * np.cos(pitch), np.sin(pitch), np.cos(yaw) * np.cos(pitch)], 1)
    eyes = np.asarray(target)[None] + distance * d
    f = 0.5 * size / math.tan(math.radians(fov_deg) / 2)
    return Cameras.create(look_at(eyes, np.asarray(target, np.float64), np.array([0.0, 1.0, 0.0])),
                          f, f, size / 2, size / 2, size, size)


def render_head(head: SyntheticHead, cameras: Cameras, model: HeadModel | None = None,
                background=(0.55, 0.6, 0.65)) -> list[dict[str, np.ndarray]]:
    """Lambert-shaded renders (``recon.render.mesh_render.render_views``) of the head."""
    model = model or load_head_model()
    return render_views(head.mesh(model.faces.numpy()), cameras, shading="lambert", background=background,
                        light_dir=(-0.3, -0.5, -1.0), ambient=0.45)
