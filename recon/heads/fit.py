"""Fit the ICT head model to face observations: one photo or the frames of a video.

Unknowns: identity (100, shared), expression (57 per frame, in [0, 1]) and the head's pose in each
frame's camera (axis-angle rotation, translation; the head frame is the model's: +Y up, facing +Z,
metres). Cameras are pinhole with known intrinsics (a photo without them gets ``default_focal``).

Data: MediaPipe's 468 face points (the iris points follow the gaze and are left out) against the same
points on the model where MediaPipe puts them at the frame's yaw (``landmarks.mediapipe_embeddings``:
the face's outline points slide round it as it turns; the yaw comes from an initial PnP), a robust (Huber) reprojection error in units of
the face's size, each point weighted by how close MediaPipe lands to it on synthetic heads (1 / noise²).
Priors: identity ~ N(0, 1) per mode, expression small (L1: a face uses few shapes), and between
consecutive video frames the expression and pose change smoothly. Initial poses come from PnP
(OpenCV) against the neutral head; then L-BFGS-B (scipy) with the expression bounded to [0, 1].
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from kornia.geometry.conversions import axis_angle_to_rotation_matrix
from scipy.optimize import minimize
from torch import Tensor

from .landmarks import mediapipe_embeddings, view_yaw
from .model import HeadModel
from .observe import FACE_POINTS, FaceObservation

NOISE_FLOOR = 0.003  # face sizes: no landmark is trusted more than this
T_UNIT = 0.1  # translations are optimised in decimetres (their gradients then match the rotations')


def default_focal(width: int, height: int, fov_deg: float = 40.0) -> float:
    """A photo without intrinsics: a normal lens (``fov_deg`` across the longer side)."""
    return 0.5 * max(width, height) / math.tan(math.radians(fov_deg) / 2)


@dataclass
class HeadFitConfig:
    steps: int = 1000  # L-BFGS-B iterations at most
    data_weight: float = 0.2  # the landmarks' errors are correlated: each counts for less than one datum
    identity_prior: float = 1.0  # weight of the N(0, 1) prior |identity|² / 2
    expression_l1: float = 1.0  # weight of sum |expression| (per frame)
    smooth_expression: float = 10.0  # video: |expr_k - expr_k-1|²
    smooth_pose: float = 10.0  # video: |rot_k - rot_k-1|² + |t_k - t_k-1|² / (0.1 m)²
    huber: float = 2.0  # in noise sigmas


@dataclass(frozen=True)
class HeadFit:
    """identity (100,); expression (N, 57); rotation (N, 3, 3) and translation (N, 3): head -> camera k
    (OpenCV camera axes); frames: (N,) indices of the frames fitted; residual_px: (N,) mean landmark
    reprojection error in pixels; residual_face: the same divided by each face's size."""

    identity: np.ndarray
    expression: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray
    frames: np.ndarray
    residual_px: np.ndarray
    residual_face: np.ndarray

    def head_to_camera(self, k: int) -> np.ndarray:
        T = np.eye(4)
        T[:3, :3], T[:3, 3] = self.rotation[k], self.translation[k]
        return T


def _pnp(points3: np.ndarray, points2: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ok, rvec, tvec = cv2.solvePnP(points3.astype(np.float64), points2.astype(np.float64), K, None,
                                  flags=cv2.SOLVEPNP_EPNP)
    ok, rvec, tvec = cv2.solvePnP(points3.astype(np.float64), points2.astype(np.float64), K, None, rvec, tvec,
                                  useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE)
    return rvec.reshape(3), tvec.reshape(3)


class LandmarkObjective:
    """The landmark fit's energy (module docstring) over identity (100,), expression (E, 57) (E = 1: one
    shared by every frame), rotation (N, 3) axis-angle and translation (N, 3) metres, head -> camera k.
    Built once per fit: the initial poses (PnP, ``rotation0`` / ``translation0``) and each frame's two
    calibrated embeddings nearest its yaw are fixed here."""

    def __init__(self, model: HeadModel, observations: list[FaceObservation], intrinsics: np.ndarray,
                 cfg: HeadFitConfig, frames: np.ndarray, shared_expression: bool):
        self.cfg, self.n, self.shared = cfg, len(observations), shared_expression
        n = self.n
        emb = mediapipe_embeddings()
        sel = np.arange(FACE_POINTS)
        self.obs = torch.as_tensor(np.stack([o.landmarks[sel, :2] for o in observations]), dtype=torch.float64)
        self.size = torch.as_tensor([o.size for o in observations], dtype=torch.float64)
        self.intr = torch.as_tensor(np.asarray(intrinsics, np.float64).reshape(n, 4))
        self.consecutive = torch.as_tensor(np.diff(frames) == 1)

        # initial poses: PnP against the neutral head's frontal landmarks, then again with the landmarks where
        # MediaPipe puts them at the yaw found; that yaw picks each frame's two nearest calibrated embeddings
        # and their weights for the rest of the fit
        v0 = model.neutral.double()
        front = int(np.argmin(np.abs(emb.yaw)))
        rv, tv, pairs, W = [], [], [], []
        for k in range(n):
            fx, fy, cx, cy = intrinsics[k]
            K = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1.0]])
            r, t = _pnp(emb.at(front).at(v0, model.faces)[sel].numpy(), self.obs[k].numpy(), K)
            yaw = view_yaw(np.concatenate([cv2.Rodrigues(r)[0], t[:, None]], 1))
            w = emb.weights(yaw)[0]
            b = np.argsort(-w)[:2]  # linear interpolation: at most two bins weigh
            r, t = _pnp(emb.points(v0, model.faces, yaw)[sel].numpy(), self.obs[k].numpy(), K)
            rv.append(r)
            tv.append(t)
            pairs.append(b)
            W.append(w[b])
        self.rotation0, self.translation0 = np.array(rv), np.array(tv)
        pairs, self.W = np.array(pairs), torch.as_tensor(np.array(W))  # (N, 2) bins and their weights
        corner = model.faces[torch.as_tensor(emb.face[pairs][:, :, sel])]  # (N, 2, P, 3) vertex ids
        vids, inv = torch.unique(corner.reshape(-1), return_inverse=True)
        self.inv = inv.reshape(n, -1)  # (N, 2 * P * 3)
        self.bary = torch.as_tensor(emb.bary[pairs][:, :, sel], dtype=torch.float64)  # (N, 2, P, 3)
        self.neutral = model.neutral[vids].double()
        self.ibasis = model.identity_basis[:, vids].double()
        self.ebasis = model.expression_basis[:, vids].double()
        noise = torch.as_tensor(emb.noise[pairs][:, :, sel], dtype=torch.float64)  # (N, 2, P)
        self.sigma = torch.sqrt((self.W[:, :, None] * noise).sum(1) ** 2 + NOISE_FLOOR ** 2)  # (N, P)

    def points(self, identity: Tensor, expression: Tensor) -> Tensor:
        """(N, P, 3): each frame's landmarks on the head (expression (N or 1, 57))."""
        n = self.n
        v = self.neutral + torch.einsum("k,kvc->vc", identity, self.ibasis) + \
            torch.einsum("ek,kvc->evc", expression, self.ebasis)
        g = v.expand(n, -1, -1)[torch.arange(n)[:, None], self.inv].reshape(n, 2, -1, 3, 3)  # corners
        return torch.einsum("nb,nbpc->npc", self.W, (g * self.bary[..., None]).sum(-2))

    def residual(self, identity: Tensor, expression: Tensor, rotation: Tensor, translation: Tensor) -> Tensor:
        """(N, P, 2) projected model landmarks minus the detections, pixels."""
        R = axis_angle_to_rotation_matrix(rotation)
        pc = torch.einsum("nij,npj->npi", R, self.points(identity, expression)) + translation[:, None]
        z = pc[..., 2].clamp_min(1e-3)
        intr = self.intr
        uv = torch.stack([intr[:, None, 0] * pc[..., 0] / z + intr[:, None, 2],
                          intr[:, None, 1] * pc[..., 1] / z + intr[:, None, 3]], -1)
        return uv - self.obs

    def energy(self, identity: Tensor, expression: Tensor, rotation: Tensor, translation: Tensor) -> Tensor:
        """The landmarks' robust error plus the priors and the video's smoothness (a scalar)."""
        cfg, n = self.cfg, self.n
        d = self.residual(identity, expression, rotation, translation)
        e = d.norm(dim=-1) / self.size[:, None] / self.sigma  # (N, P) in noise sigmas
        hub = torch.where(e < cfg.huber, 0.5 * e ** 2, cfg.huber * (e - 0.5 * cfg.huber))
        loss = cfg.data_weight * hub.sum(1).mean()  # per frame
        loss = loss + (cfg.identity_prior * 0.5 * (identity ** 2).sum() + cfg.expression_l1 * expression.sum()) / n
        c = self.consecutive
        if n > 1 and c.any():
            if not self.shared:
                loss = loss + cfg.smooth_expression * ((expression[1:] - expression[:-1]) ** 2).sum(1)[c].mean()
            dp = ((rotation[1:] - rotation[:-1]) ** 2).sum(1) + ((translation[1:] - translation[:-1]) ** 2).sum(1) / 0.01
            loss = loss + cfg.smooth_pose * dp[c].mean()
        return loss

    def result(self, identity: Tensor, expression: Tensor, rotation: Tensor, translation: Tensor,
               frames: np.ndarray) -> HeadFit:
        with torch.no_grad():
            px = self.residual(identity, expression, rotation, translation).norm(dim=-1).mean(1)
            R = axis_angle_to_rotation_matrix(rotation)
        ex = expression.expand(self.n, -1) if self.shared else expression
        return HeadFit(identity.detach().numpy().copy(), ex.detach().numpy().copy(), R.numpy(),
                       translation.detach().numpy().copy(), frames, px.numpy(), (px / self.size).numpy())


def fit_head(model: HeadModel, observations: list[FaceObservation], intrinsics: np.ndarray,
             cfg: HeadFitConfig | None = None, frames: np.ndarray | None = None,
             shared_expression: bool = False, progress=None) -> HeadFit:
    """Fit ``model`` to one observation per frame.

    intrinsics: (N, 4) fx, fy, cx, cy per observation (pixels). frames: the frames' indices (default
    0..N-1; consecutive indices are smoothed together). shared_expression: one expression for all frames
    (a still face). progress: an optional callable(step, steps)."""
    cfg = cfg or HeadFitConfig()
    n = len(observations)
    frames = np.arange(n) if frames is None else np.asarray(frames)
    obj = LandmarkObjective(model, observations, intrinsics, cfg, frames, shared_expression)
    E = 1 if shared_expression else n
    sizes = [model.num_identity, E * model.num_expression, 3 * n, 3 * n]
    x0 = np.concatenate([np.zeros(sizes[0] + sizes[1]), obj.rotation0.ravel(), obj.translation0.ravel() / T_UNIT])
    bounds = [(None, None)] * sizes[0] + [(0.0, 1.0)] * sizes[1] + [(None, None)] * (sizes[2] + sizes[3])

    def unpack(x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        ident, expr, rot, trans = torch.split(x, sizes)
        return ident, expr.reshape(E, -1), rot.reshape(n, 3), trans.reshape(n, 3) * T_UNIT

    def objective(xn: np.ndarray) -> tuple[float, np.ndarray]:
        x = torch.tensor(xn, requires_grad=True)
        loss = obj.energy(*unpack(x))
        loss.backward()
        if progress is not None:
            progress(min(objective.calls, cfg.steps), cfg.steps)
        objective.calls += 1
        return float(loss.detach()), x.grad.numpy()

    objective.calls = 0
    res = minimize(objective, x0, jac=True, method="L-BFGS-B", bounds=bounds,
                   options={"maxiter": cfg.steps, "maxfun": 2 * cfg.steps})
    return obj.result(*unpack(torch.tensor(res.x)), frames)
