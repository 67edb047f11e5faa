#!/usr/bin/env python
"""Neural-field fitting benchmarks at a fixed wall time.

    python scripts/bench_fit.py --scene lego  --minutes 5  [--backend auto|cpp|torch|cuda]
    python scripts/bench_fit.py --scene bunny --minutes 10
    python scripts/bench_fit.py --scene dtu24 --minutes 5

lego   NeRF-synthetic lego, 100 train views loaded at 200x200, evaluated on the 25
       test views at 200x200 over a white background (PSNR, SSIM), against the RGBA test
       images area-resized and composited with their real alpha (psnr; psnr_capture_gt is
       eval.json's figure against the capture's binary-mask composite). Preset object-fast.
dtu24  DTU scan 24 at 400x300, every 10th view held out (5 views: PSNR and SSIM inside
       the mask, mask IoU of the rendered opacity). Preset object-fast.
bunny  a recon synth capture of the Stanford bunny (256x256, 60 train + 10 test
       views), SDF preset object-quality; marching cubes of the SDF at 256^3, mapped
       back to the mesh's units, against the ground-truth mesh: Chamfer-L1 as a
       fraction of the ground-truth bounding-box diagonal and F-score at 1% of it.

The last line printed is one JSON object with the figures. Data come from
../shared/data beside the project (or --data-root).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SCENES = {
    "lego": {"data": "nerf_synthetic/lego", "preset": "object-fast", "set": ["capture.max_size=200"]},
    "dtu24": {"data": "dtu/scan24", "preset": "object-fast",
              "set": ["capture.max_size=400", "capture.test_every=10"]},
    "bunny": {"data": "meshes/bunny/bunny.ply", "preset": "object-quality", "set": []},
}


def bunny_capture(data_root: Path, work: Path) -> Path:
    """The synthetic bunny capture (made once, then reused from ``work``)."""
    from recon.synth import synth_capture

    cap_dir = work / "bunny_capture"
    if not (cap_dir / "transforms.json").is_file():
        synth_capture(data_root / SCENES["bunny"]["data"], cap_dir, views=60, test_views=10, size=256, seed=0,
                      overwrite=True)
    return cap_dir


def mesh_metrics(out: Path, cap_dir: Path, resolution: int = 256) -> dict:
    """Chamfer-L1 / F-score@1% (of the GT bbox diagonal) of the fitted SDF's zero level set, in mesh units."""
    import numpy as np
    import trimesh

    from recon.eval.mesh_extract import extract_mesh, to_original_units
    from recon.eval.metrics import mesh_chamfer_fscore
    from recon.fit.api import load_model

    model = load_model(out)
    mesh = extract_mesh(model.field, resolution=resolution, occupancy=model.grid.binary)
    mesh = to_original_units(mesh, model.field.normalization.cpu().numpy())
    gt = trimesh.load(cap_dir / "gt_mesh.ply", force="mesh")
    diag = float(np.linalg.norm(gt.bounds[1] - gt.bounds[0]))
    parts = mesh.split(only_watertight=False) if len(mesh.faces) else []
    res = {"bbox_diagonal": diag, "mesh_faces": int(len(mesh.faces)), "mesh_components": len(parts)}
    # raw marching cubes, and its largest connected piece (floater removal is the baker's job)
    largest = max(parts, key=lambda m: len(m.faces)) if len(parts) > 1 else mesh
    # and the baker's extraction (closed level set, small pieces dropped, holes filled)
    from recon.bake.extract import extract_surface
    from recon.bake.field_protocol import as_surface_field

    baked = extract_surface(as_surface_field(model.field), model.field.normalization.cpu().numpy(), resolution)
    for key, m in (("", mesh), ("_largest", largest), ("_baked", baked)):
        r = mesh_chamfer_fscore(m, gt, threshold=0.01 * diag, n_points=200_000)
        res[f"chamfer{key}"] = r["chamfer"] / diag
        res[f"fscore{key}"] = r["fscore"]
    return res


def lego_standard_metrics(out: Path, data: Path, size: int = 200) -> dict:
    """PSNR/SSIM against the usual NeRF-synthetic ground truth: each test RGBA image resized (area)
    to ``size`` and composited over white with its real alpha (the capture keeps binary masks only)."""
    import cv2
    import numpy as np
    import torch

    from recon import load_capture
    from recon.core.config import CaptureConfig
    from recon.core.imageio import read_image_rgba
    from recon.eval.metrics import psnr, ssim
    from recon.fit.api import load_model
    from recon.render.rays import CameraTensors, image_rays
    from recon.render.volume import render_image

    model = load_model(out)
    cap = load_capture(data, CaptureConfig(max_size=size))
    test = cap.split_indices("test")
    cams = CameraTensors.from_cameras(cap.cameras[test])
    ps, ss = [], []
    for k, i in enumerate(test):
        rgb, alpha = read_image_rgba(cap.frames[i].source)
        rgba = np.concatenate([rgb, alpha[..., None]], -1).astype(np.float32) / 255.0
        h, w = cap.images[i].shape[:2]
        rgba = cv2.resize(rgba, (w, h), interpolation=cv2.INTER_AREA)
        gt = rgba[..., :3] * rgba[..., 3:] + (1.0 - rgba[..., 3:])
        img = render_image(model.field, model.grid, image_rays(cams, k), model.step, model.max_steps,
                           torch.ones(3), h, w, model.cfg.render.chunk_rays)
        pred = img["rgb"].clamp(0, 1).numpy()
        ps.append(psnr(pred, gt))
        ss.append(ssim(pred, gt))
    return {"psnr": float(np.mean(ps)), "ssim": float(np.mean(ss)), "n_views": len(ps)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scene", choices=sorted(SCENES), required=True)
    ap.add_argument("--minutes", type=float, required=True, help="training wall time")
    ap.add_argument("--backend", default="auto", choices=["auto", "cpp", "torch", "cuda"])
    ap.add_argument("--out", help="work folder (default: out/bench_fit/<scene>)")
    ap.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--preset", help="override the scene's preset")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    from recon.core.log import setup_logging
    from recon.fit.api import fit
    from recon.ops.backend import build_status

    setup_logging(quiet=False)
    scene = SCENES[args.scene]
    data_root = Path(args.data_root)
    work = Path(args.out or ROOT / "out" / "bench_fit" / args.scene)
    work.mkdir(parents=True, exist_ok=True)
    data = bunny_capture(data_root, work) if args.scene == "bunny" else data_root / scene["data"]
    overrides = scene["set"] + [f"fit.minutes={args.minutes}", "fit.iterations=1000000", f"backend={args.backend}",
                                f"seed={args.seed}"] + args.overrides
    load = os.getloadavg()
    t0 = time.time()
    res = fit(data, out=work / "run", preset=args.preset or scene["preset"], overrides=overrides)
    ev = res.eval
    result = {"scene": args.scene, "backend": ev["backend"], "minutes": args.minutes,
              "iterations": ev["iterations"], "rays_per_second": ev["rays_per_second"],
              "psnr": round(ev["psnr"], 3), "ssim": round(ev["ssim"], 4), "n_views": ev["n_views"]}
    from recon.ops.backend import use_backend

    if args.scene == "lego":
        # eval.json compares with the capture's frames (binary masks); report the usual protocol too
        with use_backend(args.backend):  # the backend the fit used
            std = lego_standard_metrics(work / "run", data)
        result.update({"psnr_capture_gt": result["psnr"], "psnr": round(std["psnr"], 3),
                       "ssim": round(std["ssim"], 4), "n_views": std["n_views"]})
    if args.scene == "dtu24":
        result["iou"] = round(ev.get("mask_iou", float("nan")), 4)
    if args.scene == "bunny":
        with use_backend(args.backend):
            m = mesh_metrics(work / "run", data)
        result.update({k: (round(v, 5) if isinstance(v, float) else v) for k, v in m.items()})
    result.update({"train_seconds": ev["train_seconds"], "wall_seconds": round(time.time() - t0, 1),
                   "load_before": [round(x, 2) for x in load], "load_after": [round(x, 2) for x in os.getloadavg()],
                   "threads": build_status()["cpu_threads"], "out": str(work / "run")})
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
