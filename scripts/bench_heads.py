"""Heads on synthetic truth: ICT heads with random identity, expression and skin, as single photos and as
30-frame turning videos, landmarked by MediaPipe and fitted with ``recon.heads.fit``.

    .venv/bin/python scripts/bench_heads.py [--heads 10] [--first-seed 100] [--skip-video]

Heads are ``recon.synth.heads.random_head(seed)`` for seeds first-seed.. (the landmark embedding was
calibrated on seeds 10000+, the fitter tuned on seeds 0..3: none of them is measured here).

Photo: one 512x512 view, yaw U(-20, 20), pitch U(-10, 10) degrees, 0.6 m, 30-degree lens (the fitter
gets the true intrinsics). Held-out views: yaw -40, -20, 20, 40, pitch 0. The fitted head is placed in
each held-out view two ways:
  - registered: by the photo's true camera (held-out camera relative to it), so depth/scale errors count;
  - aligned: a similarity on the 9 rigid Multi-PIE points (NoW-style) onto the true head.
Video: 30 frames, the camera turning from yaw -45 to 45 (pitch 5 sin), the expression blending from one
random expression to another. Every 5th frame is held out: its pose is the mean of its neighbours'
fitted poses and its expression theirs too; the other 24 frames are fitted together.

Figures: 68-landmark error in the held-out images, mean over points, divided by the true inter-ocular
(outer eye corners) distance in that image, x100; expression Pearson correlation over all coefficients
(photo: the 57 of each head; video: the fitted frames), pooled over heads; face-region Chamfer-L1
(ICT face vertices 0..9408, symmetric mean nearest distance, after the rigid-landmark similarity) over the
true head height (chin to crown), in %.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from scipy.spatial import cKDTree

from recon.eval.align import apply_similarity, umeyama
from recon.heads.fit import fit_head
from recon.heads.model import FACE_VERTICES, RIGID68, interocular, load_head_model
from recon.heads.observe import FaceMeshDetector
from recon.synth.heads import SyntheticHead, head_cameras, random_expression, random_head, render_head

SIZE = 512


def project(points: np.ndarray, w2c: np.ndarray, f: float, c: float) -> np.ndarray:
    p = points @ w2c[:3, :3].T + w2c[:3, 3]
    return f * p[:, :2] / p[:, 2:3] + c


GROUPS = {"jaw": slice(0, 17), "brows": slice(17, 27), "nose": slice(27, 36), "eyes": slice(36, 48),
          "mouth": slice(48, 68)}  # the Multi-PIE 68's regions


def point_errors(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """(68,) 2D error of each point / inter-ocular distance x 100 ((68, 2) each)."""
    iod = float(interocular(torch.as_tensor(true)[None])[0])
    return np.linalg.norm(pred - true, axis=1) / iod * 100


def landmark_error(pred: np.ndarray, true: np.ndarray) -> float:
    """Mean 2D error / inter-ocular distance x 100 ((68, 2) each)."""
    return float(point_errors(pred, true).mean())


def by_region(errors: list[np.ndarray]) -> dict[str, float]:
    """Mean error per Multi-PIE region over a list of (68,) point errors."""
    e = np.mean(errors, 0)
    return {k: round(float(e[s].mean()), 2) for k, s in GROUPS.items()}


def chamfer_percent(model, fit_v: np.ndarray, true_v: np.ndarray, lm: np.ndarray) -> float:
    a = apply_similarity(umeyama(fit_v[lm[list(RIGID68)]], true_v[lm[list(RIGID68)]]), fit_v[:FACE_VERTICES])
    b = true_v[:FACE_VERTICES]
    d = 0.5 * (cKDTree(b).query(a)[0].mean() + cKDTree(a).query(b)[0].mean())
    return float(d / head_height(model, true_v, lm) * 100)


def head_height(model, v: np.ndarray, lm: np.ndarray) -> float:
    """Chin (Multi-PIE 8) to crown (the highest skin vertex), metres."""
    return float(v[:model.skin_vertices, 1].max() - v[lm[8], 1])


def fitted_vertices(model, identity, expression) -> np.ndarray:
    return model.vertices(torch.as_tensor(identity), torch.as_tensor(expression)).double().numpy()


def bench_photo(model, det, seed: int) -> dict:
    rng = np.random.default_rng([seed, 1])
    head = random_head(seed, model)
    yaw, pitch = rng.uniform(-20, 20), rng.uniform(-10, 10)
    cams = head_cameras([yaw, -40, -20, 20, 40], [pitch, 0, 0, 0, 0], SIZE)
    views = render_head(head, cams, model)
    faces = det.detect((views[0]["rgb"] * 255).astype(np.uint8))
    if not faces:
        return {"seed": seed, "detected": False}
    f, c = float(cams.fx[0]), float(cams.cx[0])
    t0 = time.time()
    fit = fit_head(model, [faces[0]], np.array([[f, f, c, c]]), shared_expression=True)
    seconds = time.time() - t0
    lm = model.landmarks68.numpy()
    fv = fitted_vertices(model, fit.identity, fit.expression[0])
    tv = head.vertices
    aligned = apply_similarity(umeyama(fv[lm[list(RIGID68)]], tv[lm[list(RIGID68)]]), fv)
    w2c = [np.linalg.inv(m) for m in cams.c2w]
    head_to_world = np.linalg.inv(w2c[0]) @ fit.head_to_camera(0)  # via the photo's true camera
    registered = fv @ head_to_world[:3, :3].T + head_to_world[:3, 3]
    reg, ali = [], []
    for k in range(1, len(cams)):
        truth = project(tv[lm], w2c[k], f, c)
        reg.append(landmark_error(project(registered[lm], w2c[k], f, c), truth))
        ali.append(point_errors(project(aligned[lm], w2c[k], f, c), truth))
    fit_view = landmark_error(project(fv[lm], fit.head_to_camera(0), f, c), project(tv[lm], w2c[0], f, c))
    return {"seed": seed, "detected": True, "seconds": seconds, "fit_view": fit_view,
            "heldout_registered": float(np.mean(reg)), "heldout_aligned": float(np.mean(ali)),
            "heldout_aligned_regions": by_region(ali),
            "residual_px": float(fit.residual_px[0]), "expr_true": head.expression.tolist(),
            "expr_fit": fit.expression[0].tolist(), "chamfer": chamfer_percent(model, fv, tv, lm)}


def bench_video(model, det, seed: int, frames: int = 30) -> dict:
    rng = np.random.default_rng([seed, 2])
    head = random_head(seed, model)
    e0, e1 = head.expression, random_expression(model, rng)
    s = np.linspace(0, 1, frames)
    expr = (1 - s)[:, None] * e0 + s[:, None] * e1  # (T, 57)
    yaw = np.linspace(-45, 45, frames)
    pitch = 5 * np.sin(np.linspace(0, 2 * np.pi, frames))
    cams = head_cameras(yaw, pitch, SIZE)
    ident = torch.as_tensor(head.identity, dtype=torch.float32)
    verts = model.vertices(ident, torch.as_tensor(expr, dtype=torch.float32)).double().numpy()  # (T, V, 3)
    obs, idx = [], []
    held = np.arange(frames) % 5 == 2
    for k in range(frames):
        if held[k]:
            continue
        h = SyntheticHead(head.identity, expr[k], verts[k], head.colors, seed)
        img = render_head(h, cams[k:k + 1], model)[0]["rgb"] * 255
        faces = det.detect(img.astype(np.uint8))
        if faces:
            obs.append(faces[0])
            idx.append(k)
    f, c = float(cams.fx[0]), float(cams.cx[0])
    t0 = time.time()
    fit = fit_head(model, obs, np.tile([f, f, c, c], (len(obs), 1)), frames=np.array(idx))
    seconds = time.time() - t0
    lm = model.landmarks68.numpy()
    w2c = [np.linalg.inv(m) for m in cams.c2w]
    pos = {k: i for i, k in enumerate(idx)}
    errs, chamfers = [], []
    for k in np.flatnonzero(held):
        if k - 1 not in pos or k + 1 not in pos:
            continue
        a, b = pos[k - 1], pos[k + 1]
        R = fit.rotation[a] + fit.rotation[b]
        U, _, Vt = np.linalg.svd(R)
        T = np.eye(4)
        T[:3, :3], T[:3, 3] = U @ Vt, 0.5 * (fit.translation[a] + fit.translation[b])
        e = 0.5 * (fit.expression[a] + fit.expression[b])
        fv = fitted_vertices(model, fit.identity, e)
        errs.append(point_errors(project(fv[lm], T, f, c), project(verts[k][lm], w2c[k], f, c)))
        chamfers.append(chamfer_percent(model, fv, verts[k], lm))
    gt = expr[np.array(idx)]
    return {"seed": seed, "frames_fitted": len(idx), "seconds": seconds, "heldout": float(np.mean(errs)),
            "heldout_regions": by_region(errs),
            "heldout_frames": len(errs), "chamfer": float(np.mean(chamfers)),
            "residual_px": float(fit.residual_px.mean()),
            "expr_corr": float(np.corrcoef(gt.ravel(), fit.expression.ravel())[0, 1]),
            "expr_true": gt.ravel().tolist(), "expr_fit": fit.expression.ravel().tolist()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--heads", type=int, default=10)
    ap.add_argument("--first-seed", type=int, default=100)
    ap.add_argument("--skip-video", action="store_true")
    ap.add_argument("--out", default=None, help="write every figure as JSON here")
    a = ap.parse_args()
    torch.set_num_threads(2)
    model = load_head_model()
    out = {"photos": [], "videos": []}
    with FaceMeshDetector(max_faces=1) as det:
        for seed in range(a.first_seed, a.first_seed + a.heads):
            r = bench_photo(model, det, seed)
            out["photos"].append(r)
            if r["detected"]:
                print(f"photo {seed}: fit view {r['fit_view']:.2f}  held-out registered "
                      f"{r['heldout_registered']:.2f}  aligned {r['heldout_aligned']:.2f} (%IOD)  "
                      f"chamfer {r['chamfer']:.2f}% head height  {r['residual_px']:.2f} px  {r['seconds']:.1f} s  "
                      f"{r['heldout_aligned_regions']}",
                      flush=True)
            else:
                print(f"photo {seed}: no face detected", flush=True)
            if not a.skip_video:
                v = bench_video(model, det, seed)
                out["videos"].append(v)
                print(f"video {seed}: {v['frames_fitted']} frames fitted, held-out {v['heldout']:.2f} %IOD "
                      f"({v['heldout_frames']} frames), chamfer {v['chamfer']:.2f}% head height, "
                      f"expr corr {v['expr_corr']:.2f}, {v['residual_px']:.2f} px, {v['seconds']:.1f} s  {v['heldout_regions']}",
                      flush=True)
    ph = [r for r in out["photos"] if r["detected"]]

    def pooled(rs):
        return float(np.corrcoef(np.concatenate([r["expr_true"] for r in rs]),
                                 np.concatenate([r["expr_fit"] for r in rs]))[0, 1])

    print(f"\nPHOTOS ({len(ph)}/{len(out['photos'])} detected): held-out 68-landmark error %IOD "
          f"registered {np.mean([r['heldout_registered'] for r in ph]):.2f}, "
          f"aligned {np.mean([r['heldout_aligned'] for r in ph]):.2f}; fit view {np.mean([r['fit_view'] for r in ph]):.2f}; "
          f"face chamfer {np.mean([r['chamfer'] for r in ph]):.2f}% head height; "
          f"expression corr {pooled(ph):.2f}; mean fit {np.mean([r['seconds'] for r in ph]):.1f} s")
    if out["videos"]:
        vs = out["videos"]
        print(f"VIDEOS ({len(vs)}): held-out 68-landmark error {np.mean([v['heldout'] for v in vs]):.2f} %IOD; "
              f"face chamfer {np.mean([v['chamfer'] for v in vs]):.2f}% head height; "
              f"expression corr {pooled(vs):.2f}; mean fit {np.mean([v['seconds'] for v in vs]):.1f} s")
    if a.out:
        with open(a.out, "w") as fh:
            json.dump(out, fh)


if __name__ == "__main__":
    main()
