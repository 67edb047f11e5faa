"""Benchmark the prompt and motion segmenters on synthetic moving-subject videos.

    .venv/bin/python scripts/bench_segment_synth.py [--meshes avocado,bunny,pizza]
        [--backgrounds coffee,astronaut,chelsea] [--frames 30] [--methods prompt,motion] [--seed 0]

For each mesh x background: ``recon.synth.composite.moving_subject_video`` renders the
subject over the photo (256x192); "prompt" gets a box around frame 0's true mask (8 px
margin, like the tests), "motion" no prompt. Prints mean/min IoU against the rendered
truth and seconds per case, then a last JSON line with every case and the overall means.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MESHES = ROOT.parent / "shared" / "data" / "meshes"
MESH_FILES = {"avocado": "avocado/avocado.gltf", "bunny": "bunny/bunny.ply", "pizza": "pizza/pizza.obj"}


def iou(a: np.ndarray, b: np.ndarray) -> float:
    from recon.eval.metrics import mask_iou

    return mask_iou(a > 0, b > 0)


def main() -> None:
    from recon.capture.mask_ops import mask_box
    from recon.capture.segment import segment_capture
    from recon.synth.composite import SKIMAGE_PHOTOS, moving_subject_video

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--meshes", default="avocado,bunny,pizza")
    ap.add_argument("--backgrounds", default=",".join(SKIMAGE_PHOTOS))
    ap.add_argument("--methods", default="prompt,motion")
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    cases = []
    t_all = time.perf_counter()
    for mesh in args.meshes.split(","):
        path = MESHES / MESH_FILES.get(mesh, mesh)
        if not path.is_file():
            print(f"{mesh}: {path} not available, skipped")
            continue
        for bg in args.backgrounds.split(","):
            v = moving_subject_video(path, n_frames=args.frames, size=(256, 192), background=bg, seed=args.seed)
            for method in args.methods.split(","):
                opts = {"box": mask_box(v.true_masks[0])} if method == "prompt" else {}
                t0 = time.perf_counter()
                try:
                    out = segment_capture(v.capture, method, **opts)
                    ious = [iou(a, b) for a, b in zip(out.masks, v.true_masks)]
                    err = None
                except Exception as e:  # noqa: BLE001 - a benchmark reports and goes on
                    ious, err = [0.0] * len(v.true_masks), f"{type(e).__name__}: {e}"
                dt = time.perf_counter() - t0
                worst = int(np.argmin(ious))
                case = {"mesh": mesh, "background": bg, "method": method, "mean_iou": round(float(np.mean(ious)), 4),
                        "min_iou": round(float(np.min(ious)), 4), "worst_frame": worst, "seconds": round(dt, 2)}
                if err:
                    case["error"] = err
                cases.append(case)
                print(f"{mesh:8s} {bg:10s} {method:7s} mean IoU {case['mean_iou']:.4f}  min {case['min_iou']:.4f} "
                      f"(frame {worst:2d})  {dt:5.2f} s" + (f"  {err}" if err else ""), flush=True)

    summary = {"cases": cases, "frames": args.frames, "seed": args.seed,
               "seconds": round(time.perf_counter() - t_all, 1)}
    for method in args.methods.split(","):
        c = [x for x in cases if x["method"] == method]
        if c:
            summary[f"{method}_mean_iou"] = round(float(np.mean([x["mean_iou"] for x in c])), 4)
            summary[f"{method}_worst_case_mean_iou"] = round(float(min(x["mean_iou"] for x in c)), 4)
            summary[f"{method}_min_frame_iou"] = round(float(min(x["min_iou"] for x in c)), 4)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
