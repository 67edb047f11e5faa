#!/usr/bin/env python
"""Make data/lego-50: the README demo's bundled sample, cut from the NeRF-synthetic lego.

    python scripts/make_lego_sample.py [--src ../shared/data/nerf_synthetic/lego] [--out data/lego-50]

50 train views (every 2nd of the 100) and 9 test views (every 3rd of the 25 held out),
area-resized from 800x800 to 200x200 RGBA PNGs (resized premultiplied, so edges do not
pick up the transparent pixels' colour), with the same transforms_{train,test}.json layout
(camera_angle_x does not change with the size). The lego is CC BY 3.0 (the NeRF authors).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]

LICENCE = """NeRF-synthetic "lego" scene, a 50-view 200x200 subset (train views r_0, r_2, ... r_98;
test views r_0, r_24, ... r_192), made with scripts/make_lego_sample.py.

Source: the NeRF synthetic dataset, Mildenhall et al., "NeRF: Representing Scenes as Neural
Radiance Fields for View Synthesis", ECCV 2020 (https://www.matthewtancik.com/nerf).
The lego model is by Heinzelnisse (https://www.blendswap.com/blend/11490).
Licence: Creative Commons Attribution 3.0 (CC BY 3.0), https://creativecommons.org/licenses/by/3.0/
Changes: views subsampled and images resized from 800x800 to 200x200.
"""


def resize_rgba(path: Path, size: int) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED).astype(np.float32) / 255.0  # BGRA
    a = img[..., 3:]
    pre = np.concatenate([img[..., :3] * a, a], -1)
    small = cv2.resize(pre, (size, size), interpolation=cv2.INTER_AREA)
    a = small[..., 3:]
    rgb = np.where(a > 1e-6, small[..., :3] / np.maximum(a, 1e-6), 0.0)
    return (np.clip(np.concatenate([rgb, a], -1), 0, 1) * 255 + 0.5).astype(np.uint8)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", default=str(ROOT.parent / "shared" / "data" / "nerf_synthetic" / "lego"))
    ap.add_argument("--out", default=str(ROOT / "data" / "lego-50"))
    ap.add_argument("--size", type=int, default=200)
    args = ap.parse_args(argv)
    src, out = Path(args.src), Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    for split, every in (("train", 2), ("test", 3)):
        meta = json.loads((src / f"transforms_{split}.json").read_text())
        frames = meta["frames"][::every]
        (out / split).mkdir(parents=True)
        for f in frames:
            name = Path(f["file_path"]).name
            cv2.imwrite(str(out / split / f"{name}.png"), resize_rgba(src / split / f"{name}.png", args.size),
                        [cv2.IMWRITE_PNG_COMPRESSION, 9])
        meta["frames"] = frames
        (out / f"transforms_{split}.json").write_text(json.dumps(meta, indent=1))
        print(f"{split}: {len(frames)} views")
    (out / "LICENSE.txt").write_text(LICENCE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
