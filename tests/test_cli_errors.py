"""``recon`` on user mistakes and internal failures: one line on stderr, the right exit code, and nothing
half-written (DESIGN: Errors and inputs)."""
from __future__ import annotations

import errno
import os
import re
import shutil
from pathlib import Path

import pytest

from recon.cli import main

ITERATIONS = 80  # a tiny density fit of a sphere, enough for the coarse bake below to find a surface (~7 s)
FIT = ["backend=torch", "field.kind=density", "fit.batch_rays=256", "field.grid.n_levels=8",
       "field.grid.log2_hashmap_size=14", "field.grid.max_resolution=128", "render.grid_resolution=32",
       "render.samples_per_ray=64", "render.occ_update_every=8", "render.occ_warmup=16", "fit.warmup=10",
       "fit.checkpoint_every=0", "fit.eval_every=0", "fit.minutes=null"]
BAKE = ["bake.resolution=32", "bake.texture_size=64", "bake.target_triangles=200", "bake.preview_size=64",
        "bake.turntable_frames=2", "bake.refine_steps=0", "bake.texture_fit_steps=0", "bake.fusion_views=4",
        "bake.normal_map=false"]


def _recon(capsys, *argv) -> tuple[int, list[str]]:
    rc = main([str(a) for a in argv] + ["--quiet"])
    return rc, capsys.readouterr().err.strip().splitlines()


def _fit_argv(data: Path, out: Path, *extra) -> list:
    sets = [a for o in FIT + BAKE for a in ("--set", o)]
    return ["fit", "--data", data, "--out", out, "--iterations", ITERATIONS, *sets, *extra]


def _files(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def finished(sphere_capture, tmp_path_factory) -> tuple[Path, Path]:
    """A recon capture folder and a job folder with a finished (unbaked) fit of it."""
    from recon.capture.capture_writer import write_capture_folder

    root = tmp_path_factory.mktemp("finished")
    write_capture_folder(sphere_capture(n_train=12, n_test=2, size=32), root / "cap")
    assert main([str(a) for a in _fit_argv(root / "cap", root / "job", "--no-bake", "-q")]) == 0
    return root / "cap", root / "job"


@pytest.fixture
def job(finished, tmp_path) -> tuple[Path, Path]:
    """A copy of ``finished`` to damage."""
    cap, out = (Path(shutil.copytree(p, tmp_path / p.name)) for p in finished)
    return cap, out


# -- outputs that cannot be written ---------------------------------------------------------------------------

def test_out_that_cannot_exist(finished, capsys):
    rc, err = _recon(capsys, *_fit_argv(finished[0], "/proc/recon-nope", "--no-bake"))
    assert rc == 2 and err == ["recon: error: /proc/recon-nope: No such file or directory"]


def test_out_that_is_a_file(finished, tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.write_text("mine")
    rc, err = _recon(capsys, *_fit_argv(finished[0], taken, "--no-bake"))
    assert rc == 2 and len(err) == 1, err
    assert err[0].startswith(f"recon: error: {taken}") and err[0].endswith("Not a directory")
    assert taken.read_text() == "mine"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_out_in_a_read_only_folder(finished, tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        rc, err = _recon(capsys, *_fit_argv(finished[0], ro / "job", "--no-bake"))
    finally:
        ro.chmod(0o755)
    assert rc == 2 and len(err) == 1 and str(ro / "job") in err[0] and "Permission denied" in err[0], err
    assert list(ro.iterdir()) == []


@pytest.mark.parametrize("exc", [PermissionError(errno.EACCES, "Permission denied", "/lib/out"),
                                 OSError(errno.ENOSPC, "No space left on device", "/lib/out/x.glb")],
                         ids=["permission", "disk-full"])
def test_os_errors_name_the_path(exc, tmp_path, capsys, monkeypatch):
    def fail(*a, **k):
        raise exc

    monkeypatch.setattr("recon.pipeline.fit", fail)
    rc, err = _recon(capsys, "fit", "--data", tmp_path)
    assert rc == 2 and err == [f"recon: error: {exc.filename}: {exc.strerror}"]


# -- anything else: one line, the traceback in a log file ---------------------------------------------------

@pytest.mark.parametrize("exc", [ZeroDivisionError("kaboom\nsecond line"), OSError(errno.EIO, "kaboom")],
                         ids=["bug", "io-error"])
def test_internal_error_is_one_line_with_a_traceback_file(exc, tmp_path, capsys, monkeypatch):
    def fail(*a, **k):
        raise exc

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr("recon.pipeline.fit", fail)
    rc, err = _recon(capsys, "fit", "--data", tmp_path)
    assert rc == 1 and len(err) == 1, err
    m = re.fullmatch(rf"recon: internal error: {type(exc).__name__}: .*kaboom \(traceback in (.+)\)", err[0])
    assert m, err
    log = Path(m[1])
    assert log.parent == tmp_path / "home" / ".recon" / "logs"
    assert "Traceback" in log.read_text() and "kaboom" in log.read_text()
    rc, err = _recon(capsys, "fit", "--data", tmp_path, "--verbose")
    assert rc == 1 and err[0].startswith("Traceback") and err[-1].startswith("recon: internal error:")


# -- a damaged job on --resume, a missing encoder ------------------------------------------------------------

def _corrupt_eval(cap: Path, out: Path) -> tuple[Path, list]:
    (out / "fit" / "eval.json").write_text('{"psnr": 3')
    return out / "fit" / "eval.json", []


def _corrupt_capture(cap: Path, out: Path) -> tuple[Path, list]:
    (cap / "capture.json").write_text("[1, 2]")
    return cap / "capture.json", []


def _truncated_checkpoint(cap: Path, out: Path) -> tuple[Path, list]:
    ckpt = sorted((out / "fit" / "checkpoints").glob("step_*.pt"))[-1]
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    return ckpt, ["--iterations", ITERATIONS + 10]  # an unfinished fit: resume loads the checkpoint


@pytest.mark.parametrize("damage", [_corrupt_eval, _corrupt_capture, _truncated_checkpoint],
                         ids=["eval.json", "capture.json", "checkpoint"])
def test_corrupt_job_files_on_resume(job, damage, capsys):
    cap, out = job
    named, extra = damage(cap, out)
    before = _files(out)
    rc, err = _recon(capsys, *_fit_argv(cap, out, "--resume", "--no-bake", *extra))
    assert rc == 2 and len(err) == 1, err
    assert err[0].startswith(f"recon: error: {named}: corrupt file") and "--overwrite" in err[0], err
    assert _files(out) == before


def test_missing_video_encoder(job, capsys, monkeypatch):
    import av.container

    def no_encoder(self, codec, *a, **k):
        raise ValueError(f"unknown encoder {codec}")

    monkeypatch.setattr(av.container.OutputContainer, "add_stream", no_encoder)
    cap, out = job
    rc, err = _recon(capsys, *_fit_argv(cap, out, "--resume"))
    assert rc == 2 and len(err) == 1, err
    assert err[0].startswith("recon: error: turntable.mp4 needs an H.264 or MPEG-4 video encoder") and \
        "pip install" in err[0], err
    assert sorted(p.name for p in out.iterdir()) == ["fit"]  # no asset folder, no temporary one
