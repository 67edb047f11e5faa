"""recon.pipeline end to end on a tiny synthetic capture: capture -> fit -> bake into one job
folder, through ``recon fit`` and ``from recon import fit``; resume and the job-folder guards."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from recon.cli import main
from recon.core.errors import InputError

# A few hundred iterations and a coarse bake: enough for a recognisable avocado in ~1 minute.
TINY = ["fit.iterations=300", "fit.minutes=null", "fit.batch_rays=1024", "fit.eval_every=0",
        "fit.checkpoint_every=0", "render.samples_per_ray=96", "bake.resolution=96", "bake.texture_size=256",
        "bake.target_triangles=4000", "bake.preview_size=96", "bake.turntable_frames=4", "bake.refine_steps=100"]


@pytest.fixture(scope="module")
def avocado_capture(shared_data, tmp_path_factory) -> Path:
    from recon.synth import synth_capture

    out = tmp_path_factory.mktemp("avocado") / "capture"
    synth_capture(shared_data / "meshes" / "avocado" / "avocado.gltf", out, views=24, test_views=4, size=64, seed=0)
    return out


@pytest.fixture(scope="module")
def job(avocado_capture, tmp_path_factory):
    out = tmp_path_factory.mktemp("job") / "avo"
    # a body asked for: no body model yet, so an object is fitted and recorded as one
    argv = ["fit", "--data", str(avocado_capture), "--out", str(out), "--name", "avo", "--subject", "body", "-q"]
    for o in TINY:
        argv += ["--set", o]
    assert main(argv) == 0
    return out


def test_recon_fit_goes_from_capture_to_a_finished_asset(job, avocado_capture):
    asset = job / "asset"
    names = {p.name for p in asset.iterdir()}
    assert {"avo.glb", "avo.obj", "avo.mtl", "avo.ply", "metrics.json", "provenance.json", "thumb.png",
            "turntable.mp4", "report.html"} <= names
    m = json.loads((asset / "metrics.json").read_text())
    fit_eval = json.loads((job / "fit" / "eval.json").read_text())
    assert m["fit"]["psnr"] == pytest.approx(fit_eval["psnr"]) and "views" not in m["fit"]
    assert m["psnr_heldout_baked"] > 20.0 and m["psnr_heldout_baked_views"] == 4  # baked mesh vs held-out renders
    assert m["psnr_heldout_field"] == pytest.approx(fit_eval["psnr"]) and m["psnr_heldout_field_split"] == "test"
    assert "psnr" not in m and m["material"] == "radiance"
    assert m["kind"] == "object" and m["requested_subject"] == "body"
    # the mesh is the avocado in its own units (a wrong normalisation would be off by the whole object)
    assert m["chamfer"] < 0.03 * _gt_diagonal(avocado_capture) and m["fscore"] > 0.3
    assert m["triangles"] > 1000 and m["uv_coverage"] > 0.2  # a real surface, textured (watertightness: bench_bake)
    # the mesh was fitted to the training photos: both PSNRs as measured (finite), and kept only if it helped
    before, after = m["refine_psnr_before"], m["refine_psnr_after"]
    assert 10 < before < 60 and 10 < after < 60 and m["refine_kept"] == (after > before)
    assert after > before + 1 and m["refine_kept"], (before, after)  # ~7 dB measured; fails if the fit is a no-op
    prov = json.loads((asset / "provenance.json").read_text())
    cap = json.loads((avocado_capture / "capture.json").read_text())
    assert prov["name"] == "avo" and prov["kind"] == "object" and prov["source_hash"] == cap["source"]["hash"]
    assert prov["requested_subject"] == "body" and prov["frame"]["up"] == [0, 1, 0]  # recon synth's +Y
    assert prov["source_path"] == str(avocado_capture.resolve()) and len(prov["config_hash"]) == 16
    assert not (job / "capture").exists()  # a recon capture folder is used in place


def test_a_requested_body_is_filed_as_the_object_it_is(job, tmp_path):
    from recon.library import Library

    with Library(tmp_path / "lib.db") as lib:
        added = lib.add(job / "asset")
        assert added.kind == "object" and lib.find(kind="body") == []
        assert [a.id for a in lib.find(kind="object")] == [added.id]


def _gt_diagonal(cap_dir: Path) -> float:
    import numpy as np
    import trimesh

    gt = trimesh.load(cap_dir / "gt_mesh.ply", force="mesh")
    return float(np.linalg.norm(gt.bounds[1] - gt.bounds[0]))


def test_an_existing_job_needs_resume_or_overwrite(job, avocado_capture, capsys):
    assert main(["fit", "--data", str(avocado_capture), "--out", str(job), "-q"]) == 2
    err = capsys.readouterr().err
    assert "already holds a job (fit/, asset/)" in err and "--resume" in err and len(err.strip().splitlines()) == 1


def test_resume_reuses_finished_stages(job, avocado_capture):
    from recon import fit

    before = {p: p.stat().st_mtime_ns for p in (job / "fit" / "eval.json", job / "asset" / "avo.glb")}
    res = fit(avocado_capture, out=job, name="avo", overrides=TINY, resume=True)
    assert res.asset_dir == job / "asset" and res.metrics["name"] == "avo"
    assert {p: p.stat().st_mtime_ns for p in before} == before  # nothing was redone


def test_bad_subject_and_missing_source(tmp_path):
    from recon import fit

    with pytest.raises(InputError, match="unknown subject 'cat'"):
        fit(tmp_path, out=tmp_path / "o", subject="cat")
    assert main(["fit", "--video", str(tmp_path / "nope.mp4"), "--out", str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o").exists()
