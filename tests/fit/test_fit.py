"""End-to-end fits on tiny analytic captures (torch backend, CPU, a few hundred iterations)."""
import json

import numpy as np
import pytest

from recon.core.config import load_config
from recon.fit.api import fit, load_field, load_model

TINY = ["backend=torch", "fit.batch_rays=512", "field.grid.n_levels=8", "field.grid.log2_hashmap_size=14",
        "field.grid.base_resolution=8", "field.grid.max_resolution=128", "render.grid_resolution=32",
        "render.samples_per_ray=96", "render.occ_update_every=8", "render.occ_warmup=32", "fit.warmup=20",
        "fit.checkpoint_every=0", "fit.log_every=10", "fit.lr_final_factor=0.3"]


@pytest.fixture(scope="module")
def cap(sphere_capture):
    return sphere_capture(n_train=16, n_test=3, size=32)


def test_density_fit_psnr_rises_and_writes_outputs(cap, tmp_path):
    cfg = load_config("object-fast", overrides=TINY + ["field.kind=density", "fit.iterations=150"])
    res = fit(cap, out=tmp_path, config=cfg)
    fit_dir = tmp_path / "fit"
    ev = json.loads((fit_dir / "eval.json").read_text())
    for key in ("psnr", "ssim", "n_views", "train_seconds", "iterations", "rays_per_second", "backend"):
        assert key in ev
    assert ev == res.eval
    assert ev["iterations"] == 150 and ev["n_views"] == 3 and ev["backend"] == "torch"
    assert ev["psnr"] > 22.0, ev["psnr"]  # an untrained field scores ~8 dB on this capture
    assert ev["mask_iou"] > 0.85
    log = [json.loads(line) for line in (fit_dir / "log.jsonl").read_text().splitlines()]
    assert log[0]["psnr"] < log[-1]["psnr"]
    assert (fit_dir / "config.yaml").is_file() and list((fit_dir / "renders").glob("*.png"))
    field = load_field(tmp_path)
    import torch

    centre, far = field.density(torch.zeros(1, 3)), field.density(torch.tensor([[0.9, 0.9, 0.9]]))
    assert centre.item() > far.item()


def test_resume_continues_iteration_count(cap, tmp_path):
    base = TINY + ["field.kind=density", "fit.batch_rays=256"]
    fit(cap, out=tmp_path, config=load_config("object-fast", overrides=base + ["fit.iterations=20"]))
    from recon import fit as recon_fit  # the documented entry point: the package is callable

    res = recon_fit(cap, out=tmp_path, config=load_config("object-fast", overrides=base + ["fit.iterations=30"]),
                    resume=True, bake=False)
    assert res.eval["iterations"] == 30
    assert res.eval["resumed_from"].endswith("step_0000020.pt")
    log = [json.loads(line) for line in (tmp_path / "fit" / "log.jsonl").read_text().splitlines()]
    its = [r["iteration"] for r in log if "iteration" in r and "event" not in r]
    assert its == [10, 20, 30]  # the second run went on from 20, not from 0
    assert sorted(p.name for p in (tmp_path / "fit" / "checkpoints").iterdir()) == \
        ["step_0000020.pt", "step_0000030.pt"]


def test_sdf_fit_surface_near_ground_truth(cap, tmp_path):
    import trimesh

    from recon.eval.mesh_extract import extract_mesh
    from recon.eval.metrics import mesh_chamfer_fscore

    cfg = load_config("object-fast", overrides=TINY + [
        "field.kind=sdf", "fit.iterations=120", "fit.batch_rays=256", "field.sdf_init_radius=0.3",
        "field.coarse_to_fine=0.3", "field.coarse_to_fine_start=4"])
    res = fit(cap, out=tmp_path, config=cfg)
    model = load_model(tmp_path)
    mesh = extract_mesh(model.field, resolution=64, occupancy=model.grid.binary)
    gt = trimesh.creation.icosphere(4, radius=0.5)
    m = mesh_chamfer_fscore(mesh, gt, threshold=0.02, n_points=20000)
    # starts as a sphere of radius 0.3 (Chamfer 0.2); the fit must move it onto the radius-0.5 sphere
    assert m["chamfer"] < 0.02, m
    assert res.eval["psnr"] > 18.0
    assert np.isfinite(res.eval["ssim"])


def test_cli_fit_on_capture_folder(cap, tmp_path, capsys):
    from recon.capture.capture_writer import write_capture_folder
    from recon.cli import main

    folder = tmp_path / "sphere"
    folder.mkdir()
    write_capture_folder(cap, folder)
    args = ["fit", "--data", str(folder), "--out", str(tmp_path / "job"), "--iterations", "20", "--backend", "torch",
            "--quiet", "--seed", "3", "--no-bake"]
    for o in TINY + ["fit.batch_rays=256"]:
        args += ["--set", o]
    assert main(args) == 0
    assert "PSNR" in capsys.readouterr().out
    ev = json.loads((tmp_path / "job" / "fit" / "eval.json").read_text())
    assert ev["iterations"] == 20 and ev["n_views"] == 3
    cfg_text = (tmp_path / "job" / "fit" / "config.yaml").read_text()
    assert "seed: 3" in cfg_text and "iterations: 20" in cfg_text


def test_cli_fit_bad_input_is_one_line(tmp_path, capsys):
    from recon.cli import main

    assert main(["fit", "--data", str(tmp_path / "missing"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing" in err[0]


def test_fresh_fit_replaces_an_earlier_one(cap, tmp_path):
    base = TINY + ["field.kind=density", "fit.batch_rays=128"]
    fit(cap, out=tmp_path, config=load_config("object-fast", overrides=base + ["fit.iterations=20"]))
    fit(cap, out=tmp_path, config=load_config("object-fast", overrides=base + ["fit.iterations=10"]))
    assert [p.name for p in (tmp_path / "fit" / "checkpoints").iterdir()] == ["step_0000010.pt"]
    log = [json.loads(line) for line in (tmp_path / "fit" / "log.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in log] == [10]


def test_fit_backend_is_scoped(cap, tmp_path, monkeypatch):
    """The config's backend holds during the fit only: the caller's is back afterwards, also on errors."""
    from recon.fit.trainer import Trainer
    from recon.ops.backend import get_backend, use_backend

    cfg = load_config("object-fast", overrides=TINY + ["field.kind=density", "fit.iterations=4",
                                                       "fit.batch_rays=128"])
    with use_backend("cpp"):
        assert fit(cap, out=tmp_path / "ok", config=cfg).eval["backend"] == "torch"
        assert get_backend() == "cpp"
    before = get_backend()
    seen = []

    def failing_step(self):
        seen.append(get_backend())
        raise RuntimeError("step failed")

    monkeypatch.setattr(Trainer, "step", failing_step)
    with pytest.raises(RuntimeError, match="step failed"):
        fit(cap, out=tmp_path / "fails", config=cfg)
    assert seen == ["torch"] and get_backend() == before
