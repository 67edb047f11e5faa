"""The real per-job pipeline's glue (stages stubbed: the stages have their own tests), and
``--pipeline`` resolution."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import recon.bake
import recon.capture
import recon.fit.api
from recon.core.config import config_hash, load_config
from recon.core.errors import InputError
from recon.jobs.manifest import JobSpec
from recon.jobs.pipeline import resolve_pipeline, run_pipeline
from catalog_support import make_asset_folder


@pytest.fixture
def stages(monkeypatch):
    calls = []

    def capture_to_folder(source, out, cfg, overwrite=False):
        calls.append("capture")
        Path(out).mkdir(parents=True)
        (Path(out) / "capture.json").write_text(json.dumps({"source": {"path": source, "kind": "video",
                                                                       "hash": "c" * 64}}))

    def fit(data, out, config, resume):
        calls.append(("fit", resume))
        (Path(out) / "fit" / "checkpoints").mkdir(parents=True, exist_ok=True)
        return recon.fit.api.FitResult(Path(out), {"psnr": 21.5, "ssim": 0.8, "mask_iou": 0.95})

    def bake_asset(field, normalization, out_dir, name, capture=None, cfg=None, overwrite=False):
        calls.append("bake")
        asset = make_asset_folder(Path(out_dir) / "asset", name, provenance=False, psnr=None)
        metrics = json.loads((asset / "metrics.json").read_text())
        metrics["psnr_heldout"] = 19.0
        (asset / "metrics.json").write_text(json.dumps(metrics))
        return metrics

    monkeypatch.setattr(recon.capture, "capture_to_folder", capture_to_folder)
    monkeypatch.setattr(recon.capture, "load_capture", lambda *a, **k: "capture")
    monkeypatch.setattr(recon.fit.api, "fit", fit)
    monkeypatch.setattr(recon.fit.api, "load_field", lambda out: "field")
    monkeypatch.setattr(recon.bake, "bake_asset", bake_asset)
    return calls


def test_run_pipeline_chains_the_stages_and_records_provenance(stages, tmp_path):
    job = JobSpec(source="/videos/cat.mp4", name="cat", kind="articulated", overrides=("seed=3",), licence="CC0",
                  operator="ana")
    asset = run_pipeline(job, tmp_path / "work")
    assert asset == tmp_path / "work" / "asset" and stages == ["capture", ("fit", False), "bake"]
    prov = json.loads((asset / "provenance.json").read_text())
    assert prov["source_hash"] == "c" * 64 and prov["kind"] == "articulated" and prov["licence"] == "CC0"
    assert prov["config_hash"] == config_hash(load_config("object-fast", None, ["seed=3"]))
    metrics = json.loads((asset / "metrics.json").read_text())
    assert metrics["psnr"] == 19.0  # the baked asset's held-out PSNR, not the field's
    assert metrics["mask_iou"] == 0.9 and metrics["fit"]["psnr"] == 21.5 and metrics["ssim"] == 0.8
    # A finished asset folder is reused; an unfinished one resumes the fit and bakes again.
    assert run_pipeline(job, tmp_path / "work") == asset and len(stages) == 3
    (asset / "provenance.json").unlink()
    run_pipeline(job, tmp_path / "work")
    assert stages[3:] == [("fit", True), "bake"]


def test_resolve_pipeline(tmp_path):
    assert resolve_pipeline(None) is run_pipeline
    assert resolve_pipeline("recon.jobs.pipeline:run_pipeline") is run_pipeline
    f = tmp_path / "mine.py"
    f.write_text("def go(job, work_dir):\n    return work_dir\n")
    assert resolve_pipeline(f"{f}:go")(None, "w") == "w"
    for bad, msg in (("nocolon", "must look like"), (f"{f}:nope", "no function 'nope'"),
                     ("no.such.module:f", "cannot be imported"), (f"{tmp_path}/x.py:f", "pipeline file not found")):
        with pytest.raises(InputError, match=msg):
            resolve_pipeline(bad)
