"""The per-job pipeline's glue (recon.pipeline.fit stubbed: tests/test_pipeline.py runs it for
real), and ``--pipeline`` resolution."""
from __future__ import annotations

from pathlib import Path

import pytest

import recon.pipeline
from recon.core.errors import InputError
from recon.jobs.manifest import JobSpec
from recon.jobs.pipeline import resolve_pipeline, run_pipeline


def test_run_pipeline_runs_recon_fit_with_the_jobs_settings_and_resume(monkeypatch, tmp_path):
    calls = []

    def fake_fit(data, out, **kw):
        calls.append((data, out, kw))
        return recon.pipeline.PipelineResult(Path(out), {"psnr": 20.0}, Path(out) / "asset", {})

    monkeypatch.setattr(recon.pipeline, "fit", fake_fit)
    job = JobSpec(source="/videos/cat.mp4", name="cat", kind="articulated", preset="object-quality",
                  overrides=("seed=3",), licence="CC0", operator="ana")
    assert run_pipeline(job, tmp_path / "work") == tmp_path / "work" / "asset"
    [(data, out, kw)] = calls
    assert data == "/videos/cat.mp4" and out == tmp_path / "work"
    assert kw == {"subject": "articulated", "name": "cat", "preset": "object-quality", "config_file": None,
                  "overrides": ["seed=3"], "resume": True, "provenance": {"licence": "CC0", "operator": "ana"}}


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
