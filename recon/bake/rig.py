"""A skeleton with linear-blend skin weights and a keyframed animation: what a rigged asset carries.

Joints are given by their global (model-space) rigid transforms: ``bind_matrices`` in the rest
pose the mesh's positions are in, ``pose_matrices`` at each animation key. A vertex moves by the
weighted blend of its joints' skinning matrices ``pose @ inv(bind)`` (linear blend skinning,
what glTF viewers do). The glb writer stores each joint's transform relative to its parent
(``bind_local`` for the nodes, ``local_transforms`` for the animation), quaternions as x, y, z, w.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.spatial.transform import Rotation

RIGID_TOL = 1e-4  # max |R^T R - I|, |det R - 1| and |last row - (0, 0, 0, 1)| of a rigid matrix
WEIGHT_TOL = 1e-3  # max |row sum - 1| of the skin weights


def _check_rigid(name: str, m: np.ndarray) -> None:
    """ValueError unless every 4x4 in ``m`` (..., 4, 4) is a rotation + translation."""
    R = m[..., :3, :3]
    ortho = np.abs(np.swapaxes(R, -1, -2) @ R - np.eye(3)).max(initial=0.0)
    det = np.abs(np.linalg.det(R) - 1).max(initial=0.0)
    row = np.abs(m[..., 3, :] - [0, 0, 0, 1]).max(initial=0.0)
    if max(ortho, det, row) > RIGID_TOL:
        raise ValueError(f"{name} must be rigid (rotation + translation): |R^T R - I| = {ortho:.2g}, "
                         f"|det R - 1| = {det:.2g}, |last row - (0,0,0,1)| = {row:.2g} (tolerance {RIGID_TOL})")


def _relative(globals_: np.ndarray, parents: np.ndarray) -> np.ndarray:
    """(..., J, 4, 4) each joint's transform relative to its parent's global (root: to the model origin)."""
    par = np.where(parents < 0, 0, parents)
    parent_g = np.where((parents < 0)[:, None, None], np.eye(4), globals_[..., par, :, :])
    return np.linalg.inv(parent_g) @ globals_


def _trs(local: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(translations (..., 3), unit quaternions (..., 4) x, y, z, w) of rigid 4x4s (..., 4, 4)."""
    shape = local.shape[:-2]
    q = Rotation.from_matrix(local[..., :3, :3].reshape(-1, 3, 3)).as_quat().reshape(*shape, 4)
    return local[..., :3, 3].copy(), q


def compose(parents: np.ndarray, translations: np.ndarray, rotations: np.ndarray) -> np.ndarray:
    """(..., J, 4, 4) joint globals from local translations (..., J, 3) and x, y, z, w quaternions
    (..., J, 4) relative to the parents (parents before children): the inverse of ``_relative``."""
    local = np.zeros((*translations.shape[:-1], 4, 4))
    local[..., :3, :3] = Rotation.from_quat(rotations.reshape(-1, 4)).as_matrix().reshape(*rotations.shape[:-1], 3, 3)
    local[..., :3, 3] = translations
    local[..., 3, 3] = 1
    out = local.copy()
    for j, p in enumerate(parents):
        if p >= 0:
            out[..., j, :, :] = out[..., p, :, :] @ local[..., j, :, :]
    return out


def sparse_influences(dense: np.ndarray, k: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest of dense skin weights (V, J) per vertex: (joints (V, k) int64, weights (V, k)
    float32 rows renormalised to 1). With fewer than ``k`` joints the extra slots are joint 0, weight 0."""
    dense = np.clip(np.asarray(dense, np.float64), 0, None)
    if dense.shape[1] < k:
        dense = np.pad(dense, ((0, 0), (0, k - dense.shape[1])))
    idx = np.argsort(-dense, axis=1, kind="stable")[:, :k]
    w = np.take_along_axis(dense, idx, 1)
    s = w.sum(1, keepdims=True)
    if np.any(s <= 0):
        raise ValueError(f"{int(np.sum(s <= 0))} vertices have no positive skin weight")
    w = w / s
    idx = np.where(w > 0, idx, 0)
    return idx.astype(np.int64), w.astype(np.float32)


@dataclass(frozen=True, eq=False)
class Rig:
    """A skeleton with linear-blend skin weights and a keyframed animation, in the asset's frame.

    joint_names: J names. parents: (J,) int64, -1 for the root (joint 0, the only root), every
    parent index smaller than its child's. bind_matrices: (J, 4, 4) float64 rigid joint globals in
    the rest pose. joints / weights: (V, 4) int64 joint of each influence / float32 weights >= 0,
    rows summing to 1 (unused slots weight 0). times: (T,) float64 seconds >= 0, strictly increasing.
    pose_matrices: (T, J, 4, 4) float64 rigid joint globals at each key. frame_indices: (T,) source
    video frame of each key (metadata) or None.
    """

    joint_names: tuple[str, ...]
    parents: np.ndarray
    bind_matrices: np.ndarray
    joints: np.ndarray
    weights: np.ndarray
    times: np.ndarray
    pose_matrices: np.ndarray
    frame_indices: np.ndarray | None = None

    def __post_init__(self):
        set_ = lambda name, v: object.__setattr__(self, name, v)  # noqa: E731 (frozen: normalise dtypes)
        set_("joint_names", tuple(str(n) for n in self.joint_names))
        for name, dt in (("parents", np.int64), ("bind_matrices", np.float64), ("joints", np.int64),
                         ("weights", np.float32), ("times", np.float64), ("pose_matrices", np.float64)):
            set_(name, np.asarray(getattr(self, name), dt))
        J, T, V = len(self.joint_names), len(self.times), len(self.joints)
        for name, shape in (("parents", (J,)), ("bind_matrices", (J, 4, 4)), ("joints", (V, 4)),
                            ("weights", (V, 4)), ("times", (T,)), ("pose_matrices", (T, J, 4, 4))):
            if getattr(self, name).shape != shape:
                raise ValueError(f"{name} must have shape {shape}, got {getattr(self, name).shape}")
        if J == 0 or T == 0:
            raise ValueError(f"a rig needs at least one joint and one key, got {J} joints, {T} keys")
        if self.frame_indices is not None:
            set_("frame_indices", np.asarray(self.frame_indices, np.int64))
            if self.frame_indices.shape != (T,):
                raise ValueError(f"frame_indices must have shape {(T,)}, got {self.frame_indices.shape}")
        p = self.parents
        if p[0] != -1 or np.any(p[1:] < 0) or np.any(p[1:] >= np.arange(1, J)):
            raise ValueError(f"parents must be -1 for joint 0 (the only root) and smaller than the child's "
                             f"index for the others, got {p.tolist()}")
        if V and (self.joints.min() < 0 or self.joints.max() >= J):
            raise ValueError(f"joints index out of range [0, {J})")
        if np.any(self.weights < 0) or not np.all(np.isfinite(self.weights)):
            raise ValueError("weights must be finite and >= 0")
        err = np.abs(self.weights.sum(1, dtype=np.float64) - 1).max(initial=0.0)
        if err > WEIGHT_TOL:
            raise ValueError(f"weight rows must sum to 1 (off by up to {err:.3g}, tolerance {WEIGHT_TOL})")
        used = np.where(self.weights > 0, self.joints, -1 - np.arange(4))  # unused slots never collide
        if np.any(np.sort(used, 1)[:, 1:] == np.sort(used, 1)[:, :-1]):
            raise ValueError("a vertex names the same joint twice with non-zero weights")
        if np.any(np.diff(self.times) <= 0) or self.times[0] < 0:
            raise ValueError("times must be >= 0 and strictly increasing")
        _check_rigid("bind_matrices", self.bind_matrices)
        _check_rigid("pose_matrices", self.pose_matrices)

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def num_keys(self) -> int:
        return len(self.times)

    def skinning_matrices(self, k: int) -> np.ndarray:
        """(J, 4, 4) ``pose[k] @ inv(bind)``: moves rest-pose points with each joint to key ``k``."""
        return self.pose_matrices[k] @ np.linalg.inv(self.bind_matrices)

    def _blended(self, k: int) -> np.ndarray:
        """(V, 4, 4) each vertex's weighted blend of its joints' skinning matrices at key ``k``."""
        return np.einsum("vi,vijk->vjk", self.weights.astype(np.float64), self.skinning_matrices(k)[self.joints])

    def pose(self, positions: np.ndarray, k: int) -> np.ndarray:
        """(V, 3) float32 rest-pose ``positions`` (V, 3) moved to key ``k`` by linear blend skinning."""
        M = self._blended(k)
        return (np.einsum("vij,vj->vi", M[:, :3, :3], np.asarray(positions, np.float64)) + M[:, :3, 3]
                ).astype(np.float32)

    def posed_directions(self, directions: np.ndarray, k: int) -> np.ndarray:
        """(V, 3) float32 unit rest-pose directions (normals, tangents) (V, 3) turned by the blended
        rotations at key ``k`` and renormalised (the usual LBS approximation)."""
        d = np.einsum("vij,vj->vi", self._blended(k)[:, :3, :3], np.asarray(directions, np.float64))
        return (d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    def local_transforms(self) -> tuple[np.ndarray, np.ndarray]:
        """(translations (T, J, 3), rotations (T, J, 4) x, y, z, w) of each joint relative to its parent
        at each key (the root's: to the model origin); quaternion signs chosen so consecutive keys of a
        joint have a non-negative dot product (linear interpolation takes the short way)."""
        t, q = _trs(_relative(self.pose_matrices, self.parents))
        for i in range(1, len(q)):
            q[i] *= np.where(np.sum(q[i] * q[i - 1], -1) < 0, -1.0, 1.0)[:, None]
        return t, q

    def bind_local(self) -> tuple[np.ndarray, np.ndarray]:
        """(translations (J, 3), rotations (J, 4) x, y, z, w) of each joint relative to its parent in the
        rest pose: the joint nodes' TRS, whose composition down the hierarchy is ``bind_matrices``."""
        return _trs(_relative(self.bind_matrices, self.parents))

    def transformed(self, A: np.ndarray) -> "Rig":
        """The rig moved by a 4x4 similarity ``A`` (rotation, uniform scale s, translation): joint globals
        become ``A @ G @ diag(1/s, 1/s, 1/s, 1)`` (still rigid), so skinned points move by ``A``."""
        A = np.asarray(A, np.float64)
        s = np.cbrt(np.linalg.det(A[:3, :3]))
        unscale = np.diag([1 / s, 1 / s, 1 / s, 1.0])
        return replace(self, bind_matrices=A @ self.bind_matrices @ unscale,
                       pose_matrices=A @ self.pose_matrices @ unscale)

    def subset_vertices(self, index: np.ndarray) -> "Rig":
        """The rig for the vertices ``index`` (an integer index or boolean mask over V)."""
        return replace(self, joints=self.joints[index], weights=self.weights[index])
