"""Benchmark automatic static-subject masks against a dataset's own masks.

    .venv/bin/python scripts/bench_masks.py --scene dtu24 [--max-size 400] [--views N]

Prints per-view IoU and a last JSON line: mean/min IoU, seconds, load average.
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


def load(scene: str, max_size: int, views: int | None):
    from recon.capture.idr_reader import read_idr
    from recon.core.config import CaptureConfig

    path = SCENES[scene]
    cap = read_idr(path, CaptureConfig(masks="none", max_size=max_size, test_every=0))
    gt = read_idr(path, CaptureConfig(max_size=max_size, test_every=0)).masks
    if views is not None and views < len(cap.images):
        idx = np.unique(np.linspace(0, len(cap.images) - 1, views).round().astype(int))
        cap = cap.subset(idx) if hasattr(cap, "subset") else _subset(cap, idx)
        gt = [gt[i] for i in idx]
    return cap, gt


def _subset(cap, idx):
    from dataclasses import replace

    return replace(cap, images=[cap.images[i] for i in idx], cameras=cap.cameras[idx],
                   frames=[cap.frames[i] for i in idx], masks=None)


def iou(a, b):
    a, b = a > 127, b > 127
    u = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / u) if u else 1.0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scene", default="dtu24", choices=sorted(SCENES))
    ap.add_argument("--max-size", type=int, default=400)
    ap.add_argument("--views", type=int, default=None)
    ap.add_argument("--no-hull", action="store_true")
    ap.add_argument("--hull-agree", type=float, default=0.9)
    ap.add_argument("--save", default=None, help="folder to write the masks into")
    args = ap.parse_args(argv)

    from recon.capture.auto_masks import static_subject_masks

    cap, gt = load(args.scene, args.max_size, args.views)
    t0 = time.perf_counter()
    masks, stats = static_subject_masks(cap, hull=not args.no_hull, hull_agree=args.hull_agree)
    secs = time.perf_counter() - t0
    ious = [iou(m, g) for m, g in zip(masks, gt)]
    for i, (f, v) in enumerate(zip(cap.frames, ious)):
        agree = stats["hull_agreement"][i] if stats.get("hull_agreement") else float("nan")
        print(f"{f.name:>8s}  iou {v:.4f}  fg {stats['fg_fraction'][i]:.3f}  gt_fg {(gt[i] > 127).mean():.3f}"
              f"  hull_agree {agree:.3f}")
    if args.save:
        import cv2

        out = Path(args.save)
        out.mkdir(parents=True, exist_ok=True)
        for f, m in zip(cap.frames, masks):
            cv2.imwrite(str(out / f"{f.name}.png"), m)
    print(json.dumps({"scene": args.scene, "views": len(ious), "max_size": args.max_size,
                      "mean_iou": round(float(np.mean(ious)), 4), "min_iou": round(float(np.min(ious)), 4),
                      "median_iou": round(float(np.median(ious)), 4), "seconds": round(secs, 2),
                      "method": stats["method"], "n_points": stats["n_points"],
                      "n_points_used": stats["n_points_used"], "hull": not args.no_hull,
                      "n_hull_fixed": stats.get("n_hull_fixed"),
                      "loadavg": [round(x, 2) for x in os.getloadavg()]}))


if __name__ == "__main__":
    main()
