#!/usr/bin/env python
"""Capture -> fit -> bake benchmarks: the baked asset's quality against ground truth and its field.

    python scripts/bench_bake.py --scene avocado   [--minutes 5] [--preset object-fast]
    python scripts/bench_bake.py --scene lego      [--minutes 5]
    python scripts/bench_bake.py --scene lego50    (the README demo's bundled sample)
    python scripts/bench_bake.py --scene lego50 --rebake [--rasterize-twin]   (bake the last fit again;
                                                    the twin times the compiled rasterizer's effect)

avocado  ../shared/data/meshes/avocado rendered by recon.synth at 256x256, 60 train + 10
         test views; the baked .glb rendered (unlit) at the held-out views against the
         ground-truth renders (PSNR), Chamfer-L1 / F-score@1% against the mesh as fractions of
         its bounding-box diagonal, Khronos glTF validator errors, and trimesh loading the
         .glb with its base-colour texture.
lego     NeRF-synthetic lego at 200x200 (100 train, 25 test): the baked mesh's PSNR on the
         held-out views it renders against the field's own PSNR on the same views.
lego50   data/lego-50 (50 train + 9 test views, 200x200), as the README demo runs it.

Each run is ``recon.pipeline.fit`` (what ``recon fit`` runs) into out/bench_bake/<scene>/job;
the last line printed is one JSON object with the figures, the wall time of every stage and
the machine's load.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def avocado_capture(data_root: Path, work: Path) -> Path:
    from recon.synth import synth_capture

    cap = work / "avocado_capture"
    if not (cap / "transforms.json").is_file():
        synth_capture(data_root / "meshes" / "avocado" / "avocado.gltf", cap, views=60, test_views=10, size=256,
                      seed=0, overwrite=True)
    return cap


def validate_glb(path: Path) -> dict:
    """The Khronos glTF validator's error and warning counts (tools/validate_gltf.mjs)."""
    node = shutil.which("node")
    if node is None or not (ROOT / "tools" / "node_modules").is_dir():
        return {"gltf_validator": "not installed (run scripts/setup.sh)"}
    res = subprocess.run([node, str(ROOT / "tools" / "validate_gltf.mjs"), str(path)], capture_output=True,
                         text=True, timeout=300)
    rep = json.loads(res.stdout.strip().splitlines()[-1])
    return {"gltf_errors": rep["numErrors"], "gltf_warnings": rep["numWarnings"]}


def trimesh_texture(path: Path) -> dict:
    """Whether trimesh (what Blender-compatible pipelines use in Python) loads the .glb with its texture."""
    import trimesh

    scene = trimesh.load(path)
    geoms = list(scene.geometry.values()) if isinstance(scene, trimesh.Scene) else [scene]
    mat = getattr(geoms[0].visual, "material", None)
    tex = getattr(mat, "baseColorTexture", None)
    return {"trimesh_meshes": len(geoms), "trimesh_texture": None if tex is None else list(tex.size),
            "trimesh_uv": bool(getattr(geoms[0].visual, "uv", None) is not None)}


def field_psnr_on(job: Path, frames: list[str]) -> float:
    """The field's mean PSNR (eval.json) over the named held-out frames."""
    import numpy as np

    views = {v["frame"]: v["psnr"] for v in json.loads((job / "fit" / "eval.json").read_text())["views"]}
    return float(np.mean([views[f] for f in frames]))


def heldout_frames(job: Path, data, n: int) -> list[str]:
    from recon import load_capture

    cap = load_capture(job / "capture" if (job / "capture").is_dir() else data)
    return [cap.frames[i].name for i in cap.split_indices("test")[:n]]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scene", choices=["avocado", "lego", "lego50"], required=True)
    ap.add_argument("--minutes", type=float, help="training wall time (default: the preset's)")
    ap.add_argument("--preset", default="object-fast")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--out", help="work folder (default: out/bench_bake/<scene>)")
    ap.add_argument("--rebake", action="store_true", help="keep the previous run's capture and fit; bake again")
    ap.add_argument("--rasterize-twin", action="store_true",
                    help="rasterize with the PyTorch twin instead of the compiled kernel (every other op as usual): "
                         "with --rebake, times the kernel's effect on the bake (refine_seconds)")
    ap.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data"))
    args = ap.parse_args(argv)

    import numpy as np
    import trimesh

    from recon.bake import HELDOUT_VIEWS
    from recon.core.log import setup_logging
    from recon.pipeline import fit

    setup_logging(quiet=False)
    data_root = Path(args.data_root)
    work = Path(args.out or ROOT / "out" / "bench_bake" / args.scene)
    work.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()
    t0 = time.time()
    if args.scene == "avocado":
        data = avocado_capture(data_root, work)
    elif args.scene == "lego":
        data = data_root / "nerf_synthetic" / "lego"
    else:
        data = ROOT / "data" / "lego-50"
    t_data = time.time() - t0
    overrides = list(args.overrides)
    if args.scene == "lego":
        overrides.append("capture.max_size=200")
    if args.minutes is not None:
        overrides.append(f"fit.minutes={args.minutes}")
    if args.rebake:
        shutil.rmtree(work / "job" / "asset", ignore_errors=True)
    if args.rasterize_twin:
        from recon.ops import backend

        compiled = backend.get_kernel
        backend.get_kernel = lambda op, device: None if op == "rasterize" else compiled(op, device)
    res = fit(data, out=work / "job", name=args.scene, preset=args.preset, overrides=overrides,
              resume=args.rebake, overwrite=not args.rebake)
    wall = time.time() - t0
    m, ev = res.metrics, res.eval
    glb = res.asset_dir / f"{args.scene}.glb"
    out = {"scene": args.scene, "preset": args.preset, "field": ev["field"], "iterations": ev["iterations"],
           "train_seconds": ev["train_seconds"], "field_psnr": round(ev["psnr"], 3),
           "baked_psnr": round(m["psnr_heldout_baked"], 3), "heldout_views": m["psnr_heldout_baked_views"],
           "triangles": m["triangles"], "watertight": m["watertight"], "texture_size": m["texture_size"],
           "uv_coverage": round(m["uv_coverage"], 4), "bake_seconds": m["bake_seconds"],
           "rasterize": "twin" if args.rasterize_twin else "kernel"}
    out.update({k: m[k] for k in ("refine_seconds", "refine_psnr_before", "refine_psnr_after") if k in m})
    frames = heldout_frames(res.out, data, HELDOUT_VIEWS)
    out["field_psnr_same_views"] = round(field_psnr_on(res.out, frames), 3)
    out["baked_minus_field"] = round(out["baked_psnr"] - out["field_psnr_same_views"], 3)
    if "chamfer" in m:
        gt = trimesh.load(data / "gt_mesh.ply", force="mesh")
        diag = float(np.linalg.norm(gt.bounds[1] - gt.bounds[0]))
        out.update(chamfer_pct_diag=round(100 * m["chamfer"] / diag, 4), fscore=round(m["fscore"], 4),
                   fscore_threshold_pct_diag=round(100 * m["fscore_threshold"] / diag, 3))
    baked = trimesh.load(glb, force="mesh")
    baked.merge_vertices(merge_tex=True, merge_norm=True)  # glTF splits vertices along UV seams
    out["components"] = int(len(np.unique(trimesh.graph.connected_component_labels(
        baked.face_adjacency, node_count=len(baked.faces)))))
    out.update(validate_glb(glb))
    out.update(trimesh_texture(glb))
    out.update({"data_seconds": round(t_data, 1), "wall_seconds": round(wall, 1),
                "load_before": [round(x, 2) for x in load], "load_after": [round(x, 2) for x in os.getloadavg()],
                "asset": str(res.asset_dir)})
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
