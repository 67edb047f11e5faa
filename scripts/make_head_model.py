"""Build recon/heads/data/ict_head.npz (the head prior shipped in the package) from ICT-FaceKit.

Source: ``../shared/data/ict_facekit/ict_face_model_light.npz`` (ICT-FaceKit light model, MIT,
USC Institute for Creative Technologies; its licence is copied beside the output). Kept:

- the skin (face, head and neck: vertices 0..11247), the eye sockets and the mouth socket
  (11248..14061): every identity and expression delta, quantised to int8 with one scale per mode
  (the quantisation error is below 0.4% of each mode's largest displacement; the synthetic truth
  and the fitter use the same shipped model);
- the two eyeballs (21451..24590) as rigid parts: their neutral vertices plus, per mode, the mean
  delta of each eyeball (a translation; the eyeLook* shapes' rotation of the eyes is dropped);
- triangles (quads split along their shorter diagonal), per-corner UVs, the 68 Multi-PIE landmark
  vertices, the 57 expression names.

Units: centimetres, +Y up, the face looking down +Z (ICT's frame).

    python scripts/make_head_model.py [--source ../shared/data/ict_facekit]
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

SKIN_END, SOCKETS_END = 11248, 14062  # vertices [0, SKIN_END) skin, [SKIN_END, SOCKETS_END) sockets
EYES = ((21451, 23021), (23021, 24591))  # left, right eyeball vertex ranges
EYE_FACES = (21496, 24692)  # faces of both eyeballs
SOFT_FACES_END = 14034  # faces [0, 14034): skin and sockets


def quantise(deltas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(M, V, 3) float -> int8 values and (M,) float32 scales (value * scale = delta)."""
    scale = np.abs(deltas).reshape(len(deltas), -1).max(1) / 127.0
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
    return np.round(deltas / scale[:, None, None]).astype(np.int8), scale


def triangulate(quads: np.ndarray, uv_quads: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quads (and -1 padded triangles) -> triangles, each quad split along its shorter diagonal."""
    is_quad = quads[:, 3] >= 0
    d02 = np.linalg.norm(pos[quads[:, 0]] - pos[quads[:, 2]], axis=1)
    d13 = np.linalg.norm(pos[quads[:, 1]] - pos[np.maximum(quads[:, 3], 0)], axis=1)
    s = (is_quad & (d13 < d02))[:, None]

    def split(q: np.ndarray) -> np.ndarray:
        a = np.where(s, q[:, [0, 1, 3]], q[:, [0, 1, 2]])
        b = np.where(s, q[:, [1, 2, 3]], q[:, [0, 2, 3]])
        return np.concatenate([a, b[is_quad]]).astype(np.int32)

    return split(quads), split(uv_quads)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/ict_facekit")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "recon/heads/data")
    args = ap.parse_args()
    src = np.load(args.source / "ict_face_model_light.npz")
    meta = json.loads((args.source / "vertex_indices.json").read_text())
    neutral = src["neutral"].astype(np.float64)
    ident = src["identity_deltas"].astype(np.float32)
    expr = src["expression_deltas"].astype(np.float32)

    # eyeballs: rigid, renumbered after the soft vertices
    eye_idx = np.r_[EYES[0][0]:EYES[0][1], EYES[1][0]:EYES[1][1]]
    keep = np.r_[0:SOCKETS_END, eye_idx]
    remap = -np.ones(len(neutral), np.int64)
    remap[keep] = np.arange(len(keep))
    faces = src["faces"]
    fsel = np.r_[0:SOFT_FACES_END, EYE_FACES[0]:EYE_FACES[1]]
    quads = np.where(faces[fsel] >= 0, remap[np.maximum(faces[fsel], 0)], -1)
    assert (quads[:, :3] >= 0).all()
    tris, uv_tris = triangulate(quads, src["face_uvs"][fsel], neutral[keep])

    def eye_translations(deltas: np.ndarray) -> np.ndarray:  # (M, 2, 3)
        return np.stack([deltas[:, a:b].mean(1) for a, b in EYES], 1).astype(np.float32)

    iq, iscale = quantise(ident[:, :SOCKETS_END])
    eq, escale = quantise(expr[:, :SOCKETS_END])
    args.out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out / "ict_head.npz",
        neutral=neutral[keep].astype(np.float32), faces=tris, uvs=src["uvs"].astype(np.float32), face_uvs=uv_tris,
        soft_vertices=np.int64(SOCKETS_END), skin_vertices=np.int64(SKIN_END),
        eye_vertices=np.array([EYES[0][1] - EYES[0][0], EYES[1][1] - EYES[1][0]]),
        identity_q=iq, identity_scale=iscale, identity_eyes=eye_translations(ident),
        expression_q=eq, expression_scale=escale, expression_eyes=eye_translations(expr),
        expression_names=src["expression_names"], identity_names=src["identity_names"],
        landmarks68=np.asarray(meta["idx_to_landmark_verts"], np.int64))
    shutil.copy(args.source / "LICENSE", args.out / "LICENSE-ICT-FaceKit.txt")
    err = np.abs(iq[:, :SKIN_END] * iscale[:, None, None] - ident[:, :SKIN_END]).max(axis=(1, 2)) / (iscale * 127)
    print(f"wrote {args.out / 'ict_head.npz'} ({(args.out / 'ict_head.npz').stat().st_size / 1e6:.1f} MB): "
          f"{len(keep)} vertices, {len(tris)} triangles; worst quantisation error {err.max():.2%} of a mode's range")


if __name__ == "__main__":
    main()
