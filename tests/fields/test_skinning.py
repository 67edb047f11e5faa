"""Blend skinning: weights, forward warp against a numpy LBS, backward warp returns rest points."""
import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from recon.fields.skinning import GaussianBones, backward_warp, cycle_error, forward_warp, rotation


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
    y = forward_warp(b, x, rot, trans).detach().numpy()
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
    back = backward_warp(b, forward_warp(b, x, rot, trans), rot, trans)
    err = (back - x).norm(dim=-1)
    assert float(err.max()) < 1e-4, float(err.max())
    # the one-shot guess alone is off (what the cycle loss trains away), so the iterations matter
    assert float(cycle_error(b, x, rot, trans).sqrt().mean()) > 1e-3


def test_identity_motion_is_identity():
    b = _bones()
    x = torch.rand(20, 3)
    zero = torch.zeros(6, 3)
    assert torch.allclose(forward_warp(b, x, zero, zero), x, atol=1e-6)
    assert torch.allclose(backward_warp(b, x, zero, zero), x, atol=1e-6)


@pytest.mark.parametrize("n", [1, 3])
def test_fewer_bones_than_influences(n):
    b = GaussianBones(n, influences=4)
    w = b.weights(torch.rand(10, 3))
    assert w.shape == (10, n) and torch.allclose(w.sum(-1), torch.ones(10))
