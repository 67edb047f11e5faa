"""Blend skinning: weights, forward warp against a numpy LBS, backward warp returns rest points."""
import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from recon.fields.skinning import (GaussianBones, backward_warp, bone_transforms, chain_transforms, cycle_error,
                                  forward_warp, rotation)


def _bones(seed: int = 0, n: int = 6) -> GaussianBones:
    torch.manual_seed(seed)
    b = GaussianBones(n, influences=4)
    with torch.no_grad():
        b.centers.copy_(torch.rand(n, 3) - 0.5)
        b.log_extent.fill_(math.log(0.3))
        for lin in b.mlp.linears:  # a non-trivial learned correction
            lin.weight.normal_(0, 0.1)
    return b


def _motion(n: int, seed: int = 1, angle: float = 0.4, shift: float = 0.05):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 3, generator=g) - 0.5) * 2 * angle, (torch.rand(n, 3, generator=g) - 0.5) * 2 * shift


def test_rotation_matches_scipy():
    v = torch.tensor([[0.3, -0.2, 0.9], [0.0, 0.0, 0.0], [1e-7, 0, 0]])
    want = Rotation.from_rotvec(v.double().numpy()).as_matrix()
    assert np.allclose(rotation(v).numpy(), want, atol=1e-6)


def test_weights_keep_four_influences_and_sum_to_one():
    b = _bones()
    x = torch.rand(100, 3) - 0.5
    w = b.weights(x)
    assert w.shape == (100, 6)
    assert torch.allclose(w.sum(-1), torch.ones(100), atol=1e-6)
    assert int((w > 0).sum(-1).max()) == 4
    idx, ws = b.weights(x, dense=False)
    assert torch.allclose(w.gather(1, idx), ws)


def test_forward_warp_matches_numpy_lbs():
    b = _bones()
    rot, trans = _motion(6)
    x = torch.rand(50, 3) - 0.5
    y = forward_warp(b, x, *bone_transforms(rot, trans, b.centers)).detach().numpy()
    w = b.weights(x).detach().numpy()
    R = Rotation.from_rotvec(rot.double().numpy()).as_matrix()
    c = b.centers.detach().double().numpy()
    xd = x.double().numpy()
    want = np.zeros((50, 3))
    for k in range(6):  # each bone turns about its centre and shifts
        want += w[:, k:k + 1] * ((xd - c[k]) @ R[k].T + c[k] + trans[k].double().numpy())
    assert np.allclose(y, want, atol=1e-5)


def test_rest_points_warped_forward_then_backward_return():
    b = _bones()
    rot, trans = _motion(6)
    x = torch.rand(200, 3) - 0.5
    motion = bone_transforms(rot, trans, b.centers)
    back = backward_warp(b, forward_warp(b, x, *motion), *motion)
    err = (back - x).norm(dim=-1)
    assert float(err.max()) < 1e-4, float(err.max())
    # the one-shot guess alone is off (what the cycle loss trains away), so the iterations matter
    assert float(cycle_error(b, x, *motion).detach().sqrt().mean()) > 1e-3


def test_identity_motion_is_identity():
    b = _bones()
    x = torch.rand(20, 3)
    zero = torch.zeros(6, 3)
    motion = bone_transforms(zero, zero, b.centers)
    assert torch.allclose(forward_warp(b, x, *motion), x, atol=1e-6)
    assert torch.allclose(backward_warp(b, x, *motion), x, atol=1e-6)


@pytest.mark.parametrize("n", [1, 3])
def test_fewer_bones_than_influences(n):
    b = GaussianBones(n, influences=4)
    w = b.weights(torch.rand(10, 3))
    assert w.shape == (10, n) and torch.allclose(w.sum(-1), torch.ones(10))


def test_chain_bones_swing_about_their_joints_and_carry_their_children():
    """A three-bone limb: the chain's motions against numpy compositions of turns about the joints; the
    joints stay together (no bone stretches away from its parent) and the warp still inverts."""
    centers = torch.tensor([[0.0, 0.0, 0.0], [0.4, 0.0, 0.0], [0.8, 0.1, 0.0]])
    order, parents = torch.tensor([0, 1, 2]), torch.tensor([-1, 0, 1])
    rot, _ = _motion(3, seed=4, angle=0.6)
    R, t = chain_transforms(rot, centers, order, parents)
    Rn = Rotation.from_rotvec(rot.double().numpy()).as_matrix()
    c = centers.double().numpy()

    def about(Rk, p):  # 4x4 turn about point p
        M = np.eye(4)
        M[:3, :3], M[:3, 3] = Rk, p - Rk @ p
        return M

    j1, j2 = 0.5 * (c[0] + c[1]), 0.5 * (c[1] + c[2])
    G = [about(Rn[0], c[0])]
    G.append(G[0] @ about(Rn[1], j1))
    G.append(G[1] @ about(Rn[2], j2))
    for k in range(3):
        assert np.allclose(R[k].numpy(), G[k][:3, :3], atol=1e-5) and np.allclose(t[k].numpy(), G[k][:3, 3], atol=1e-5)
    for parent, child, joint in ((0, 1, j1), (1, 2, j2)):  # both bones move the joint to the same place
        jt = torch.tensor(joint, dtype=torch.float32)
        assert torch.allclose(R[parent] @ jt + t[parent], R[child] @ jt + t[child], atol=1e-5)
    b = GaussianBones(3, influences=3)
    with torch.no_grad():
        b.centers.copy_(centers)
        b.log_extent.fill_(math.log(0.3))
    x = torch.rand(100, 3) * torch.tensor([1.0, 0.3, 0.3]) - torch.tensor([0.1, 0.15, 0.15])
    back = backward_warp(b, forward_warp(b, x, R, t), R, t)
    assert float((back - x).norm(dim=-1).max()) < 1e-4


def _chain_one_bone_at_a_time(rot, centers, order, parents):
    """The chain composed bone by bone, parents first (the plain form ``chain_transforms`` batches by depth)."""
    from recon.fields.skinning import rotation

    Rl = rotation(rot)
    R, t = [None] * len(order), [None] * len(order)
    for i, b in enumerate(order.tolist()):
        p = int(parents[i])
        pivot = centers[b] if p < 0 else 0.5 * (centers[b] + centers[int(order[p])])
        tl = pivot - Rl[b] @ pivot
        if p < 0:
            R[b], t[b] = Rl[b], tl
        else:
            q = int(order[p])
            R[b], t[b] = R[q] @ Rl[b], R[q] @ tl + t[q]
    return torch.stack(R), torch.stack(t)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_chain_by_depth_matches_bone_by_bone(seed):
    """A branching skeleton over 16 random centres (its bones out of order): the depth-batched chain gives
    the same motions and the same gradients as composing one bone at a time."""
    from recon.models.articulated_init import skeleton_parents

    gen = torch.Generator().manual_seed(seed)
    centers = torch.rand(16, 3, generator=gen).requires_grad_()
    order, parents = (torch.as_tensor(a) for a in skeleton_parents(centers.detach().numpy()))
    assert (parents >= 0).sum() == 15 and len(set(parents.tolist())) > 3  # a tree that branches
    rot = (torch.randn(16, 3, generator=gen) * 0.5).requires_grad_()
    w = torch.randn(16, 4, 3, generator=gen)
    outs = []
    for fn in (chain_transforms, _chain_one_bone_at_a_time):
        R, t = fn(rot, centers, order, parents)
        loss = (R.reshape(16, 9) @ torch.ones(9, 3) * w[:, 0]).sum() + (t * w[:, 1]).sum()
        outs.append((R.detach(), t.detach(), *torch.autograd.grad(loss, (rot, centers))))
    for a, b in zip(*outs):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
