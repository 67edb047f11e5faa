"""Check motion masks on a real video: a cat walking in a living room, handheld camera.

    .venv/bin/python scripts/bench_cat_masks.py [--video ../shared/data/videos/cat-pikachu-0.mp4]
        [--sheet /tmp/cat_masks.png] [--cols 10]

Reads the video the way ``recon capture`` does (``read_video`` with the default
``CaptureConfig``: the selected frames), runs the "motion" segmenter, writes a contact
sheet of every frame with its mask overlaid (red tint + outline, frame name) for a person
to check, and prints per frame and overall automatic plausibility checks:

* one_blob: the mask is exactly one 8-connected blob, ignoring specks under 0.5% of the frame;
* borders_ok: it does not run along more than one image border for more than 30% of that border;
* coverage_ok: it covers 3%..60% of the frame.

These checks cannot tell a cat from a sofa-shaped blob: look at the sheet. The last line
is JSON: the fractions of frames passing each check and all of them, and the seconds taken.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VIDEO = ROOT.parent / "shared" / "data" / "videos" / "cat-pikachu-0.mp4"


def checks(mask: np.ndarray, speck: float = 0.005, edge_run: float = 0.3, lo: float = 0.03,
           hi: float = 0.6) -> dict:
    m = mask > 127
    h, w = m.shape
    n, labels, st, _ = cv2.connectedComponentsWithStats(m.astype(np.uint8), connectivity=8)
    blobs = int((st[1:, cv2.CC_STAT_AREA] >= speck * h * w).sum()) if n > 1 else 0
    edges = [m[0].mean(), m[-1].mean(), m[:, 0].mean(), m[:, -1].mean()]
    touching = int(sum(e > edge_run for e in edges))
    cover = float(m.mean())
    out = {"blobs": blobs, "edges_touched": touching, "coverage": round(cover, 4),
           "one_blob": blobs == 1, "borders_ok": touching <= 1, "coverage_ok": lo <= cover <= hi}
    out["ok"] = out["one_blob"] and out["borders_ok"] and out["coverage_ok"]
    return out


def contact_sheet(images: list[np.ndarray], masks: list[np.ndarray], names: list[str], cols: int,
                  thumb_w: int = 192) -> np.ndarray:
    tiles = []
    for img, m, name in zip(images, masks, names):
        h, w = img.shape[:2]
        s = thumb_w / w
        t = cv2.resize(img, (thumb_w, max(1, round(h * s))), interpolation=cv2.INTER_AREA)[..., ::-1].copy()  # BGR
        mm = cv2.resize(m, t.shape[1::-1], interpolation=cv2.INTER_NEAREST) > 127
        t[mm] = (0.55 * t[mm] + 0.45 * np.array([0, 0, 255])).astype(np.uint8)
        cnts, _ = cv2.findContours(mm.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(t, cnts, -1, (0, 255, 255), 1)
        cv2.putText(t, name, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(t)
    th, tw = tiles[0].shape[:2]
    rows = -(-len(tiles) // cols)
    sheet = np.zeros((rows * (th + 2), cols * (tw + 2), 3), np.uint8)
    for k, t in enumerate(tiles):
        r, c = divmod(k, cols)
        sheet[r * (th + 2):r * (th + 2) + t.shape[0], c * (tw + 2):c * (tw + 2) + t.shape[1]] = t
    return sheet


def main() -> None:
    from recon.capture.segment import segment_capture
    from recon.capture.video_reader import read_video
    from recon.core.config import CaptureConfig

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--video", type=Path, default=VIDEO)
    ap.add_argument("--sheet", type=Path, default=Path("/tmp/cat_masks.png"))
    ap.add_argument("--cols", type=int, default=10)
    args = ap.parse_args()

    cap = read_video(args.video, CaptureConfig())
    t0 = time.perf_counter()
    out = segment_capture(cap, "motion")
    dt = time.perf_counter() - t0
    res = [checks(m) for m in out.masks]
    for f, r in zip(out.frames, res):
        print(f"{f.name}  blobs {r['blobs']}  edges {r['edges_touched']}  coverage {r['coverage']:.3f}  "
              f"{'ok' if r['ok'] else 'CHECK'}")
    args.sheet.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.sheet), contact_sheet(out.images, out.masks, [f.name for f in out.frames], args.cols))
    n = len(res)
    summary = {"video": str(args.video), "frames": n, "size": list(cap.images[0].shape[1::-1]),
               "one_blob": round(sum(r["one_blob"] for r in res) / n, 4),
               "borders_ok": round(sum(r["borders_ok"] for r in res) / n, 4),
               "coverage_ok": round(sum(r["coverage_ok"] for r in res) / n, 4),
               "all_ok": round(sum(r["ok"] for r in res) / n, 4),
               "seeded_frames": out.meta["masks"].get("seeded_frames"),
               "sheet": str(args.sheet), "seconds": round(dt, 2)}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
