"""``synth_articulated`` / ``recon synth --articulated``: a walking rigged critter with posed ground truth."""
from __future__ import annotations

import json

import numpy as np
import pytest

from recon.capture import load_capture
from recon.capture.normalize import MARGIN, similarity
from recon.cli import main
from recon.synth import Mesh, load_posed_truth, render_views, synth_articulated
from recon.synth.articulated import build_critter, linear_blend_skinning, walk_animation
from recon.synth.mesh import _bounding_sphere

FRAMES, SIZE = 10, 56


@pytest.fixture(scope="module")
def critter():
    return build_critter(seed=0)


@pytest.fixture(scope="module")
def critter_capture(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "critter"
    cap = synth_articulated(out, frames=FRAMES, size=SIZE, seed=1, test_every=2)
    return out, cap


def _rigid_residual(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-point distance (N,) left after the best rigid fit (Kabsch) of a onto b."""
    ca, cb = a.mean(0), b.mean(0)
    U, _, Vt = np.linalg.svd((a - ca).T @ (b - cb))
    D = np.diag([1.0, 1.0, np.sign(np.linalg.det(U @ Vt))])
    R = (U @ D @ Vt).T
    return np.linalg.norm((a - ca) @ R.T + cb - b, axis=1)


def test_rig_rest_pose_and_weights(critter):
    J = len(critter.names)
    assert 12 <= J <= 16 and critter.parents[0] == -1
    assert all(0 <= p < j for j, p in enumerate(critter.parents) if j)  # parents come first
    assert 3000 <= len(critter.faces) <= 8000
    import trimesh

    assert trimesh.Trimesh(critter.vertices, critter.faces, process=False).is_watertight
    w = critter.weights
    assert w.shape == (len(critter.vertices), J)
    np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-5)
    assert (w >= 0).all() and ((w > 0).sum(1) <= 4).all()
    identity = np.tile(np.eye(4), (J, 1, 1))
    np.testing.assert_allclose(linear_blend_skinning(critter.vertices, w, identity), critter.vertices, atol=1e-6)
    # the same rigid motion on every bone moves the mesh rigidly
    M = np.eye(4)
    M[:3, :3] = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    M[:3, 3] = [0.1, 0.2, -0.3]
    moved = linear_blend_skinning(critter.vertices, w, np.tile(M, (J, 1, 1)))
    np.testing.assert_allclose(moved, critter.vertices @ M[:3, :3].T + M[:3, 3], atol=1e-6)


def test_subject_articulates_and_moves(critter):
    skinning = walk_animation(critter, FRAMES)
    posed = linear_blend_skinning(critter.vertices, critter.weights, skinning)
    # not rigid: after the best rigid fit to instant 0, some vertices (legs, tail) are far off
    worst = max(_rigid_residual(posed[t], posed[0]).max() for t in range(1, FRAMES))
    assert worst > 0.05
    # legs move relative to the pelvis frame
    legs = critter.weights[:, [i for i, n in enumerate(critter.names) if "lower" in n]].sum(1) > 0.9
    body = np.linalg.inv(skinning[:, 0])  # world -> pelvis frame at each instant
    local = np.einsum("tab,tvb->tva", body[:, :3, :3], posed[:, legs]) + body[:, None, :3, 3]
    assert np.linalg.norm(local - local[:1], axis=2).max() > 0.05
    # the root advances and turns
    assert np.linalg.norm(skinning[-1, 0, :3, 3] - skinning[0, 0, :3, 3]) > 0.3


def test_capture_frames_masks_and_pairing(critter_capture):
    out, cap = critter_capture
    train, test = cap.split_indices("train"), cap.split_indices("test")
    assert len(train) == FRAMES and len(test) == FRAMES // 2
    assert [cap.frames[i].name for i in train] == [f"t_{t:03d}" for t in range(FRAMES)]
    assert [cap.frames[i].name for i in test] == [f"c2_{t:03d}" for t in range(0, FRAMES, 2)]
    by_index = {cap.frames[i].index: i for i in train}
    for i in test:
        f = cap.frames[i]
        assert f.name == f"c2_{f.index:03d}" and f.timestamp == pytest.approx(f.index / 30.0)
        assert cap.frames[by_index[f.index]].timestamp == f.timestamp
        # a different camera than the training one at the same instant
        assert np.linalg.norm(cap.cameras.centers[i] - cap.cameras.centers[by_index[f.index]]) > 0.2
    for m in cap.masks:
        b = m > 0
        assert b.mean() > 0.02
        assert not (b[0].any() or b[-1].any() or b[:, 0].any() or b[:, -1].any())
    # images are textured, not flat
    img = cap.images[0][cap.masks[0] > 0]
    assert img.std(0).min() > 20
    syn = cap.meta["synthetic"]
    assert syn["subject"] == "critter" and syn["articulated"] and syn["frames"] == FRAMES and syn["fps"] == 30.0
    assert cap.meta["up"] == [0.0, 1.0, 0.0]


def test_folder_reads_back(critter_capture):
    out, cap = critter_capture
    back = load_capture(out)
    for a, b in zip(back.frames, cap.frames):
        assert (a.name, a.split, a.index) == (b.name, b.split, b.index)
        assert a.timestamp == pytest.approx(b.timestamp)
    np.testing.assert_allclose(back.normalization, cap.normalization, atol=1e-12)
    np.testing.assert_allclose(back.cameras.c2w, cap.cameras.c2w, atol=1e-9)
    for a, b in zip(back.masks, cap.masks):
        np.testing.assert_array_equal(a, b)
    meta = json.loads((out / "capture.json").read_text())["meta"]
    assert meta["synthetic"]["bones"] == len(build_critter().names)
    rig = np.load(out / "gt_rig.npz")
    T, J = FRAMES, len(rig["parents"])
    assert rig["skinning"].shape == rig["posed_joints"].shape == (T, J, 4, 4)
    np.testing.assert_allclose(rig["posed_joints"], rig["skinning"] @ rig["rest_joints"])


def test_posed_truth_matches_masks_and_normalisation(critter_capture):
    out, cap = critter_capture
    truth = load_posed_truth(out)
    assert sorted(truth) == list(range(FRAMES))
    rig = np.load(out / "gt_rig.npz")
    posed = linear_blend_skinning(rig["rest_vertices"], rig["weights"], rig["skinning"])
    # the bounding sphere of all posed vertices maps into the unit sphere
    center, radius = _bounding_sphere(posed.reshape(-1, 3))
    np.testing.assert_allclose(cap.normalization, similarity(center, radius * MARGIN), atol=1e-9)
    world = np.linalg.inv(cap.normalization)  # normalised -> mesh units
    for i in cap.split_indices("train")[::3]:
        t = cap.frames[i].index
        mesh = truth[t]
        np.testing.assert_allclose(mesh.vertices, posed[t], atol=1e-5)
        cam = cap.cameras[[i]].transformed(world)
        alpha = render_views(Mesh(np.asarray(mesh.vertices), np.asarray(mesh.faces), None, None, np.zeros(
            (len(mesh.vertices), 3), np.float32), None, center, radius), cam)[0]["alpha"]
        a, b = alpha >= 0.5, cap.masks[i] > 0
        assert (a & b).sum() / (a | b).sum() > 0.98


def test_cli(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path / "x")]) == 2
    assert "--articulated" in capsys.readouterr().err
    assert main(["synth", "some.ply", "--articulated", "--out", str(tmp_path / "x")]) == 2
    assert "not both" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    assert main(["synth", "--articulated", "--out", str(tmp_path / "c"), "--frames", "3", "--size", "32"]) == 0
    assert len(list((tmp_path / "c" / "frames").iterdir())) == 6
    assert len(list((tmp_path / "c" / "gt_posed").iterdir())) == 3
