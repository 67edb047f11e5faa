"""Build recon/heads/data/mediapipe_embedding.npz: where each of MediaPipe's 478 face-mesh landmarks
sits on the ICT head topology (a face id and barycentrics) when the face is seen at a given yaw, and how
much it wanders.

Calibration by observation, with heads never used for evaluation (``recon.synth.heads`` seeds from
10000): each head is rendered from views around each yaw of ``YAWS`` (jittered by a few degrees, pitch
-8/0/8), MediaPipe finds its landmarks, and the surface point under each landmark (the rasterizer's face
and barycentrics at that pixel) is carried to the neutral face. Per yaw and landmark, the median of those
points, snapped to the neutral surface, is its embedding there: MediaPipe's contour points (the face's
outline) slide over the face as it turns, and its other points shift a little with the view too, so one
embedding for every view biases a turned face. ``noise`` (in face sizes: the diagonal of the landmarks'
box) is the RMS distance in the image between where MediaPipe put each point and where its embedding
projects on the true head: the fit's per-point noise model. ``yaw`` follows ``landmarks.view_yaw``.

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
YAWS, PITCHES = (-60, -45, -30, -15, 0, 15, 30, 45, 60), (-8, 0, 8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--heads", type=int, default=24)
    ap.add_argument("--size", type=int, default=512)
    args = ap.parse_args()
    model = load_head_model()
    neutral = model.neutral.double()
    tri = neutral[model.faces]  # (F, 3, 3)
    B = len(YAWS)
    points = [[[] for _ in range(NUM_LANDMARKS)] for _ in range(B)]
    shots = [[] for _ in range(B)]  # per yaw: (head vertices, camera, detected landmarks, face size)
    rng = np.random.default_rng(7)
    with FaceMeshDetector(max_faces=1) as det:
        for h in range(args.heads):
            head = random_head(10000 + h, model)
            yaws = np.array(YAWS) + rng.uniform(-3, 3, B)
            cams = head_cameras(yaws, rng.choice(PITCHES, B), args.size)
            for b, view in enumerate(render_head(head, cams, model)):
                faces = det.detect((view["rgb"] * 255 + 0.5).astype(np.uint8))
                if not faces:
                    continue
                shots[b].append((head.vertices, cams[[b]], faces[0].landmarks[:, :2], faces[0].size))
                sv = screen_vertices(torch.as_tensor(head.vertices), cams, b)
                fid, bary, _ = rasterize(sv, model.faces, args.size, args.size)
                xy = np.clip(np.round(faces[0].landmarks[:, :2] - 0.5).astype(int), 0, args.size - 1)
                for k, (x, y) in enumerate(xy):
                    f = int(fid[y, x])
                    if f >= 0:
                        points[b][k].append((bary[y, x].double()[:, None] * tri[f]).sum(0).numpy())
            print(f"head {h + 1}/{args.heads}", flush=True)
    print("detections per yaw:", {y: len(s) for y, s in zip(YAWS, shots)})
    face = np.zeros((B, NUM_LANDMARKS), np.int64)
    bary = np.zeros((B, NUM_LANDMARKS, 3), np.float32)
    noise = np.zeros((B, NUM_LANDMARKS), np.float32)
    count = np.zeros((B, NUM_LANDMARKS), np.int64)
    for b in range(B):
        frontal = B // 2
        # a point never on the head at this yaw (off the outline) keeps the nearest yaw's embedding
        median = np.array([np.median(np.array(p), 0) if len(p) >= 3 else np.full(3, np.nan) for p in points[b]])
        count[b] = [len(p) for p in points[b]]
        emb = closest_surface_points(np.nan_to_num(median), neutral.numpy(), model.faces.numpy())
        face[b], bary[b] = emb.face, emb.bary
        err = []
        for verts, cam, found, size in shots[b]:
            sv = screen_vertices(emb.at(torch.as_tensor(verts), model.faces), cam, 0).numpy()
            err.append(np.linalg.norm(found - sv[:, :2], axis=1) / size)
        noise[b] = np.sqrt((np.array(err) ** 2).mean(0))
        assert b != frontal or (count[b] >= 3).all(), "every landmark must be seen frontally"
    for b in sorted(range(B), key=lambda b: abs(b - B // 2)):  # fill the unseen from the yaw nearer frontal
        near = b + (1 if b < B // 2 else -1)
        bad = count[b] < 3
        face[b, bad], bary[b, bad], noise[b, bad] = face[near, bad], bary[near, bad], noise[near, bad]
    np.savez_compressed(OUT, yaw=np.array(YAWS, np.float32), face=face, bary=bary, noise=noise,
                        observations=count)
    print(f"wrote {OUT}: noise median {np.median(noise):.4f} face sizes (frontal {np.median(noise[B // 2]):.4f}, "
          f"at +-60 deg {np.median(noise[[0, -1]]):.4f}); points filled from a nearer yaw: {(count < 3).sum()}")


if __name__ == "__main__":
    main()
