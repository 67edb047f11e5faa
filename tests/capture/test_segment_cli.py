"""``recon capture --masks / --subject-box``: the segmenters wired through the config into the capture
folder's masks/, and their bad input as one line."""
from __future__ import annotations

import json

import numpy as np
import pytest

from recon.cli import main
from recon.core.imageio import read_mask, write_mask


@pytest.fixture(scope="module")
def avocado(shared_data, tmp_path_factory):
    from recon.synth import synth_capture

    out = tmp_path_factory.mktemp("seg") / "avocado"
    synth_capture(shared_data / "meshes" / "avocado" / "avocado.gltf", out, views=6, test_views=0, size=96, seed=2)
    return out


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 127, b > 127
    return float((a & b).sum() / max((a | b).sum(), 1))


def test_masks_folder_replaces_the_sources(avocado, tmp_path):
    names = sorted(p.stem for p in (avocado / "frames").iterdir())
    mine = tmp_path / "mine"
    for n in names:  # a square in the middle of every frame
        m = np.zeros((96, 96), np.uint8)
        m[30:60, 20:70] = 255
        write_mask(mine / f"{n}.png", m)
    out = tmp_path / "cap"
    assert main(["capture", str(avocado), "--out", str(out), "--masks", str(mine), "-q"]) == 0
    assert all(np.array_equal(read_mask(out / "masks" / f"{n}.png"), read_mask(mine / f"{n}.png")) for n in names)
    meta = json.loads((out / "capture.json").read_text())["meta"]
    assert meta["masks"]["method"] == "folder"


def test_subject_box_follows_the_subject(avocado, tmp_path):
    truth = [read_mask(p) for p in sorted((avocado / "masks").iterdir())]
    ys, xs = np.nonzero(truth[0])
    box = f"{xs.min() - 4},{ys.min() - 4},{xs.max() + 5},{ys.max() + 5}"
    out = tmp_path / "cap"
    assert main(["capture", str(avocado), "--out", str(out), "--subject-box", box, "-q"]) == 0
    got = [read_mask(p) for p in sorted((out / "masks").iterdir())]
    ious = [_iou(g, t) for g, t in zip(got, truth)]
    assert np.mean(ious) > 0.9, ious  # a subject over white: GrabCut and the flow find it in every view


def test_subject_points_reach_the_prompt(avocado, tmp_path):
    truth = read_mask(sorted((avocado / "masks").iterdir())[0])
    ys, xs = np.nonzero(truth)
    box = f"{xs.min() - 4},{ys.min() - 4},{xs.max() + 5},{ys.max() + 5}"
    pts = f"{int(xs.mean())},{int(ys.mean())},1;{xs.min() - 2},{ys.min() - 2},0"
    out = tmp_path / "cap"
    assert main(["capture", str(avocado), "--out", str(out), "--subject-box", box, "--subject-points", pts, "-q"]) == 0
    assert json.loads((out / "capture.json").read_text())["meta"]["masks"]["points"] == 2


@pytest.mark.parametrize("args,expect", [
    (["--masks", "{tmp}/nope"], "mask folder not found"),
    (["--subject-box", "1,2,3"], "--subject-box wants four numbers"),
    (["--subject-box", "500,500,600,600"], "outside frame"),
    (["--subject-box", "10,10,50,50", "--prompt-frame", "99"], "prompt frame 99 is out of range"),
    (["--subject-box", "10,10,50,50", "--subject-points", "20,20,2"], "--subject-points wants x,y,label"),
    (["--subject-box", "10,10,50,50", "--subject-points", "20,20"], "--subject-points wants x,y,label"),
    (["--subject-box", "10,10,50,50", "--subject-points", "900,20,1"], "outside frame"),
    (["--subject-points", "20,20,1"], "--subject-points needs --subject-box"),
    (["--onnx-masks", "{tmp}/none.onnx"], "none.onnx"),
])
def test_bad_mask_input_is_one_line(avocado, tmp_path, capsys, args, expect):
    out = tmp_path / "cap"
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert main(["capture", str(avocado), "--out", str(out), "-q", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert expect in err and "\n" not in err, err
    assert not out.exists()  # nothing half-written


def test_no_masks_drops_the_sources_and_auto_keeps_them(avocado, tmp_path):
    out = tmp_path / "none"
    assert main(["capture", str(avocado), "--out", str(out), "--no-masks", "-q"]) == 0
    assert json.loads((out / "capture.json").read_text())["counts"]["masks"] is False
    assert not (out / "masks").exists()
    out = tmp_path / "auto"  # the default: the source's own masks, no segmenter
    assert main(["capture", str(avocado), "--out", str(out), "-q"]) == 0
    meta = json.loads((out / "capture.json").read_text())["meta"]
    assert "masks" not in meta and len(list((out / "masks").iterdir())) == 6
