"""A head asset from one photo or a short video (until ``recon fit --subject head`` lands): MediaPipe
landmarks -> ICT fit -> photo texture (mirrored where unseen) -> head.glb with the 57 expressions as morph targets,
landmarks.json (multipie68, dense, mediapipe478 as face + barycentric on the topology) and report.png
(the photo | the re-rendered head with the dense landmarks drawn | the two blended).

    .venv/bin/python scripts/fit_head.py [IMAGE] --out out/astronaut_head
    .venv/bin/python scripts/fit_head.py --video ../shared/data/videos/human-cap-3.mp4 --out out/cap3_head

IMAGE defaults to scikit-image's bundled ``astronaut`` (public domain). A video: ``--frames`` frames evenly
spread over it are fitted together (one identity, an expression and a pose per frame, smoothed); the
texture comes from the most frontal frame, the asset's shape from that frame's expression. Prints the fit's figures: the mean
reprojection error of the 478 detected landmarks (pixels), the fraction of the texture seen directly.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import torch

from recon.bake.preview import render
from recon.bake.writers import write_mesh
from recon.core.errors import InputError
from recon.core.types import Cameras
from recon.heads.asset import head_mesh, photo_texture, split_seams
from recon.heads.fit import default_focal, fit_head
from recon.heads.landmarks import landmark_sets, mediapipe_embedding
from recon.heads.model import load_head_model
from recon.heads.observe import FaceMeshDetector, pick_face


def load_image(path: str | None) -> tuple[np.ndarray, str]:
    if path is None:
        from skimage import data
        return data.astronaut(), "skimage astronaut"
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise InputError(path, "not a readable image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB), path


def n_video_frames(path: str) -> int:
    return int(cv2.VideoCapture(path).get(cv2.CAP_PROP_FRAME_COUNT))


def load_video(path: str, frames: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(path)
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    if not cap.isOpened() or n <= 0:
        raise InputError(path, "not a readable video")
    out = []
    for i in np.linspace(0, n - 1, min(frames, n)).round().astype(int):
        cap.set(cv2.CAP_PROP_POS_FRAMES, int(i))
        ok, img = cap.read()
        if ok:
            out.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("image", nargs="?")
    ap.add_argument("--out", default="out/astronaut_head")
    ap.add_argument("--video", default=None)
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--face-index", type=int, default=None)
    a = ap.parse_args()
    out = Path(a.out)
    t0 = time.time()
    try:
        if a.video:
            images, name = load_video(a.video, a.frames), a.video
        else:
            photo, name = load_image(a.image)
            images = [photo]
        faces, idx = [], []
        with FaceMeshDetector() as det:
            for k, img in enumerate(images):
                found = det.detect(img)
                if found or not a.video:
                    faces.append(pick_face(found, f"{name} frame {k}" if a.video else name, a.face_index))
                    idx.append(k)
        if not faces:
            raise InputError(name, "no face found in any frame")
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    H, W = images[0].shape[:2]
    f = default_focal(W, H)
    intr = np.array([f, f, W / 2, H / 2])
    model = load_head_model()
    fit = fit_head(model, faces, np.tile(intr, (len(faces), 1)), frames=np.array(idx),
                   shared_expression=not a.video)
    k = int(np.argmin(fit.rotation[:, 2, 2]))  # the most frontal frame: the face's +Z towards the camera
    photo, face = images[idx[k]], faces[k]
    verts = model.vertices(torch.as_tensor(fit.identity), torch.as_tensor(fit.expression[k])).double().numpy()
    T = fit.head_to_camera(k)
    tex, seen = photo_texture(model, verts, T, intr, photo)
    if a.video:  # the fitted expressions over the video's time
        fps = cv2.VideoCapture(a.video).get(cv2.CAP_PROP_FPS) or 30.0
        times = np.asarray(idx, np.float64) * (n_video_frames(a.video) - 1) / max(len(images) - 1, 1) / fps
        expressions = fit.expression
    else:  # neutral -> the photo's expression -> neutral, 2 s
        times, expressions = np.array([0.0, 1.0, 2.0]), np.stack([0 * fit.expression[0], fit.expression[0],
                                                                   0 * fit.expression[0]])
    mesh = head_mesh(model, fit.identity, tex, times, expressions)
    mesh = replace(mesh, material="radiance")  # the photo's light is in the colour
    # all 478 detected landmarks (irises included) against the fitted head's embedded points
    emb, _ = mediapipe_embedding()
    p = emb.at(torch.as_tensor(verts), model.faces).numpy() @ T[:3, :3].T + T[:3, 3]
    proj = f * p[:, :2] / p[:, 2:] + intr[2:]
    err478 = float(np.linalg.norm(proj - face.landmarks[:, :2], axis=1).mean())
    seconds = time.time() - t0

    out.mkdir(parents=True, exist_ok=True)
    write_mesh(mesh, out / "head.glb")
    vid, _, afaces = split_seams(model)
    sets = landmark_sets(model)
    (out / "landmarks.json").write_text(json.dumps(
        {k: {"count": len(s), "points": s.to_json()} for k, s in sets.items()}))
    cam = Cameras.create(np.linalg.inv(T), f, f, W / 2, H / 2, W, H)
    posed = replace(mesh, positions=(mesh.positions + np.einsum(
        "k,kvc->vc", fit.expression[k], mesh.morph_positions)).astype(np.float32))  # the texture frame's face
    view = render(posed, cam, lit=False)[0]
    rr = (np.clip(view["rgb"], 0, 1) * 255).astype(np.uint8)
    dense = sets["dense"].at(torch.as_tensor(verts), model.faces).numpy() @ T[:3, :3].T + T[:3, 3]
    dz = f * dense[:, :2] / dense[:, 2:] + intr[2:]
    front = view["depth"][np.clip(dz[:, 1].astype(int), 0, H - 1), np.clip(dz[:, 0].astype(int), 0, W - 1)]
    drawn, dot = rr.copy(), int(face.size > 200)  # one-pixel dots on a small face
    for (x, y), z, d in zip(dz, dense[:, 2], front):
        if d > 0 and z <= d + 0.004:
            cv2.circle(drawn, (int(round(x - 0.5)), int(round(y - 0.5))), dot, (0, 200, 255), -1)
    blend = (0.5 * photo + 0.5 * rr).astype(np.uint8)
    cv2.imwrite(str(out / "report.png"), cv2.cvtColor(np.concatenate([photo, drawn, blend], 1), cv2.COLOR_RGB2BGR))
    figures = {"input": name, "frames_fitted": len(faces), "frames_read": len(images), "texture_frame": idx[k],
               "faces_found": face.faces_found, "landmarks478_px_texture_frame": err478,
               "landmarks468_fit_px_mean": float(fit.residual_px.mean()), "face_size_px": face.size,
               "texture_seen": seen, "seconds": seconds, "vertices": len(vid), "triangles": len(afaces),
               "morph_targets": len(mesh.morph_names)}
    (out / "metrics.json").write_text(json.dumps(figures, indent=1))
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
