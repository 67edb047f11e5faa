"""A head asset from one photo (until ``recon fit --image --subject head`` lands): MediaPipe landmarks ->
ICT fit -> photo texture (mirrored where unseen) -> head.glb with the 57 expressions as morph targets,
landmarks.json (multipie68, dense, mediapipe478 as face + barycentric on the topology) and report.png
(the photo | the re-rendered head with the dense landmarks drawn | the two blended).

    .venv/bin/python scripts/head_from_photo.py [IMAGE] --out out/astronaut_head

IMAGE defaults to scikit-image's bundled ``astronaut`` (public domain). Prints the fit's figures: the mean
reprojection error of the 478 detected landmarks (pixels), the fraction of the texture seen directly.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("image", nargs="?")
    ap.add_argument("--out", default="out/astronaut_head")
    ap.add_argument("--face-index", type=int, default=None)
    a = ap.parse_args()
    out = Path(a.out)
    try:
        photo, name = load_image(a.image)
        t0 = time.time()
        with FaceMeshDetector() as det:
            face = pick_face(det.detect(photo), name, a.face_index)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    H, W = photo.shape[:2]
    f = default_focal(W, H)
    intr = np.array([f, f, W / 2, H / 2])
    model = load_head_model()
    fit = fit_head(model, [face], intr[None], shared_expression=True)
    verts = model.vertices(torch.as_tensor(fit.identity), torch.as_tensor(fit.expression[0])).double().numpy()
    T = fit.head_to_camera(0)
    tex, seen = photo_texture(model, verts, T, intr, photo)
    mesh = head_mesh(model, fit.identity, tex, fit.expression[0])
    mesh = type(mesh)(**{**mesh.__dict__, "material": "radiance"})  # the photo's light is in the colour
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
    view = render(mesh, cam, lit=False)[0]
    rr = (np.clip(view["rgb"], 0, 1) * 255).astype(np.uint8)
    dense = sets["dense"].at(torch.as_tensor(verts), model.faces).numpy() @ T[:3, :3].T + T[:3, 3]
    dz = f * dense[:, :2] / dense[:, 2:] + intr[2:]
    front = view["depth"][np.clip(dz[:, 1].astype(int), 0, H - 1), np.clip(dz[:, 0].astype(int), 0, W - 1)]
    drawn = rr.copy()
    for (x, y), z, d in zip(dz, dense[:, 2], front):
        if d > 0 and z <= d + 0.004:
            cv2.circle(drawn, (int(round(x - 0.5)), int(round(y - 0.5))), 1, (0, 200, 255), -1)
    blend = (0.5 * photo + 0.5 * rr).astype(np.uint8)
    cv2.imwrite(str(out / "report.png"), cv2.cvtColor(np.concatenate([photo, drawn, blend], 1), cv2.COLOR_RGB2BGR))
    figures = {"image": name, "faces_found": face.faces_found, "landmarks478_px": err478,
               "landmarks468_fit_px": float(fit.residual_px[0]), "face_size_px": face.size,
               "texture_seen": seen, "seconds": seconds, "vertices": len(vid), "triangles": len(afaces),
               "morph_targets": len(mesh.morph_names)}
    (out / "metrics.json").write_text(json.dumps(figures, indent=1))
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
