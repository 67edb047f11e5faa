"""Build recon/heads/data/mediapipe_embedding.npz: where each of MediaPipe's 478 face-mesh landmarks
sits on the ICT head topology (a face id and barycentrics), and how much it wanders.

Calibration by observation, with heads never used for evaluation (``recon.synth.heads`` seeds from
10000): each head is rendered from several near-frontal views, MediaPipe finds its landmarks, and the
surface point under each landmark (the rasterizer's face and barycentrics at that pixel) is carried to
the neutral face. Per landmark, the median of those points, snapped to the neutral surface, is its
embedding; ``spread`` (metres) is the RMS distance of the observations from it (contour points, which
slide with the view, and points that move with expression spread most), and ``noise`` (in face sizes:
the diagonal of the landmarks' box) the RMS distance in the image between where MediaPipe put each point
and where its embedding projects on the true head: the fit's per-point noise model.

    python scripts/make_landmark_embedding.py [--heads 24]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from recon.heads.landmarks import closest_surface_points
from recon.heads.model import load_head_model
from recon.heads.observe import NUM_LANDMARKS, FaceMeshDetector
from recon.ops.rasterize import rasterize
from recon.render.mesh_raster import screen_vertices
from recon.synth.heads import head_cameras, random_head, render_head

OUT = Path(__file__).resolve().parents[1] / "recon/heads/data/mediapipe_embedding.npz"
YAWS, PITCHES = (-30, -15, 0, 15, 30), (-8, 0, 8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--heads", type=int, default=24)
    ap.add_argument("--size", type=int, default=512)
    args = ap.parse_args()
    model = load_head_model()
    neutral = model.neutral.double()
    tri = neutral[model.faces]  # (F, 3, 3)
    points = [[] for _ in range(NUM_LANDMARKS)]
    rng = np.random.default_rng(7)
    seen, shots = 0, []  # shots: (head vertices, camera, its view, detected landmarks, face size)
    with FaceMeshDetector(max_faces=1) as det:
        for h in range(args.heads):
            head = random_head(10000 + h, model)
            yaws = np.array(YAWS) + rng.uniform(-4, 4, len(YAWS))
            cams = head_cameras(yaws, rng.choice(PITCHES, len(YAWS)), args.size)
            for i, view in enumerate(render_head(head, cams, model)):
                faces = det.detect((view["rgb"] * 255 + 0.5).astype(np.uint8))
                if not faces:
                    continue
                seen += 1
                shots.append((head.vertices, cams[[i]], faces[0].landmarks[:, :2], faces[0].size))
                sv = screen_vertices(torch.as_tensor(head.vertices), cams, i)
                fid, bary, _ = rasterize(sv, model.faces, args.size, args.size)
                xy = np.clip(np.round(faces[0].landmarks[:, :2] - 0.5).astype(int), 0, args.size - 1)
                for k, (x, y) in enumerate(xy):
                    f = int(fid[y, x])
                    if f >= 0:
                        points[k].append((bary[y, x].double()[:, None] * tri[f]).sum(0).numpy())
    print(f"{seen} detections from {args.heads} heads x {len(YAWS)} views")
    median = np.array([np.median(np.array(p), 0) for p in points])
    spread = np.array([np.sqrt(((np.array(p) - m) ** 2).sum(1).mean()) for p, m in zip(points, median)])
    emb = closest_surface_points(median, neutral.numpy(), model.faces.numpy())
    # how far MediaPipe lands from each embedded point, in face sizes (the fit's noise model)
    err = []
    for verts, cam, found, size in shots:
        sv = screen_vertices(emb.at(torch.as_tensor(verts), model.faces), cam, 0).numpy()
        err.append(np.linalg.norm(found - sv[:, :2], axis=1) / size)
    noise = np.sqrt((np.array(err) ** 2).mean(0))
    np.savez_compressed(OUT, face=emb.face, bary=emb.bary, noise=noise.astype(np.float32),
                        spread=spread.astype(np.float32), observations=np.array([len(p) for p in points]))
    print(f"wrote {OUT}: spread median {np.median(spread) * 1000:.1f} mm, max {spread.max() * 1000:.1f} mm; "
          f"noise median {np.median(noise):.4f}, min {noise.min():.4f}, max {noise.max():.4f} face sizes; "
          f"fewest observations {min(len(p) for p in points)}")


if __name__ == "__main__":
    main()
