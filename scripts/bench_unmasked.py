"""An unmasked real capture end to end, graded against masks the run never saw.

    .venv/bin/python scripts/bench_unmasked.py [--scene dtu24] [--out out/bench-dtu24-unmasked]
        [--minutes 8] [--max-size 200]

DTU scan24 is read with its images and cameras only (``capture.masks=none``); the
automatic segmenter makes the masks, the fit adds the background field, the bake
keeps the subject's field alone. Printed, with a last JSON line:
  - the automatic masks' IoU against DTU's own masks (all 49 views);
  - the field's full-frame held-out PSNR (every 10th view held out: 5 views);
  - the baked asset's silhouettes against DTU's own masks on the held-out views.
The run is ``recon.fit`` with the same options as
``recon fit --data ../shared/data/dtu/scan24 --auto-masks --set capture.test_every=10 ...``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SCENES = {"dtu24": ROOT.parent / "shared" / "data" / "dtu" / "scan24"}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scene", default="dtu24", choices=sorted(SCENES))
    ap.add_argument("--out", default=None)
    ap.add_argument("--minutes", type=float, default=8.0)
    ap.add_argument("--max-size", type=int, default=200)
    ap.add_argument("--set", action="append", default=[], help="extra config overrides")
    args = ap.parse_args(argv)

    from recon import fit
    from recon.bake.preview import render
    from recon.capture.idr_reader import read_idr
    from recon.core.config import CaptureConfig
    from recon.eval.metrics import mask_iou

    src = SCENES[args.scene]
    out = Path(args.out or ROOT / "out" / f"bench-{args.scene}-unmasked")
    overrides = [f"capture.max_size={args.max_size}", "capture.test_every=10", "capture.masks=none",
                 "capture.segmenter=auto", f"fit.minutes={args.minutes}", *args.set]
    t0 = time.perf_counter()
    res = fit(src, out=out, overrides=overrides, overwrite=True)
    seconds = time.perf_counter() - t0

    # DTU's own masks, at the capture's size, never seen by the run
    truth = read_idr(src, CaptureConfig(max_size=args.max_size, test_every=10))
    cap_meta = json.loads((out / "capture" / "capture.json").read_text())
    from recon.capture.load import load_capture

    cap = load_capture(out / "capture", CaptureConfig(segmenter="none"))
    by_name = {f.name: i for i, f in enumerate(truth.frames)}
    auto_iou = [mask_iou(cap.masks[i], truth.masks[by_name[f.name]]) for i, f in enumerate(cap.frames)]

    from recon.bake.writers import read_mesh

    asset = read_mesh(next((out / "asset").glob("*.glb")))
    test = cap.split_indices("test")
    A = np.asarray(json.loads((out / "asset" / "metrics.json").read_text())["frame"]["asset_from_capture"])
    cams = cap.cameras[test].transformed(A @ np.linalg.inv(cap.normalization))
    views = render(asset, cams, lit=False)
    baked_iou = [mask_iou(v["alpha"] > 0.5, truth.masks[by_name[cap.frames[i].name]]) for i, v in zip(test, views)]
    m = res.metrics
    for i, v in zip(test, baked_iou):
        print(f"{cap.frames[i].name}: baked silhouette IoU vs DTU mask {v:.4f}")
    print(json.dumps({
        "scene": args.scene, "views": len(cap), "max_size": args.max_size, "minutes": args.minutes,
        "mask_method": cap_meta["meta"]["masks"]["method"], "mask_why": cap_meta["meta"]["masks"].get("why"),
        "auto_mask_iou_mean": round(float(np.mean(auto_iou)), 4), "auto_mask_iou_min": round(float(np.min(auto_iou)), 4),
        "psnr_heldout_field": round(m["psnr_heldout_field"], 3), "region": m["psnr_heldout_field_region"],
        "psnr_heldout_field_subject": round(m.get("psnr_heldout_field_subject", float("nan")), 3),
        "heldout_views": m["psnr_heldout_field_views"], "iterations": res.eval["iterations"],
        "baked_silhouette_iou_vs_dtu_mean": round(float(np.mean(baked_iou)), 4),
        "baked_silhouette_iou_vs_dtu_min": round(float(np.min(baked_iou)), 4),
        "psnr_heldout_baked": round(m["psnr_heldout_baked"], 3), "seconds": round(seconds, 1),
        "loadavg": [round(x, 2) for x in os.getloadavg()]}))


if __name__ == "__main__":
    main()
