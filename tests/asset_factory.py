"""Synthetic asset folders as recon.bake writes them (OUT/asset/), small and deterministic.

Imports only numpy and Pillow (no trimesh, no pytest): ingestion workers load this
through tests/jobs/fake_pipeline.py, and every import there costs each worker process.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
from PIL import Image

_OBJ = """mtllib {name}.mtl
v 0 0 0
v {s} 0 0
v 0 {s} 0
v 0 0 {s}
vt 0 0
vt 1 0
vt 0 1
usemtl material0
f 1/1 3/3 2/2
f 1/1 2/2 4/3
f 1/1 4/3 3/3
f 2/2 3/3 4/3
"""
_MTL = "newmtl material0\nKd 1 1 1\nmap_Kd textures/albedo.png\n"
_FACES = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]], dtype=np.uint32)


def _vertices(s: float) -> np.ndarray:
    return np.array([[0, 0, 0], [s, 0, 0], [0, s, 0], [0, 0, s]], dtype=np.float32)


def write_glb(path: Path, vertices: np.ndarray, faces: np.ndarray) -> None:
    """A minimal glTF 2.0 binary: one mesh, one triangle primitive (positions + indices)."""
    pos, idx = vertices.astype("<f4").tobytes(), faces.astype("<u4").tobytes()
    gltf = {
        "asset": {"version": "2.0", "generator": "recon tests"},
        "scene": 0, "scenes": [{"nodes": [0]}], "nodes": [{"mesh": 0}],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0}, "indices": 1}]}],
        "buffers": [{"byteLength": len(pos) + len(idx)}],
        "bufferViews": [{"buffer": 0, "byteOffset": 0, "byteLength": len(pos), "target": 34962},
                        {"buffer": 0, "byteOffset": len(pos), "byteLength": len(idx), "target": 34963}],
        "accessors": [{"bufferView": 0, "componentType": 5126, "count": len(vertices), "type": "VEC3",
                       "min": vertices.min(0).tolist(), "max": vertices.max(0).tolist()},
                      {"bufferView": 1, "componentType": 5125, "count": faces.size, "type": "SCALAR"}],
    }
    js = json.dumps(gltf, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 4)
    binary = pos + idx
    binary += b"\0" * (-len(binary) % 4)
    total = 12 + 8 + len(js) + 8 + len(binary)
    path.write_bytes(struct.pack("<III", 0x46546C67, 2, total) + struct.pack("<II", len(js), 0x4E4F534A) + js
                     + struct.pack("<II", len(binary), 0x004E4942) + binary)


def write_ply(path: Path, vertices: np.ndarray, faces: np.ndarray) -> None:
    lines = ["ply", "format ascii 1.0", f"element vertex {len(vertices)}", "property float x",
             "property float y", "property float z", f"element face {len(faces)}",
             "property list uchar int vertex_indices", "end_header"]
    lines += [" ".join(f"{c:g}" for c in v) for v in vertices]
    lines += ["3 " + " ".join(str(i) for i in f) for f in faces]
    path.write_text("\n".join(lines) + "\n")


def make_asset_folder(root: str | Path, name: str = "box", seed: int = 0, *, source_hash: str | None = None,
                      config_hash: str | None = None, provenance: bool = True, kind: str = "object",
                      requested_subject: str | None = None, material: str = "radiance",
                      psnr: float | None = 30.0, metrics: dict | None = None, extra_bytes: int = 0) -> Path:
    """An asset folder deterministic in ``seed``: glb, obj+mtl+texture, ply, thumb, turntable,
    report, metrics.json and (unless ``provenance=False``) provenance.json, as the pipeline
    writes them: ``kind`` the model fitted, ``requested_subject`` (default: ``kind``) what was
    asked for, ``psnr`` the baked mesh's held-out PSNR; ``metrics`` adds or replaces entries.

    ``extra_bytes`` adds a large texture (crash tests need writes that take a while).
    """
    requested_subject = requested_subject or kind
    root = Path(root)
    (root / "textures").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    s = 1.0 + seed
    write_glb(root / f"{name}.glb", _vertices(s), _FACES)
    write_ply(root / f"{name}.ply", _vertices(s), _FACES)
    (root / f"{name}.obj").write_text(_OBJ.format(name=name, s=s))
    (root / f"{name}.mtl").write_text(_MTL)
    Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(root / "textures" / "albedo.png")
    Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(root / "thumb.png")
    if extra_bytes:
        (root / "textures" / "detail.png").write_bytes(rng.bytes(extra_bytes))
    (root / "turntable.mp4").write_bytes(b"\0\0\0\x18ftypmp42" + rng.bytes(64))
    (root / "report.html").write_text(f"<html><body>{name} {seed}</body></html>\n")
    values = {"kind": kind, "requested_subject": requested_subject, "material": material, "triangles": 4,
              "vertices": 4, "texture_size": 16, "mask_iou": 0.9}
    if psnr is not None:
        values.update(psnr_heldout_baked=psnr, psnr_heldout_baked_views=2, psnr_heldout_baked_split="test")
    (root / "metrics.json").write_text(json.dumps({**values, **(metrics or {})}))
    if provenance:
        (root / "provenance.json").write_text(json.dumps({
            "name": name, "kind": kind, "requested_subject": requested_subject, "source_path": f"/captures/{name}.mp4",
            "source_hash": source_hash if source_hash is not None else f"src{seed:061d}",
            "config_hash": config_hash if config_hash is not None else "cfg0000000000000",
            "recon_version": "0.1.0", "licence": "CC-BY-4.0", "operator": "tester", "notes": "synthetic"}))
    return root
