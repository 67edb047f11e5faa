"""``recon ingest`` end to end: a manifest of 4 small synthetic captures, a worker killed mid-job,
reruns, and exactly 4 assets whose blobs all verify. Local process pool and a real Ray
cluster (``ray start --head`` on loopback), each on SQLite and PostgreSQL.

The kill/rerun test runs the real per-job pipeline (``recon.jobs.pipeline.run_pipeline``:
``recon.pipeline.fit``, capture -> fit -> bake) on 4 tiny ``recon.synth`` captures with tiny
settings (``REAL_OVERRIDES``: a few hundred iterations of a small hash grid, a 32^3 bake; a
job costs a few seconds plus its worker's imports). The worker running thing2 is frozen
(SIGSTOP) as soon as its fit has written its first checkpoint, checked to be mid-job (no
eval.json, no asset), then killed (SIGKILL): no timing window to hit. Its rerun resumes the
fit from that checkpoint. ``RECON_TEST_FAKE_PIPELINE=1`` swaps in the stand-in below for quick
local iteration.

The retry and stop tests use tests/jobs/fake_pipeline.py (a fast stand-in for capture -> fit
-> bake, injected with ``--pipeline``) because they need behaviour the real pipeline cannot
give on demand: a first attempt that raises (``fail_first``) and a worker held still until
the driver is stopped (``hold``). Everything else (CLI, manifest, catalogue, job state,
runners, worker processes, library add, blob store) is the real thing in every test.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from recon.cli import main
from recon.jobs import job_states
from recon.jobs.batch import default_work_root
from recon.library import Library

FAKE_PIPELINE = f"{Path(__file__).with_name('fake_pipeline.py')}:run"
REAL = os.environ.get("RECON_TEST_FAKE_PIPELINE") != "1"  # the kill/rerun test's pipeline
# Tiny settings for the real pipeline: ~300 iterations of a small hash grid fit the sphere well
# enough for the bake to find its surface (too few give "no surface at level"); a checkpoint
# every 100 iterations gives the kill a point to wait for and the rerun one to resume from.
REAL_ITERATIONS, REAL_CHECKPOINT_EVERY = 300, 100
REAL_OVERRIDES = [f"fit.iterations={REAL_ITERATIONS}", f"fit.checkpoint_every={REAL_CHECKPOINT_EVERY}",
                  "fit.batch_rays=256", "field.grid.n_levels=8", "field.grid.log2_hashmap_size=14",
                  "field.grid.max_resolution=128", "render.grid_resolution=32", "render.samples_per_ray=64",
                  "bake.resolution=32", "bake.texture_size=64", "bake.target_triangles=500", "bake.preview_size=64",
                  "bake.turntable_frames=4", "bake.refine_steps=20"]


def make_captures(root: Path, n: int = 4, real: bool = False) -> list[Path]:
    """``n`` small synthetic captures (distinct content, so distinct source hashes): ``real``,
    recon capture folders rendered by ``recon.synth``; else a few random frames (fake pipeline)."""
    caps = []
    for i in range(n):
        cap = root / f"cap{i}"
        if real:
            import trimesh

            from recon.synth import synth_capture

            mesh = root / f"mesh{i}.ply"
            trimesh.creation.icosphere(subdivisions=2, radius=1.0 + 0.2 * i).export(mesh)
            synth_capture(mesh, cap, views=8, test_views=2, size=32, seed=i)
            # No ground truth: the bake would score it (Chamfer on 2 x 100k points, ~8 s a job here).
            (cap / "gt_mesh.ply").unlink(missing_ok=True)
            mesh.unlink()
        else:
            (cap / "frames").mkdir(parents=True)
            rng = np.random.default_rng(i)
            for f in range(3):
                Image.fromarray(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)).save(cap / "frames" / f"r_{f}.png")
        caps.append(cap)
    return caps


def write_manifest(path: Path, caps: list[Path], real: bool = False) -> Path:
    entries = [{"source": c.name, "name": f"thing{i}", "tags": [f"t{i}"]} for i, c in enumerate(caps)]
    defaults = {"kind": "object", "preset": "object-fast", "tags": ["batch"]}
    if real:
        defaults["set"] = REAL_OVERRIDES
    path.write_text(yaml.safe_dump({"defaults": defaults, "captures": entries}))
    return path


def ingest_argv(manifest, catalog_url, store_dir, runner, retries, address=None, real=False) -> list[str]:
    argv = ["ingest", str(manifest), "--library", catalog_url, "--store", str(store_dir), "--runner", runner,
            "--workers", "2", "--retries", str(retries), "--quiet"]
    if not real:
        argv += ["--pipeline", FAKE_PIPELINE]
    return argv + (["--address", address] if address else [])


class Background(threading.Thread):
    """``recon.cli.main(argv)`` in a thread, so the test can kill a worker meanwhile."""

    def __init__(self, argv):
        super().__init__(daemon=True)
        self.argv, self.rc, self.error = argv, None, None

    def run(self):
        try:
            self.rc = main(self.argv)
        except BaseException as exc:  # reported by the test
            self.error = exc


def wait_for_file(path: Path, timeout: float, run: Background) -> str:
    deadline = time.time() + timeout
    while not path.exists() or not path.read_text():
        assert run.is_alive(), f"the ingest run ended (rc={run.rc}, error={run.error!r}) before {path} appeared"
        assert time.time() < deadline, f"{path} did not appear in {timeout}s"
        time.sleep(0.05)
    return path.read_text()


def _proc_state(pid: int) -> str | None:
    """The state letter of ``pid`` in /proc (R, S, T: stopped, Z, ...), None when it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def freeze_worker_mid_fit(catalog_url, manifest: Path, name: str, run: Background,
                          timeout: float = 600) -> tuple[int, Path, list[str]]:
    """Find the worker running job ``name`` (the catalogue records its pid), wait until its fit
    has written a checkpoint, freeze it (SIGSTOP) and check it is mid-job: the fit unfinished
    (no eval.json) and no asset. Returns its pid, its work folder and the checkpoints it left.
    Frozen, it cannot move on between the check and the kill, so no timing window is involved."""
    deadline = time.time() + timeout
    # The catalogue is read only once the job's worker has made its work folder (the batch is
    # registered by then): the ingest run creates the catalogue, and this waits for it.
    work_root = default_work_root(manifest)
    while not any(work_root.glob(f"{name}-*")):
        assert run.is_alive(), f"the ingest run ended (rc={run.rc}, error={run.error!r}) before {name} started"
        assert time.time() < deadline, f"{name} never started"
        time.sleep(0.05)
    while True:
        st = next(s for s in job_states(catalog_url, manifest) if s.name == name)
        if st.status == "running" and st.work_dir and st.worker:
            break
        assert st.status in ("queued", "running"), f"{name} ended before it was killed: {st}"
        assert run.is_alive() and time.time() < deadline, f"{name}'s worker never recorded itself"
        time.sleep(0.1)
    pid, work = int(st.worker.rsplit(":", 1)[1]), Path(st.work_dir)
    fit_dir = work / "fit"
    while not any((fit_dir / "checkpoints").glob("step_*.pt")):
        assert not (fit_dir / "eval.json").exists(), f"{name}'s fit finished without a checkpoint"
        assert _proc_state(pid) not in (None, "Z"), f"worker {pid} of {name} ended before its first checkpoint"
        assert run.is_alive() and time.time() < deadline, f"{name} wrote no checkpoint in {timeout}s"
        time.sleep(0.01)
    os.kill(pid, signal.SIGSTOP)
    while _proc_state(pid) != "T":  # the signal is delivered asynchronously
        assert _proc_state(pid) not in (None, "Z"), f"worker {pid} of {name} ended"
        time.sleep(0.005)
    checkpoints = sorted(p.name for p in (fit_dir / "checkpoints").glob("step_*.pt"))
    assert not (fit_dir / "eval.json").exists() and not (work / "asset").exists(), \
        f"{name} got past its fit before its worker was frozen"
    return pid, work, checkpoints


# each runner and each catalogue once (all four pairs cost a minute more of the suite's 15; the catalogues'
# own crash safety is tested on both in tests/library/test_crash.py)
@pytest.mark.parametrize("runner,catalog_url", [("local", "postgresql"), ("ray", "sqlite")], indirect=["catalog_url"])
def test_kill_a_worker_then_rerun_gives_exactly_four_verified_assets(runner, catalog_url, store_dir, tmp_path,
                                                                      request):
    cluster = request.getfixturevalue("ray_cluster") if runner == "ray" else None
    address = cluster.address if cluster else None
    caps = make_captures(tmp_path, real=REAL)
    if not REAL:
        (caps[2] / "hold").touch()  # its first attempt waits to be killed (fake pipeline)
    manifest = write_manifest(tmp_path / "batch.yaml", caps, real=REAL)

    def argv(retries: int, address: str | None) -> list[str]:
        return ingest_argv(manifest, catalog_url, store_dir, runner, retries=retries, address=address, real=REAL)

    first = Background(argv(0, address))
    first.start()
    # Kill the worker process running thing2, mid-job: the real pipeline's once its fit has
    # written a checkpoint (frozen first, see freeze_worker_mid_fit); the fake one holds the
    # job and names its pid.
    if REAL:
        pid, work2, checkpoints = freeze_worker_mid_fit(catalog_url, manifest, "thing2", first)
    else:
        pid = int(wait_for_file(caps[2] / "hold.taken", timeout=120, run=first))
    assert pid != os.getpid()
    os.kill(pid, signal.SIGKILL)
    first.join(timeout=900)
    assert not first.is_alive() and first.error is None, first.error
    states = {s.name: s for s in job_states(catalog_url, manifest)}
    assert first.rc == 1  # one job failed
    held = states["thing2"]
    assert (held.status, held.attempts) == ("failed", 1)
    assert "worker died" in held.error, held.error
    assert all(states[f"thing{i}"].status == "done" for i in (0, 1, 3))
    with Library(catalog_url) as lib:
        assert len(lib) == 3 and lib.verify().ok
    if REAL:  # the killed attempt left its checkpoints and nothing after them
        assert sorted(p.name for p in (work2 / "fit" / "checkpoints").glob("step_*.pt")) == checkpoints
        assert not (work2 / "fit" / "eval.json").exists() and not (work2 / "asset").exists()

    # Rerun: done jobs are skipped, the killed one gets its second attempt. With Ray on SQLite,
    # through the `recon` command in a new process connected as a Ray Client (ray://): a client
    # session costs ~10 s of start-up, so once is enough (it does not depend on the catalogue).
    via_client = cluster is not None and not catalog_url.startswith("postgresql")
    rerun = argv(1, cluster.client_address if via_client else address)
    if via_client:
        res = subprocess.run([sys.executable, "-m", "recon", *rerun], capture_output=True, text=True, timeout=600,
                             env={**os.environ, **cluster.env})
        assert res.returncode == 0, res.stdout + res.stderr
        assert "4/4 done" in res.stdout
    else:
        assert main(rerun) == 0
    after = {s.name: s for s in job_states(catalog_url, manifest)}
    assert all(s.status == "done" for s in after.values())
    assert after["thing2"].attempts == 2
    for name in ("thing0", "thing1", "thing3"):
        assert after[name].attempts == states[name].attempts and after[name].asset_id == states[name].asset_id
    # And once more: nothing left to do.
    assert main(argv(1, address)) == 0
    assert [s.attempts for s in job_states(catalog_url, manifest)] == [s.attempts for s in after.values()]

    with Library(catalog_url) as lib:
        assets = lib.find()
        assert sorted(a.name for a in assets) == ["thing0", "thing1", "thing2", "thing3"]
        assert all(a.version == 1 for a in assets)
        assert {a.id for a in assets} == {s.asset_id for s in after.values()}
        assert set(lib.get("thing1").tags) == {"batch", "t1"}
        assert len({a.source_hash for a in assets}) == 4
        if REAL:  # real assets: a baked mesh with a texture, from the fit of that job's capture
            for a in assets:
                assert {"glb", "obj", "ply", "texture", "thumb", "turntable", "report"} <= {f.role for f in a.files}
                assert a.file("glb").size > 0
                assert a.metrics["triangles"] > 0 and a.metrics["fit"]["iterations"] == REAL_ITERATIONS
                assert a.provenance["source_path"] == str(caps[int(a.name[-1])].resolve())
        report = lib.verify()
        assert report.ok and report.blobs_checked > 0
    for s in after.values():  # per-job logs in per-job work folders
        log = Path(s.log_path).read_text()
        assert f"job {s.name}" in log and "done" in log
        assert Path(s.work_dir).parent == tmp_path / "batch-work"
        if REAL:  # the killed job's second attempt resumed its fit from the last checkpoint it wrote
            resumed = json.loads((Path(s.work_dir) / "fit" / "eval.json").read_text())["resumed_from"]
            if s.name == "thing2":
                assert resumed is not None and Path(resumed).name == checkpoints[-1], (resumed, checkpoints)
            else:
                assert resumed is None


def test_failed_jobs_retry_up_to_retries_across_reruns(catalog_url, store_dir, tmp_path, capsys):
    caps = make_captures(tmp_path, n=1)
    (caps[0] / "fail_first").touch()  # the first attempt raises
    manifest = write_manifest(tmp_path / "one.yaml", caps)
    argv = lambda retries: ingest_argv(manifest, catalog_url, store_dir, "local", retries)  # noqa: E731
    assert main(argv(0)) == 1
    [st] = job_states(catalog_url, manifest)
    assert (st.status, st.attempts) == ("failed", 1) and "injected failure" in st.error
    assert "RuntimeError: injected failure" in Path(st.log_path).read_text()  # traceback in the job log
    assert main(argv(0)) == 1  # no attempts left: not run again
    assert job_states(catalog_url, manifest)[0].attempts == 1
    capsys.readouterr()
    assert main(["ingest", "status", str(manifest), "--library", catalog_url, "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["summary"] == {"queued": 0, "running": 0, "done": 0, "failed": 1, "total": 1}
    assert status["jobs"][0]["error"].startswith("RuntimeError: injected failure")
    assert main(argv(1)) == 0  # one retry allowed now
    [st] = job_states(catalog_url, manifest)
    assert (st.status, st.attempts) == ("done", 2) and st.error is None
    capsys.readouterr()
    assert main(["ingest", "status", "--library", catalog_url]) == 0
    out = capsys.readouterr().out
    assert "1/1 done" in out and "thing0" in out


def test_stopping_the_ingest_run_stops_its_workers_and_leaves_jobs_retryable(catalog_url, store_dir, tmp_path):
    caps = make_captures(tmp_path, n=1)
    (caps[0] / "hold").touch()
    manifest = write_manifest(tmp_path / "stop.yaml", caps)
    argv = ingest_argv(manifest, catalog_url, store_dir, "local", retries=1)
    proc = subprocess.Popen([sys.executable, "-m", "recon", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.time() + 120
    while not (caps[0] / "hold.taken").exists() or not (caps[0] / "hold.taken").read_text():
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.05)
    worker = int((caps[0] / "hold.taken").read_text())
    proc.terminate()  # SIGTERM to the driver, as a scheduler or `kill` would
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    deadline = time.time() + 30
    while Path(f"/proc/{worker}").exists():  # its worker went with it
        assert time.time() < deadline, f"worker {worker} still running"
        time.sleep(0.1)
    [st] = job_states(catalog_url, manifest)
    assert (st.status, st.attempts) == ("failed", 1) and "interrupted" in st.error
    assert main(argv) == 0  # the rerun finishes it
    assert job_states(catalog_url, manifest)[0].status == "done"
