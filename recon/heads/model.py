"""The morphable head prior: ICT-FaceKit's light model (MIT), shipped in ``recon/heads/data``.

``scripts/make_head_model.py`` builds ``ict_head.npz`` from the dataset: skin (face, head, neck),
eye and mouth sockets with 100 identity modes and 57 ARKit-named expression shapes, plus the two
eyeballs as rigid parts. Here it is in metres, +Y up, the face looking down +Z (ICT's frame, cm / 100).

    vertices = neutral + identity @ identity_basis + expression @ expression_basis

Identity coefficients are PCA weights (the prior is a unit normal); expression coefficients are
blendshape weights in [0, 1].
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

DATA = Path(__file__).resolve().parent / "data" / "ict_head.npz"
CM = 0.01  # the model's centimetres in metres
# Multi-PIE 68: the eye corners that define the inter-ocular distance (outer corners, 0-based)
OUTER_EYE_CORNERS = (36, 45)
# the Multi-PIE points that move least with expression (ICT's rigid landmarks): align heads on these
FACE_VERTICES = 9409  # ICT-FaceKit's face region: vertices 0..9408 (the skin in front of the ears and hairline)
RIGID68 = (0, 36, 39, 42, 45, 16, 28, 31, 35)


@dataclass(frozen=True, eq=False)
class HeadModel:
    """neutral: (V, 3) float32 metres; faces: (F, 3) int64 triangles, counter-clockwise from outside;
    uvs: (T, 2) float32 UV coordinates (ICT's UDIM layout: tile k spans u in [k, k+1], v up) indexed by
    face_uvs (F, 3); identity_basis: (100, V, 3); expression_basis: (57, V, 3); expression_names (57,);
    landmarks68: (68,) vertex ids of the Multi-PIE points; skin_vertices: the first ``skin_vertices``
    are the visible skin (face, head, neck); then the sockets up to ``soft_vertices``; then the eyeballs.
    """

    neutral: Tensor
    faces: Tensor
    uvs: np.ndarray
    face_uvs: np.ndarray
    identity_basis: Tensor
    expression_basis: Tensor
    expression_names: tuple[str, ...]
    landmarks68: Tensor
    skin_vertices: int
    soft_vertices: int

    @property
    def num_identity(self) -> int:
        return len(self.identity_basis)

    @property
    def num_expression(self) -> int:
        return len(self.expression_basis)

    @property
    def num_vertices(self) -> int:
        return len(self.neutral)

    def vertices(self, identity: Tensor | None = None, expression: Tensor | None = None) -> Tensor:
        """(..., V, 3) vertices for identity (..., 100) and expression (..., 57) coefficients (None = 0)."""
        v = self.neutral
        if identity is not None:
            v = v + torch.einsum("...k,kvc->...vc", identity.to(v.dtype), self.identity_basis)
        if expression is not None:
            v = v + torch.einsum("...k,kvc->...vc", expression.to(v.dtype), self.expression_basis)
        return v

    def skin_faces(self) -> Tensor:
        """(F_skin, 3) the faces whose vertices are all skin."""
        return self.faces[(self.faces < self.skin_vertices).all(1)]


def _dequantise(q: np.ndarray, scale: np.ndarray, eyes: np.ndarray, eye_sizes: np.ndarray) -> Tensor:
    soft = q.astype(np.float32) * scale[:, None, None]
    eye = [np.repeat(eyes[:, e:e + 1], n, axis=1) for e, n in enumerate(eye_sizes)]
    return torch.from_numpy(np.concatenate([soft, *eye], 1) * CM)


@lru_cache(maxsize=1)
def load_head_model() -> HeadModel:
    """The shipped ICT head model (cached)."""
    d = np.load(DATA)
    sizes = d["eye_vertices"]
    return HeadModel(
        neutral=torch.from_numpy(d["neutral"] * CM), faces=torch.from_numpy(d["faces"].astype(np.int64)),
        uvs=d["uvs"], face_uvs=d["face_uvs"].astype(np.int64),
        identity_basis=_dequantise(d["identity_q"], d["identity_scale"], d["identity_eyes"], sizes),
        expression_basis=_dequantise(d["expression_q"], d["expression_scale"], d["expression_eyes"], sizes),
        expression_names=tuple(str(n) for n in d["expression_names"]),
        landmarks68=torch.from_numpy(d["landmarks68"]), skin_vertices=int(d["skin_vertices"]),
        soft_vertices=int(d["soft_vertices"]))


def interocular(points68: Tensor) -> Tensor:
    """(...,) distance between the outer eye corners of (..., 68, D) Multi-PIE landmarks."""
    return (points68[..., OUTER_EYE_CORNERS[0], :] - points68[..., OUTER_EYE_CORNERS[1], :]).norm(dim=-1)
