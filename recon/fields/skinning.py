"""Linear blend skinning with Gaussian bones (BANMo's neural blend skinning, in a light form).

B bones live in the canonical (rest) space, each with a centre and per-axis extent. A point's
skin weights are a softmax over bones of the negative squared scaled distance to each bone
plus a correction from a small MLP, kept to the ``k`` largest: each minus the (k+1)-th largest,
renormalised, so a bone's weight reaches 0 before it drops out and the warp stays continuous
(a plain top-k cut tears space where the k-th and (k+1)-th bones swap). What is fitted is
exactly what a glTF skin with ``k`` influences plays.

A frame's bone motion is one rigid transform per bone, ``x -> R_b x + t_b`` (``(R, t)``: (B, 3, 3),
(B, 3)), made either freely (``bone_transforms``: each bone turns about its centre and shifts,
``x -> R (x - c) + c + d``) or as a kinematic chain (``chain_transforms``: each bone only turns,
about its joint with its parent, and carries its children, so limbs swing and never stretch or
come apart). The forward warp blends them: ``x' = sum_b w_b(x) (R_b x + t_b)``. The backward warp
inverts it: a first guess blends the inverse transforms with the weights of the posed bones
(Gaussians moved with their bones), then Newton steps make ``fwd(bwd(x')) = x'``; ``cycle_error``
measures how far the first guess is from that, a loss that keeps the weights consistent between
the spaces.

Shapes: points (N, 3); rotations (B, 3, 3) or axis-angle (B, 3); per-frame arrays carry a
leading frame axis in callers, one frame per call here.
"""
from __future__ import annotations

import math

import torch
from kornia.geometry.conversions import axis_angle_to_rotation_matrix
from torch import Tensor, nn

from .mlp import MLP


def rotation(axis_angle: Tensor) -> Tensor:
    """(..., 3) axis-angle -> (..., 3, 3) rotation matrices (kornia)."""
    shape = axis_angle.shape[:-1]
    return axis_angle_to_rotation_matrix(axis_angle.reshape(-1, 3)).reshape(*shape, 3, 3)


def frequency_encoding(x: Tensor, n_freqs: int) -> Tensor:
    """(N, 3) -> (N, 3 + 6 n_freqs): x and sin/cos of x at octaves 1 .. 2^(n-1) (times pi)."""
    feats = [x]
    for k in range(n_freqs):
        feats += [torch.sin(math.pi * 2 ** k * x), torch.cos(math.pi * 2 ** k * x)]
    return torch.cat(feats, -1)


class GaussianBones(nn.Module):
    """B Gaussian bones and their skin-weight field over canonical space.

    centers: (B, 3) bone centres; log_extent: (B, 3) log of each bone's extent along the
    canonical axes; an MLP on a frequency encoding adds (B,) logits (zero at the start).
    """

    def __init__(self, n_bones: int, influences: int = 4, hidden: int = 64, n_freqs: int = 4):
        super().__init__()
        self.n_bones = n_bones
        self.influences = min(influences, n_bones)
        self.n_freqs = n_freqs
        self.centers = nn.Parameter(torch.zeros(n_bones, 3))
        self.log_extent = nn.Parameter(torch.full((n_bones, 3), math.log(0.1)))
        self.mlp = MLP(3 + 6 * n_freqs, hidden, n_bones, n_hidden=2)
        with torch.no_grad():
            self.mlp.linears[-1].weight.zero_()
            self.mlp.linears[-1].bias.zero_()

    def logits(self, x: Tensor, centers: Tensor | None = None) -> Tensor:
        """(N, B) skinning logits at points x (N, 3), for bones at ``centers`` (default: their rest centres)."""
        c = self.centers if centers is None else centers
        d = (x[:, None, :] - c[None]) / self.log_extent.exp()[None]
        return -0.5 * (d * d).sum(-1) + self.mlp(frequency_encoding(x, self.n_freqs))

    def weights(self, x: Tensor, centers: Tensor | None = None, dense: bool = True) -> Tensor | tuple[Tensor, Tensor]:
        """Skin weights at x: (N, B) with all but the ``influences`` largest zero (``dense``), else the
        sparse form (indices (N, k), weights (N, k)). Rows sum to 1."""
        p = torch.softmax(self.logits(x, centers), -1)
        k = self.influences
        if k < self.n_bones:
            top, idx = p.topk(k + 1, dim=-1)
            w = top[:, :k] - top[:, k:]
            idx = idx[:, :k]
        else:
            w, idx = p, torch.arange(self.n_bones, device=x.device).expand(len(x), -1)
        w = w / w.sum(-1, keepdim=True).clamp_min(1e-12)
        if not dense:
            return idx, w
        return torch.zeros_like(p).scatter(-1, idx, w)


def bone_transforms(rot: Tensor, trans: Tensor, centers: Tensor) -> tuple[Tensor, Tensor]:
    """Each bone's rigid motion ``x -> R (x - c) + c + d`` as (R (B, 3, 3), t (B, 3)) with ``x -> R x + t``.

    rot: (B, 3) axis-angle; trans: (B, 3) d; centers: (B, 3) c.
    """
    R = rotation(rot)
    t = centers + trans - (R @ centers[..., None])[..., 0]
    return R, t


def chain_transforms(rot: Tensor, centers: Tensor, order: Tensor, parents: Tensor) -> tuple[Tensor, Tensor]:
    """A kinematic chain's rigid motions (R (B, 3, 3), t (B, 3)), ``x -> R x + t`` per bone.

    rot: (B, 3) axis-angle of each bone's turn about its joint; centers: (B, 3); order: (B,) bone
    indices, parents first; parents: (B,) index into ``order`` of each ordered bone's parent (-1: the
    first, which turns about its own centre). A bone's joint is the midpoint of its centre and its
    parent's; its motion is the parent's, after its own turn about that joint. The tree is walked a
    depth at a time (every bone of one depth in one batched step: a few tensor operations per level
    instead of per bone, which is what a training step spends its time on).
    """
    ob = order.tolist()
    par = [int(p) for p in parents.tolist()]
    depth: list[int] = []
    for p in par:
        depth.append(0 if p < 0 else depth[p] + 1)
    pos = torch.as_tensor(ob)
    parent_pos = torch.as_tensor([max(p, 0) for p in par])
    has_parent = torch.as_tensor([p >= 0 for p in par])[:, None]
    c = centers[pos]  # (B, 3) in chain order
    pivot = torch.where(has_parent, 0.5 * (c + c[parent_pos]), c)
    Rl = rotation(rot)[pos]
    R, t = Rl, pivot - (Rl @ pivot[..., None])[..., 0]  # each bone's turn about its joint; final at the roots
    tl = t
    for d in range(1, max(depth, default=0) + 1):
        at = torch.as_tensor([i for i, k in enumerate(depth) if k == d])
        Rp, tp = R[parent_pos[at]], t[parent_pos[at]]  # parents are one level up: already final
        R = R.index_copy(0, at, Rp @ Rl[at])
        t = t.index_copy(0, at, (Rp @ tl[at][..., None])[..., 0] + tp)
    back = torch.argsort(pos)  # chain order -> bone order
    return R[back], t[back]


def blend(x: Tensor, w: Tensor, R: Tensor, t: Tensor) -> Tensor:
    """sum_b w_b (R_b x + t_b): points (N, 3), weights (N, B), transforms (B, 3, 3), (B, 3) -> (N, 3)."""
    per_bone = torch.einsum("bij,nj->nbi", R, x) + t[None]
    return (w[..., None] * per_bone).sum(1)


def forward_warp(bones: GaussianBones, x: Tensor, R: Tensor, t: Tensor) -> Tensor:
    """Canonical points x (N, 3) posed by one frame's bone motions (R, t)."""
    return blend(x, bones.weights(x), R, t)


def backward_guess(bones: GaussianBones, y: Tensor, R: Tensor, t: Tensor) -> Tensor:
    """One-shot inverse: posed points y (N, 3) unposed with the inverse bone transforms blended by the
    weights of the posed bones (their centres moved by their own motion)."""
    Rinv = R.transpose(1, 2)
    tinv = -(Rinv @ t[..., None])[..., 0]
    posed_centers = (R @ bones.centers[..., None])[..., 0] + t
    return blend(y, bones.weights(y, posed_centers), Rinv, tinv)


def backward_warp(bones: GaussianBones, y: Tensor, R: Tensor, t: Tensor, iterations: int = 8,
                  eps: float = 1e-4) -> Tensor:
    """Posed points y (N, 3) back to canonical space: ``backward_guess``, then Newton steps on
    ``fwd(x) = y`` with the warp's Jacobian by central differences (exact wherever the skinning
    does not fold space). Not differentiable; for mapping posed points (e.g. landmarks) back."""
    with torch.no_grad():
        x = backward_guess(bones, y, R, t)
        fwd = lambda p: forward_warp(bones, p, R, t)  # noqa: E731
        eye = torch.eye(3, dtype=y.dtype)
        for _ in range(iterations):
            r = fwd(x) - y
            J = torch.stack([(fwd(x + eps * e) - fwd(x - eps * e)) / (2 * eps) for e in eye], -1)  # (N, 3, 3)
            x = x - torch.linalg.solve(J, r[..., None])[..., 0]
    return x


def cycle_error(bones: GaussianBones, x: Tensor, R: Tensor, t: Tensor) -> Tensor:
    """(N,) squared distance of canonical points x from ``backward_guess(forward_warp(x))``."""
    y = forward_warp(bones, x, R, t)
    return (backward_guess(bones, y, R, t) - x).pow(2).sum(-1)
