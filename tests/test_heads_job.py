"""``recon fit --image PHOTO --subject head``: the head job end to end on a synthetic head photo (truth known),
the library (kind head, landmarks exported), and bad input as one line with exit 2."""
import json

import numpy as np
import pytest
import torch

pytest.importorskip("mediapipe")

from recon.cli import main  # noqa: E402
from recon.core.imageio import write_image  # noqa: E402
from recon.heads.model import FACE_VERTICES, interocular, load_head_model  # noqa: E402
from recon.synth.heads import head_cameras, random_head, render_head  # noqa: E402

from .bake.conftest import run_node_tool  # noqa: E402

SIZE = 512


@pytest.fixture(scope="module")
def model():
    return load_head_model()


def _photo(model, path, yaw: float, seed: int = 7):
    head = random_head(seed, model)
    cam = head_cameras(yaw, 5.0, SIZE)
    img = (np.clip(render_head(head, cam, model)[0]["rgb"], 0, 1) * 255 + 0.5).astype(np.uint8)
    write_image(path, img)
    return head, cam


def _one_error_line(capsys, code: int, pattern: str) -> None:
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.startswith("recon:")]
    assert len(lines) == 1 and pattern in lines[0], err


def test_fit_a_head_from_a_photo_and_file_it(model, tmp_path, capsys):
    """The photo's 68 landmarks come out within 5% of the inter-ocular distance of the truth; the asset folder
    holds the head with its 57 morph targets and landmark sets; the library files it as a head and exports the
    landmarks beside the mesh."""
    head, cam = _photo(model, tmp_path / "face.png", yaw=12.0)
    out = tmp_path / "job"
    assert main(["fit", "--image", str(tmp_path / "face.png"), "--out", str(out), "--set", "head.fov_deg=30",
                 "--set", "head.detail_steps=80", "-q"]) == 0
    printed = capsys.readouterr().out
    assert "head model" in printed and "57 expression morph targets" in printed
    m = json.loads((out / "asset" / "metrics.json").read_text())
    assert m["kind"] == "head" and m["morph_targets"] == 57 and m["animation"] == "expressions"
    assert m["landmarks"] == {"multipie68": 68, "dense": 1000, "mediapipe478": 478}
    assert m["landmarks478_px_mean"] < 3.0
    assert {"face.glb", "landmarks.json", "report.html", "provenance.json"} <= set(m["files"])
    prov = json.loads((out / "asset" / "provenance.json").read_text())
    from recon.core.fsutil import sha256_file

    assert prov["kind"] == "head" and prov["source_kind"] == "photo"
    assert prov["source_hash"] == sha256_file(tmp_path / "face.png")  # re-ingesting the same photo is a no-op
    ev = m["fit"]  # the shape beyond the model: offsets fitted to the person's silhouette never make it worse
    assert ev["detail_silhouette_iou_after"] >= ev["detail_silhouette_iou_before"] > 0.5

    with np.load(out / "fit" / "head_fit.npz") as z:
        R, t, ident, expr = z["rotation"][0], z["translation"][0], z["identity"], z["expression"][0]
        offset = z["detail_offset"]
    assert (offset[:FACE_VERTICES] == 0).all() and (offset[model.skin_vertices:] == 0).all()  # ICT's face kept
    lm = model.landmarks68.numpy()
    fitted = model.vertices(torch.as_tensor(ident), torch.as_tensor(expr)).double().numpy()[lm] @ R.T + t
    w2c = np.linalg.inv(cam.c2w[0])
    truth = head.vertices[lm] @ w2c[:3, :3].T + w2c[:3, 3]
    f = float(cam.fx[0])
    px = lambda q: f * q[:, :2] / q[:, 2:]  # noqa: E731
    err = np.linalg.norm(px(fitted) - px(truth), axis=1).mean() / float(interocular(torch.as_tensor(px(truth))))
    assert err < 0.05, err
    # the head pose as the photo's camera (nerfstudio's transforms.json, OpenGL), for other tools
    from recon.core.conventions import opengl_to_opencv

    tf = json.loads((out / "fit" / "transforms.json").read_text())["frames"][0]
    assert (out / "fit" / tf["file_path"]).is_file()
    w2c = np.linalg.inv(opengl_to_opencv(np.array(tf["transform_matrix"])))
    np.testing.assert_allclose(w2c[:3, :3], R, atol=1e-6)
    np.testing.assert_allclose(w2c[:3, 3], t, atol=1e-6)

    page = (out / "asset" / "report.html").read_text()  # each frame beside the re-rendered head, in 3D too
    assert 'animation-name="expressions"' in page and "dense landmarks drawn on the fitted head" in page
    res = run_node_tool("check_page.mjs", str(out / "asset" / "report.html"),
                        "body[data-model-loaded],body[data-model-error]", str(tmp_path / "report.png"))
    result = json.loads(res.stdout.strip().splitlines()[-1])
    assert res.returncode == 0 and result["ready"], result
    assert [m for m in result["messages"] if m["type"] in ("error", "pageerror", "requestfailed", "timeout")] == []

    lib = ["--library", str(tmp_path / "lib.db")]
    assert main(["library", "add", str(out / "asset"), *lib]) == 0
    capsys.readouterr()
    assert main(["library", "find", "--kind", "head", "--json", *lib]) == 0
    found = json.loads(capsys.readouterr().out)
    assert [a["name"] for a in found] == ["face"] and found[0]["kind"] == "head"
    assert main(["library", "export", "face", "--out", str(tmp_path / "x.glb"), "--landmarks", *lib]) == 0
    sets = json.loads((tmp_path / "x.landmarks.json").read_text())["sets"]
    assert {k: v["count"] for k, v in sets.items()} == m["landmarks"]
    assert (tmp_path / "x.glb").stat().st_size > 1e6


def test_bad_head_input_is_one_line_and_exit_2(model, tmp_path, capsys):
    blank = tmp_path / "wall.png"
    write_image(blank, np.full((256, 256, 3), 128, np.uint8))
    _one_error_line(capsys, main(["fit", "--image", str(blank), "--out", str(tmp_path / "a"), "-q"]), "no face")
    _photo(model, tmp_path / "profile.png", yaw=88.0)  # past profile: not found, or refused as turned too far
    code = main(["fit", "--image", str(tmp_path / "profile.png"), "--out", str(tmp_path / "b"), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and ("no face" in err or "turned" in err), err
    _photo(model, tmp_path / "face.png", yaw=0.0)
    _one_error_line(capsys, main(["fit", "--image", str(tmp_path / "face.png"), "--face-index", "2",
                                  "--out", str(tmp_path / "c"), "-q"]), "holds 1 face")
    _one_error_line(capsys, main(["fit", "--image", str(tmp_path / "face.png"), "--subject", "object",
                                  "--out", str(tmp_path / "d"), "-q"]), "one photo fits only a head")
    _one_error_line(capsys, main(["fit", "--data", str(tmp_path), "--subject", "head",
                                  "--out", str(tmp_path / "e"), "-q"]), "not a folder")
    for d in "abcde":  # nothing half-written
        assert not (tmp_path / d / "asset").exists()


def test_a_video_follows_the_face_it_started_with():
    """Several faces in later frames: the one overlapping the face picked before, not the largest."""
    from recon.core.config import Config
    from recon.core.types import Capture, FrameInfo
    from recon.heads import job
    from recon.heads.observe import NUM_LANDMARKS, FaceObservation

    lm = np.zeros((NUM_LANDMARKS, 3), np.float32)
    lm[263, 0] = 1.0  # a frontal face (yaw 0)
    small, big = FaceObservation(lm, (10, 10, 50, 50), 1), FaceObservation(lm, (100, 100, 300, 300), 2)
    moved = FaceObservation(lm, (14, 12, 54, 52), 2)
    frames = iter([[small], [big, moved], [big, moved]])

    class FakeDetector:
        def __init__(self, *a, **k): ...
        def __enter__(self): return self
        def __exit__(self, *a): ...
        def detect(self, image): return next(frames)

    cap = Capture([np.zeros((8, 8, 3), np.uint8)] * 3, None, [FrameInfo(f"f{i}", "v.mp4") for i in range(3)])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("recon.heads.observe.FaceMeshDetector", FakeDetector)
        picked = job.find_faces(cap, Config())
    assert picked == [small, moved, moved]
