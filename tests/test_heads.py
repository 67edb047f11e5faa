"""Heads: the shipped ICT model, landmark definitions on its topology, and the landmark fit."""
import numpy as np
import pytest
import torch

from recon.core.errors import InputError
from recon.heads.fit import HeadFitConfig, fit_head
from recon.heads.landmarks import (_closest_on_triangles, closest_surface_points, landmark_sets, mediapipe_embeddings,
                                   view_yaw)
from recon.heads.model import interocular, load_head_model
from recon.heads.observe import NUM_LANDMARKS, FaceObservation, pick_face


@pytest.fixture(scope="module")
def model():
    return load_head_model()


def test_model_matches_ict(model):
    """Shapes and names as ICT-FaceKit ships them; the dequantised bases move the face by plausible amounts."""
    assert model.num_identity == 100 and model.num_expression == 57
    assert {"jawOpen", "eyeBlink_L", "mouthSmile_R"} <= set(model.expression_names)
    v = model.neutral.numpy()
    height = v[:model.skin_vertices, 1].max() - v[model.landmarks68[8], 1]
    assert 0.2 < height < 0.3  # chin to crown, metres
    iod = float(interocular(model.neutral[model.landmarks68]))
    assert 0.08 < iod < 0.11  # outer eye corners
    jaw = model.expression_basis[model.expression_names.index("jawOpen")]
    chin = model.landmarks68[8]
    assert 0.01 < -float(jaw[chin, 1]) < 0.06  # the mouth opens downwards by centimetres
    f = model.faces.numpy()
    assert f.max() < model.num_vertices and len(np.unique(f)) == model.num_vertices


def test_closest_points_match_brute_force(model):
    rng = np.random.default_rng(0)
    v = model.neutral.double().numpy()
    faces = model.skin_faces().numpy()
    p = v[rng.choice(model.skin_vertices, 40)] + rng.normal(scale=0.004, size=(40, 3))
    got = closest_surface_points(p, v, faces)
    q = got.at(torch.as_tensor(v), torch.as_tensor(faces)).numpy()
    # brute force over every triangle
    tri = v[faces]
    best = []
    for x in p:
        b = _closest_on_triangles(np.repeat(x[None], len(tri), 0), tri[:, 0], tri[:, 1], tri[:, 2])
        best.append(np.linalg.norm((b[:, :, None] * tri).sum(1) - x, axis=1).min())
    np.testing.assert_allclose(np.linalg.norm(q - p, axis=1), best, atol=2e-6)  # barycentrics are stored as float32
    assert (got.bary >= -1e-6).all() and np.allclose(got.bary.sum(1), 1, atol=1e-5)


def test_landmark_sets_lie_on_the_head(model):
    sets = landmark_sets(model)
    assert len(sets["multipie68"]) == 68 and len(sets["dense"]) >= 500 and len(sets["mediapipe478"]) == NUM_LANDMARKS
    v, f = model.neutral, model.faces
    lm = sets["multipie68"].at(v, f)
    np.testing.assert_allclose(lm.numpy(), v[model.landmarks68].numpy(), atol=1e-6)
    dense = sets["dense"].at(v, f).numpy()
    d = np.linalg.norm(dense[:, None] - dense[None], axis=-1) + np.eye(len(dense))
    assert d.min() > 0.002  # spread out: no two dense points within 2 mm


def _observations(model, identity, expression, poses, f=900.0, c=256.0):
    """MediaPipe-like observations: the embedded points of a known head, projected exactly."""
    emb = mediapipe_embeddings()
    v = model.vertices(identity, expression).double()
    out = []
    for R, t in poses:
        p = emb.points(v, model.faces, view_yaw(np.concatenate([R, t[:, None]], 1))).numpy()
        q = p @ R.T + t
        uv = f * q[:, :2] / q[:, 2:] + c
        lm = np.concatenate([uv, q[:, 2:] * f / q[:, 2:].mean()], 1).astype(np.float32)
        out.append(FaceObservation(lm, (*uv.min(0), *uv.max(0)), 1))
    return out


def test_fit_recovers_a_head_from_exact_landmarks(model):
    """Landmarks that are exact projections of a known head: the fit finds its expression and puts the 68
    points within 1.5% of the inter-ocular distance in the photo."""
    rng = np.random.default_rng(3)
    ident = torch.as_tensor(rng.normal(size=100), dtype=torch.float32)
    expr = np.zeros(57)
    expr[[model.expression_names.index(n) for n in ("jawOpen", "eyeBlink_L", "mouthSmile_R", "browInnerUp_L")]] = \
        [0.6, 0.8, 0.5, 0.7]
    R = np.array([[np.cos(0.3), 0, np.sin(0.3)], [0, 1, 0], [-np.sin(0.3), 0, np.cos(0.3)]]) @ np.diag([1, -1, -1])
    obs = _observations(model, ident, torch.as_tensor(expr, dtype=torch.float32), [(R, np.array([0.01, 0.0, 0.6]))])
    fit = fit_head(model, obs, np.array([[900.0, 900.0, 256.0, 256.0]]), shared_expression=True,
                   cfg=HeadFitConfig(steps=300))
    assert np.corrcoef(fit.expression[0], expr)[0, 1] > 0.8
    lm = model.landmarks68.numpy()
    truth = model.vertices(ident, torch.as_tensor(expr, dtype=torch.float32)).double().numpy()[lm] @ R.T + [0.01, 0, 0.6]
    got = model.vertices(torch.as_tensor(fit.identity), torch.as_tensor(fit.expression[0])).double().numpy()[lm]
    got = got @ fit.rotation[0].T + fit.translation[0]
    px = lambda q: 900 * q[:, :2] / q[:, 2:]  # noqa: E731
    iod = np.linalg.norm(px(truth)[36] - px(truth)[45])
    assert np.linalg.norm(px(got) - px(truth), axis=1).mean() / iod < 0.015
    assert fit.residual_px[0] < 2.0  # pixels on a face 150 px across: the priors pull a little


def test_no_face_is_a_one_line_error():
    with pytest.raises(InputError, match="no face found") as e:
        pick_face([], "photo.jpg")
    assert "\n" not in str(e.value)
    lm = np.zeros((NUM_LANDMARKS, 3), np.float32)
    faces = [FaceObservation(lm, (0, 0, 100, 100), 2), FaceObservation(lm, (0, 0, 50, 50), 2)]
    assert pick_face(faces, "x") is faces[0]
    with pytest.raises(InputError, match="holds 2 face"):
        pick_face(faces, "x", face_index=2)


def test_head_glb_carries_the_expressions_as_morph_targets(model, tmp_path):
    """The 57 expression shapes as glTF morph targets and an animation of their weights: the Khronos
    validator accepts them, model-viewer plays them, they read back exactly, and a shape applied to the asset moves its vertices as the model moves them."""
    from recon.bake.writers import read_mesh, write_mesh
    from recon.heads.asset import head_mesh, split_seams

    from .bake.conftest import play_in_model_viewer, validate_gltf

    ident = np.random.default_rng(1).normal(size=100)
    tex = np.full((64, 64 * 3, 3), 180, np.uint8)
    expr = np.zeros((2, 57), np.float32)
    expr[1, model.expression_names.index("eyeBlink_L")] = 1.0
    mesh = head_mesh(model, ident, tex, np.array([0.0, 1.5]), expr)
    path = write_mesh(mesh, tmp_path / "head.glb")[0]
    report = validate_gltf(path)
    assert report["numErrors"] == 0, report["messages"]
    back = read_mesh(path)
    assert back.morph_names == model.expression_names
    np.testing.assert_array_equal(back.morph_positions, mesh.morph_positions)
    np.testing.assert_array_equal(back.faces, mesh.faces)
    np.testing.assert_array_equal(back.morph_weights, expr)
    np.testing.assert_allclose(back.morph_times, [0.0, 1.5])
    played = play_in_model_viewer(path, "expressions", tmp_path)
    assert played["loaded"] and played["animations"] == ["expressions"], played
    assert not played["paused"] and played["currentTime"] > 0 and played["duration"] == pytest.approx(1.5)
    assert [m for m in played["messages"] if m["type"] in ("error", "pageerror", "requestfailed", "timeout")] == []
    vid, _, _ = split_seams(model)
    j = model.expression_names.index("jawOpen")
    posed = back.positions + 0.7 * back.morph_positions[j]
    e = np.zeros(57, np.float32)
    e[j] = 0.7
    truth = model.vertices(torch.as_tensor(ident), torch.as_tensor(e)).numpy()[vid]
    np.testing.assert_allclose(posed, truth, atol=1e-6)


def test_yaw_embeddings_follow_the_camera(model):
    """view_yaw reads the synthetic cameras' yaw back; the interpolation weights sum to one and pick the
    calibrated yaws exactly; the outline's points slide round the face as it turns, the inner ones hardly."""
    from recon.synth.heads import head_cameras

    emb = mediapipe_embeddings()
    cams = head_cameras([-50.0, 0.0, 30.0], 0.0, 256, target=(0.0, 0.0, 0.0))
    got = [view_yaw(np.linalg.inv(c2w)) for c2w in cams.c2w]
    np.testing.assert_allclose(got, [-50.0, 0.0, 30.0], atol=1e-6)
    w = emb.weights([-90.0, -37.5, 0.0, 15.0])
    np.testing.assert_allclose(w.sum(1), 1.0)
    assert w[0, 0] == 1.0 and w[2, list(emb.yaw).index(0.0)] == 1.0 and w[3, list(emb.yaw).index(15.0)] == 1.0
    assert (w[1] > 0).sum() == 2
    v = model.neutral.double()
    front, turned = emb.points(v, model.faces, 0.0).numpy(), emb.points(v, model.faces, 45.0).numpy()
    moved = np.linalg.norm(front - turned, axis=1)
    outline, nose_tip = 234, 1  # MediaPipe: a point of the face's outline (cheek), the nose tip
    assert moved[outline] > 0.005 > moved[nose_tip]
