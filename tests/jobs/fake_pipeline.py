"""A fast stand-in for capture -> fit -> bake, used by the ingestion tests through
``recon ingest --pipeline tests/jobs/fake_pipeline.py:run`` (workers load it by path).

It hashes the capture folder like a capture stage would, and writes an asset folder
(``tests/asset_factory.make_asset_folder``) whose provenance carries that hash and the
config's hash, so the library's same-capture-same-config rule applies as for real assets.

Control files in a capture folder steer it (they are left out of the hash):
- ``hold``: the first attempt writes its pid to ``hold.taken`` and then waits, to be
  killed by the test; later attempts run normally.
- ``fail_first``: the first attempt raises; later attempts run normally.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import sys
import time
from pathlib import Path

CONTROL = {"hold", "hold.taken", "fail_first", "fail.taken"}


def _factory():
    name = "recon_tests_asset_factory"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).parents[1] / "asset_factory.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


def source_hash(src: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in src.rglob("*") if p.is_file() and p.name not in CONTROL):
        h.update(f.relative_to(src).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def run(job, work_dir) -> Path:
    src, work = Path(job.source), Path(work_dir)
    with open(work / "attempts.txt", "a") as f:
        f.write(f"{os.getpid()}\n")
    if (src / "hold").exists() and not (src / "hold.taken").exists():
        (src / "hold.taken").write_text(str(os.getpid()))
        deadline = time.time() + 120
        while time.time() < deadline:
            time.sleep(0.05)
        raise RuntimeError("held job was never killed")
    if (src / "fail_first").exists() and not (src / "fail.taken").exists():
        (src / "fail.taken").write_text(str(os.getpid()))
        raise RuntimeError("injected failure on the first attempt")
    sh = source_hash(src)
    config_hash = hashlib.sha256(json.dumps([job.preset, list(job.overrides)]).encode()).hexdigest()[:16]
    tmp = work / "asset.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    _factory().make_asset_folder(tmp, name=job.name, seed=int(sh[:6], 16) % 997, source_hash=sh,
                                 config_hash=config_hash, kind="object", requested_subject=job.kind)
    out = work / "asset"
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out
