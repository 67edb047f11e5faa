"""Read nerfstudio / instant-ngp / Blender ``transforms.json`` captures (and recon's own).

Layouts:
  folder/transforms.json                    one file; split from each frame's "split"
                                            key, else nerfstudio's "{train,test}_filenames",
                                            else every ``cfg.test_every``-th frame is test
  folder/transforms_{train,test}.json       Blender NeRF-synthetic: one file per split
                                            (transforms_val.json is used as test only
                                            when there is no transforms_test.json)
  path/to/anything.json                     that one file

Intrinsics come as ``camera_angle_x`` (+ ``camera_angle_y``; principal point at
the image centre) or ``fl_x fl_y cx cy w h k1 k2 p1 p2 k3``, at the top level
or per frame (per-frame values win). ``transform_matrix`` is an OpenGL/Blender
camera-to-world (x right, y up, z backward), converted to OpenCV here; it must be
rigid (scaled, singular or mirrored rotations are refused). A
principal point in these files follows nerfstudio's pixel-centre-at-+0.5
convention, the same as recon's.

A folder recon wrote (``capture_writer``) carries a top-level "recon" block with
its normalisation; reading it back restores ``Capture.normalization`` and marks
the capture normalised so it is not normalised twice.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.config import CaptureConfig
from ..core.conventions import opengl_to_opencv
from ..core.errors import InputError, read_json_object
from ..core.log import get_logger
from ..core.types import Cameras, Capture, FrameInfo
from .frame_files import frame_names, hash_inputs, load_frames, resolve_image_path
from .split import holdout_split
from .upright import Z_UP

log = get_logger(__name__)

_DIST_KEYS = ("k1", "k2", "p1", "p2", "k3")
_INTRINSIC_KEYS = ("fl_x", "fl_y", "cx", "cy", "w", "h", "camera_angle_x", "camera_angle_y",
                   "camera_model", "k4") + _DIST_KEYS
# Camera models whose parameters map onto recon's OpenCV pinhole + k1 k2 p1 p2 k3.
_SUPPORTED_MODELS = {"OPENCV", "PINHOLE", "SIMPLE_PINHOLE", "SIMPLE_RADIAL", "RADIAL", "PERSPECTIVE"}
_RIGID_TOL = 1e-3  # |R^T R - I| and last-row error accepted in a transform_matrix (files store ~7 digits)


@dataclass
class _FrameEntry:
    json_path: Path
    index: int  # position in its json file
    image: Path
    mask: Path | None
    c2w_gl: np.ndarray
    intr: dict[str, Any]  # merged top-level + per-frame intrinsic keys (frame wins)
    split: str | None


def _load_json(path: Path) -> dict:
    try:
        text = path.read_text()
    except OSError as exc:
        raise InputError(path, f"cannot read file ({exc.strerror})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(path, f"malformed JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if not isinstance(data, dict):
        raise InputError(path, "expected a JSON object with a \"frames\" list")
    frames = data.get("frames")
    if not isinstance(frames, list):
        raise InputError(path, "missing \"frames\" list")
    if not frames:
        raise InputError(path, "\"frames\" is empty")
    return data


def _json_files(path: Path) -> list[tuple[Path, str | None]]:
    """The json files to read, each with the split it defines (None: decide per frame)."""
    if path.is_file():
        return [(path, None)]
    if (path / "transforms.json").is_file():
        return [(path / "transforms.json", None)]
    train = path / "transforms_train.json"
    if not train.is_file():
        raise InputError(path, "no transforms.json or transforms_train.json in the folder")
    files: list[tuple[Path, str | None]] = [(train, "train")]
    for name in ("transforms_test.json", "transforms_val.json"):
        if (path / name).is_file():
            files.append((path / name, "test"))
            break
    return files


def _matrix(value: Any, json_path: Path, what: str) -> np.ndarray:
    try:
        m = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(json_path, f"{what}: transform_matrix is not a numeric matrix") from None
    if m.shape == (3, 4):
        m = np.vstack([m, [0.0, 0.0, 0.0, 1.0]])
    if m.shape != (4, 4) or not np.all(np.isfinite(m)):
        raise InputError(json_path, f"{what}: transform_matrix must be a finite 4x4 (or 3x4) matrix")
    problem = _rigid_problem(m)
    if problem:
        raise InputError(json_path, f"{what}: transform_matrix is not a camera pose ({problem})")
    return m


def _rigid_problem(m: np.ndarray, tol: float = _RIGID_TOL) -> str | None:
    """Why the 4x4 ``m`` is not a rotation + translation (within ``tol``), or None."""
    R = m[:3, :3]
    det = np.linalg.det(R)
    if abs(det) < tol:
        return "its rotation part is singular"
    if np.abs(R.T @ R - np.eye(3)).max() > tol:
        return "its rotation part is scaled or sheared, not orthonormal"
    if det < 0:
        return "its rotation part is a reflection, determinant -1"
    if np.abs(m[3] - [0.0, 0.0, 0.0, 1.0]).max() > tol:
        return "its last row is not [0, 0, 0, 1]"
    return None


def _parse_frames(json_path: Path, data: dict, file_split: str | None) -> list[_FrameEntry]:
    base = json_path.parent
    top = {k: data[k] for k in _INTRINSIC_KEYS if k in data}
    entries = []
    for j, fr in enumerate(data["frames"]):
        if not isinstance(fr, dict):
            raise InputError(json_path, f"frame {j} is not a JSON object")
        listed = fr.get("file_path")
        what = f"frame {j}" + (f" ({listed})" if listed else "")
        if not isinstance(listed, str) or not listed:
            raise InputError(json_path, f"frame {j} has no \"file_path\"")
        if "transform_matrix" not in fr:
            raise InputError(json_path, f"{what} has no \"transform_matrix\"")
        c2w = _matrix(fr["transform_matrix"], json_path, what)
        image = resolve_image_path(base, listed)
        if image is None:
            raise InputError(base / listed, f"image file not found (listed in {json_path.name}, {what})")
        mask = None
        if fr.get("mask_path"):
            mask = resolve_image_path(base, str(fr["mask_path"]))
            if mask is None:
                raise InputError(base / str(fr["mask_path"]),
                                 f"mask file not found (listed in {json_path.name}, {what})")
        intr = {**top, **{k: fr[k] for k in _INTRINSIC_KEYS if k in fr}}
        # Per-frame focal (either form) wins over a top-level one of the other form.
        if any(k in fr for k in ("fl_x", "fl_y")) and "camera_angle_x" not in fr:
            intr.pop("camera_angle_x", None)
            intr.pop("camera_angle_y", None)
        if "camera_angle_x" in fr and "fl_x" not in fr:
            intr.pop("fl_x", None)
            intr.pop("fl_y", None)
        if "fl_x" not in intr and "camera_angle_x" not in intr:
            raise InputError(json_path, f"{what}: no camera intrinsics (need fl_x or camera_angle_x)")
        model = intr.get("camera_model")
        if model is not None and str(model).upper() not in _SUPPORTED_MODELS:
            raise InputError(json_path, f"{what}: camera_model '{model}' is not supported "
                                        f"(supported: {', '.join(sorted(_SUPPORTED_MODELS))})")
        if float(intr.get("k4", 0.0) or 0.0) != 0.0:
            raise InputError(json_path, f"{what}: distortion k4 (fisheye) is not supported")
        split = file_split
        if split is None and isinstance(fr.get("split"), str):
            split = {"val": "test", "eval": "test"}.get(fr["split"], fr["split"])
            if split not in ("train", "test"):
                raise InputError(json_path, f"{what}: unknown split '{fr['split']}' (train, test or val)")
        entries.append(_FrameEntry(json_path, j, image, mask, c2w, intr, split))
    return entries


def _intrinsics(e: _FrameEntry, width: int, height: int) -> tuple[float, float, float, float, list[float]]:
    """(fx, fy, cx, cy, dist) of one frame whose image is width x height pixels."""
    d = e.intr
    try:
        if "fl_x" in d:
            fx = float(d["fl_x"])
            fy = float(d.get("fl_y", fx))
        else:
            fx = 0.5 * width / math.tan(0.5 * float(d["camera_angle_x"]))
            fy = 0.5 * height / math.tan(0.5 * float(d["camera_angle_y"])) if "camera_angle_y" in d else fx
        cx = float(d.get("cx", width / 2.0))
        cy = float(d.get("cy", height / 2.0))
        dist = [float(d.get(k, 0.0) or 0.0) for k in _DIST_KEYS]
    except (TypeError, ValueError):
        raise InputError(e.json_path, f"frame {e.index}: intrinsics are not numbers") from None
    if not (np.isfinite([fx, fy, cx, cy]).all() and fx > 0 and fy > 0):
        raise InputError(e.json_path, f"frame {e.index}: focal lengths must be positive and finite")
    return fx, fy, cx, cy, dist


def _expected_size(e: _FrameEntry) -> tuple[int, int] | None:
    if "w" in e.intr and "h" in e.intr:
        try:
            return int(e.intr["w"]), int(e.intr["h"])
        except (TypeError, ValueError):
            raise InputError(e.json_path, f"frame {e.index}: w/h are not integers") from None
    return None


def _splits_from_filenames(data: dict, entries: list[_FrameEntry], json_path: Path) -> list[str] | None:
    """nerfstudio's top-level "train_filenames"/"test_filenames" ("val_filenames"), if present."""
    test_key = "test_filenames" if "test_filenames" in data else "val_filenames"
    if "train_filenames" not in data and test_key not in data:
        return None
    base = json_path.parent
    test = {resolve_image_path(base, str(f)) for f in data.get(test_key, []) or []}
    return ["test" if e.image in test else "train" for e in entries]


def _read_ply_points(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    import trimesh

    try:
        pc = trimesh.load(path, process=False)
    except Exception as exc:  # trimesh raises many kinds for a bad file
        raise InputError(path, f"cannot read point cloud ({exc.__class__.__name__})") from None
    xyz = np.asarray(getattr(pc, "vertices", np.zeros((0, 3))), dtype=np.float64)
    colors = getattr(pc, "colors", None)
    rgb = None
    if colors is not None and len(colors) == len(xyz) and len(xyz):
        rgb = np.asarray(colors)[:, :3].astype(np.uint8)
    return xyz, rgb


def _read_capture_json(folder: Path) -> dict:
    """recon's capture.json beside the transforms.json (provenance), or {}; a corrupt one is an InputError."""
    p = folder / "capture.json"
    if not p.is_file():
        return {}
    return read_json_object(p, "write the capture folder again (--overwrite)")


def read_transforms(path: str | Path, cfg: CaptureConfig) -> Capture:
    """Read a transforms.json capture (folder or file) into a Capture with OpenCV cameras."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "no such file or folder")
    files = _json_files(path)
    datas = [(p, _load_json(p), split) for p, split in files]
    entries: list[_FrameEntry] = []
    for p, data, split in datas:
        entries.extend(_parse_frames(p, data, split))
    main_json, main_data = datas[0][0], datas[0][1]
    root = main_json.parent

    # Splits: per-file, per-frame key, nerfstudio filename lists, or every k-th frame.
    splits = [e.split for e in entries]
    if any(s is None for s in splits):
        from_names = _splits_from_filenames(main_data, entries, main_json) if len(datas) == 1 else None
        if all(s is None for s in splits) and from_names is not None:
            splits = from_names
        elif all(s is None for s in splits):
            splits = holdout_split(len(entries), cfg.test_every)
        else:
            splits = [s or "train" for s in splits]

    masks_given = any(e.mask is not None for e in entries)
    frames = load_frames([e.image for e in entries], [e.mask for e in entries] if masks_given else None, cfg,
                         expected_sizes=[_expected_size(e) for e in entries], listed_in=main_json,
                         description=f"reading {main_json.name}")
    intr = [_intrinsics(e, int(w), int(h)) for e, (w, h) in zip(entries, frames.sizes)]
    cams = Cameras.create(
        c2w=opengl_to_opencv(np.stack([e.c2w_gl for e in entries])),
        fx=[i[0] for i in intr], fy=[i[1] for i in intr], cx=[i[2] for i in intr], cy=[i[3] for i in intr],
        width=frames.sizes[:, 0], height=frames.sizes[:, 1], dist=np.array([i[4] for i in intr]),
    )
    if np.any(frames.scale != 1.0):
        cams = cams.scaled(frames.scale)

    names = frame_names([e.image for e in entries], root)
    cap_json = _read_capture_json(root) if isinstance(main_data.get("recon"), dict) else {}
    prov = {f["name"]: f for f in cap_json.get("frames", []) if isinstance(f, dict) and "name" in f}
    infos = []
    for name, e, split in zip(names, entries, splits):
        p = prov.get(name, {})
        infos.append(FrameInfo(name=name, source=str(p.get("source") or e.image), index=p.get("index"),
                               timestamp=p.get("timestamp"), split=split))

    hashed = [p for p, _, _ in datas] + [e.image for e in entries] + [e.mask for e in entries if e.mask]
    meta: dict[str, Any] = {"source": str(path), "source_kind": "transforms",
                            "source_hash": hash_inputs(root, hashed)}
    points = points_rgb = None
    ply = main_data.get("ply_file_path")
    if ply:
        ply_path = root / str(ply)
        if ply_path.is_file():
            points, points_rgb = _read_ply_points(ply_path)
        else:
            log.warning(f"{ply_path}: point cloud listed in {main_json.name} not found; ignored")

    normalization = np.eye(4)
    block = main_data.get("recon")
    if isinstance(block, dict) and "normalization" in block:
        try:
            normalization = np.asarray(block["normalization"], dtype=np.float64).reshape(4, 4)
        except (TypeError, ValueError):
            raise InputError(main_json, "\"recon\".normalization must be a 4x4 matrix") from None
        meta["normalized"] = True
        meta["normalization_method"] = block.get("normalization_method", "recon")
        # The first source of a chain of recaptures stays the original.
        source = cap_json.get("source") if isinstance(cap_json.get("source"), dict) else {}
        prev = cap_json.get("meta") if isinstance(cap_json.get("meta"), dict) else {}
        if prev.get("original_source_hash"):
            source = {"path": prev.get("original_source"), "hash": prev["original_source_hash"]}
        if source.get("hash"):
            meta["original_source"] = source.get("path")
            meta["original_source_hash"] = source["hash"]
        if cap_json.get("sfm") is not None:
            meta["sfm"] = cap_json["sfm"]
        if isinstance(prev.get("masks"), dict) and frames.masks is not None:
            meta["masks"] = prev["masks"]  # which segmenter made the folder's masks
        if block.get("up") is not None:
            try:
                up = np.asarray(block["up"], dtype=np.float64).reshape(3)
            except (TypeError, ValueError):
                up = np.zeros(3)
            if not np.all(np.isfinite(up)) or np.linalg.norm(up) < 1e-9:
                raise InputError(main_json, "\"recon\".up must be a non-zero 3-vector")
            meta["up"], meta["up_method"] = up.tolist(), block.get("up_method") or "recon capture folder"
    else:  # Blender / nerfstudio / instant-ngp worlds are +Z up
        meta["up"], meta["up_method"] = Z_UP.tolist(), "convention (Blender/nerfstudio/instant-ngp world: +Z up)"
    return Capture(images=frames.images, cameras=cams, frames=infos, masks=frames.masks,
                   normalization=normalization, points=points, points_rgb=points_rgb, meta=meta)
