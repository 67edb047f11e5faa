"""Read (and, for tests and interchange, write) COLMAP sparse models.

A model is ``cameras``, ``images`` and ``points3D``, each as ``.bin`` or
``.txt`` (binary preferred when both exist), in the formats COLMAP documents
(https://colmap.github.io/format.html). Poses are world-to-camera quaternions
``(qw, qx, qy, qz)`` + translations in OpenCV axes, converted with
``colmap_to_c2w``. COLMAP's pixel convention (centre of the top-left pixel at
(0.5, 0.5)) is recon's, so principal points carry over unchanged.

Supported camera models are those recon's OpenCV pinhole + ``k1 k2 p1 p2 k3``
represents exactly: SIMPLE_PINHOLE, PINHOLE, SIMPLE_RADIAL, RADIAL, OPENCV.
Images come from ``images/`` beside ``sparse/`` (or beside the model, or the
given folder); masks, when a ``masks/`` folder sits beside ``images/``, from
``masks/<name>``, ``masks/<name>.png`` or ``masks/<stem>.png``.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..core.config import CaptureConfig
from ..core.conventions import c2w_to_colmap, colmap_to_c2w
from ..core.errors import InputError
from ..core.log import get_logger
from ..core.types import Cameras, Capture, FrameInfo
from .frame_files import frame_names, hash_inputs, load_frames
from .split import holdout_split

log = get_logger(__name__)

# model id -> (name, number of parameters), as COLMAP numbers them.
CAMERA_MODELS = {
    0: ("SIMPLE_PINHOLE", 3), 1: ("PINHOLE", 4), 2: ("SIMPLE_RADIAL", 4), 3: ("RADIAL", 5),
    4: ("OPENCV", 8), 5: ("OPENCV_FISHEYE", 8), 6: ("FULL_OPENCV", 12), 7: ("FOV", 5),
    8: ("SIMPLE_RADIAL_FISHEYE", 4), 9: ("RADIAL_FISHEYE", 5), 10: ("THIN_PRISM_FISHEYE", 12),
    11: ("RAD_TAN_THIN_PRISM_FISHEYE", 16),
}
MODEL_IDS = {name: i for i, (name, _) in CAMERA_MODELS.items()}
SUPPORTED = ("SIMPLE_PINHOLE", "PINHOLE", "SIMPLE_RADIAL", "RADIAL", "OPENCV")


@dataclass(frozen=True)
class ColmapCamera:
    id: int
    model: str
    width: int
    height: int
    params: np.ndarray


@dataclass(frozen=True)
class ColmapImage:
    id: int
    qvec: np.ndarray  # (w, x, y, z), world-to-camera
    tvec: np.ndarray
    camera_id: int
    name: str


@dataclass(frozen=True)
class ColmapModel:
    cameras: dict[int, ColmapCamera]
    images: dict[int, ColmapImage]
    points: np.ndarray  # (P, 3) float64
    points_rgb: np.ndarray  # (P, 3) uint8
    files: list[Path]


def camera_intrinsics(cam: ColmapCamera, where: Path) -> tuple[float, float, float, float, list[float]]:
    """(fx, fy, cx, cy, [k1 k2 p1 p2 k3]) of a supported COLMAP camera."""
    p = [float(x) for x in cam.params]
    if cam.model == "SIMPLE_PINHOLE":
        return p[0], p[0], p[1], p[2], [0.0] * 5
    if cam.model == "PINHOLE":
        return p[0], p[1], p[2], p[3], [0.0] * 5
    if cam.model == "SIMPLE_RADIAL":
        return p[0], p[0], p[1], p[2], [p[3], 0.0, 0.0, 0.0, 0.0]
    if cam.model == "RADIAL":
        return p[0], p[0], p[1], p[2], [p[3], p[4], 0.0, 0.0, 0.0]
    if cam.model == "OPENCV":
        return p[0], p[1], p[2], p[3], [p[4], p[5], p[6], p[7], 0.0]
    raise InputError(where, f"camera {cam.id} uses the {cam.model} model, which recon does not read "
                            f"(supported: {', '.join(SUPPORTED)}; undistort the images with COLMAP first)")


# --- text format -----------------------------------------------------------------------------

def _text_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of every line that is not a comment; empty lines kept."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot read file ({exc.__class__.__name__})") from None
    return [(i + 1, ln.strip()) for i, ln in enumerate(lines) if not ln.lstrip().startswith("#")]


def _read_cameras_txt(path: Path) -> dict[int, ColmapCamera]:
    cams = {}
    for no, ln in _text_lines(path):
        if not ln:
            continue
        tok = ln.split()
        try:
            cam = ColmapCamera(int(tok[0]), tok[1], int(tok[2]), int(tok[3]),
                               np.array([float(x) for x in tok[4:]]))
        except (IndexError, ValueError):
            raise InputError(path, f"line {no}: expected 'CAMERA_ID MODEL WIDTH HEIGHT PARAMS...'") from None
        expected = CAMERA_MODELS.get(MODEL_IDS.get(cam.model, -1), (None, None))[1]
        if expected is not None and len(cam.params) != expected:
            raise InputError(path, f"line {no}: {cam.model} takes {expected} parameters, got {len(cam.params)}")
        cams[cam.id] = cam
    return cams


def _read_images_txt(path: Path) -> dict[int, ColmapImage]:
    """Two lines per image: the pose line, then its 2D points (possibly empty, ignored)."""
    images = {}
    lines = _text_lines(path)
    i = 0
    while i < len(lines):
        no, ln = lines[i]
        if not ln:
            i += 1
            continue
        tok = ln.split()
        try:
            img = ColmapImage(int(tok[0]), np.array([float(x) for x in tok[1:5]]),
                              np.array([float(x) for x in tok[5:8]]), int(tok[8]), " ".join(tok[9:]))
        except (IndexError, ValueError):
            raise InputError(path, f"line {no}: expected 'IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME'") from None
        if not img.name:
            raise InputError(path, f"line {no}: image {img.id} has no name")
        images[img.id] = img
        i += 2  # skip the POINTS2D line
    return images


def _read_points_txt(path: Path) -> tuple[np.ndarray, np.ndarray]:
    xyz, rgb = [], []
    for no, ln in _text_lines(path):
        if not ln:
            continue
        tok = ln.split()
        try:
            xyz.append([float(x) for x in tok[1:4]])
            rgb.append([int(x) for x in tok[4:7]])
        except ValueError:
            raise InputError(path, f"line {no}: expected 'POINT3D_ID X Y Z R G B ERROR TRACK...'") from None
        if len(xyz[-1]) != 3 or len(rgb[-1]) != 3:
            raise InputError(path, f"line {no}: expected 'POINT3D_ID X Y Z R G B ERROR TRACK...'")
    return np.array(xyz, dtype=np.float64).reshape(-1, 3), np.array(rgb, dtype=np.uint8).reshape(-1, 3)


# --- binary format ---------------------------------------------------------------------------

class _Reader:
    """Little-endian struct reads that turn a short file into an InputError."""

    def __init__(self, f: BinaryIO, path: Path):
        self.f, self.path = f, path

    def read(self, fmt: str):
        size = struct.calcsize("<" + fmt)
        data = self.f.read(size)
        if len(data) != size:
            raise InputError(self.path, "file is truncated")
        return struct.unpack("<" + fmt, data)

    def skip(self, n: int) -> None:
        if len(self.f.read(n)) != n:
            raise InputError(self.path, "file is truncated")

    def cstring(self) -> str:
        out = bytearray()
        while (c := self.f.read(1)) != b"\0":
            if not c:
                raise InputError(self.path, "file is truncated")
            out += c
        return out.decode("utf-8", errors="replace")


def _read_cameras_bin(path: Path) -> dict[int, ColmapCamera]:
    cams = {}
    with open(path, "rb") as f:
        r = _Reader(f, path)
        (n,) = r.read("Q")
        for _ in range(n):
            cam_id, model_id, w, h = r.read("iiQQ")
            if model_id not in CAMERA_MODELS:
                raise InputError(path, f"camera {cam_id} has unknown model id {model_id}")
            name, n_params = CAMERA_MODELS[model_id]
            cams[cam_id] = ColmapCamera(cam_id, name, w, h, np.array(r.read("d" * n_params)))
    return cams


def _read_images_bin(path: Path) -> dict[int, ColmapImage]:
    images = {}
    with open(path, "rb") as f:
        r = _Reader(f, path)
        (n,) = r.read("Q")
        for _ in range(n):
            image_id, *pose, cam_id = r.read("I7dI")
            name = r.cstring()
            (n2d,) = r.read("Q")
            r.skip(24 * n2d)  # x, y (double) and point3D_id (int64) per 2D point
            images[image_id] = ColmapImage(image_id, np.array(pose[:4]), np.array(pose[4:]), cam_id, name)
    return images


def _read_points_bin(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, "rb") as f:
        r = _Reader(f, path)
        (n,) = r.read("Q")
        xyz = np.zeros((n, 3))
        rgb = np.zeros((n, 3), np.uint8)
        for i in range(n):
            _pid, x, y, z, cr, cg, cb, _err, track = r.read("Q3d3BdQ")
            xyz[i] = (x, y, z)
            rgb[i] = (cr, cg, cb)
            r.skip(8 * track)  # image_id (int32) and point2D_idx (int32) per track element
    return xyz, rgb


def read_colmap_model(model_dir: Path) -> ColmapModel:
    """Parse cameras, images and (optional) points3D from ``model_dir`` (.bin preferred)."""
    def pick(stem: str) -> Path | None:
        for ext in (".bin", ".txt"):
            if (model_dir / f"{stem}{ext}").is_file():
                return model_dir / f"{stem}{ext}"
        return None

    cam_path, img_path, pts_path = pick("cameras"), pick("images"), pick("points3D")
    if cam_path is None or img_path is None:
        raise InputError(model_dir, "no COLMAP cameras/images (.bin or .txt) in the folder")
    cams = (_read_cameras_bin if cam_path.suffix == ".bin" else _read_cameras_txt)(cam_path)
    images = (_read_images_bin if img_path.suffix == ".bin" else _read_images_txt)(img_path)
    if pts_path is not None:
        pts, rgb = (_read_points_bin if pts_path.suffix == ".bin" else _read_points_txt)(pts_path)
    else:
        pts, rgb = np.zeros((0, 3)), np.zeros((0, 3), np.uint8)
    files = [p for p in (cam_path, img_path, pts_path) if p is not None]
    return ColmapModel(cams, images, pts, rgb, files)


# --- reader ----------------------------------------------------------------------------------

def _image_dir(path: Path, model_dir: Path) -> Path:
    for cand in (path / "images", model_dir.parent / "images", model_dir.parent.parent / "images",
                 model_dir / "images"):
        if cand.is_dir():
            return cand
    return path


def _mask_for(mask_dir: Path | None, name: str) -> Path | None:
    if mask_dir is None:
        return None
    for cand in (mask_dir / name, mask_dir / f"{name}.png", (mask_dir / name).with_suffix(".png")):
        if cand.is_file():
            return cand
    return None


def read_colmap(path: str | Path, cfg: CaptureConfig) -> Capture:
    """Read a COLMAP model (a model folder, or a dataset folder with sparse/0 and images/)."""
    from .load import _colmap_model_dir

    path = Path(path)
    model_dir = _colmap_model_dir(path)
    if model_dir is None:
        raise InputError(path, "no COLMAP model (cameras and images .bin/.txt) found")
    model = read_colmap_model(model_dir)
    if not model.images:
        raise InputError(model_dir, "the COLMAP model has no registered images")
    image_dir = _image_dir(path, model_dir)
    mask_dir = image_dir.parent / "masks" if (image_dir.parent / "masks").is_dir() else None

    entries = sorted(model.images.values(), key=lambda im: im.name)
    img_file = model.files[1]
    paths, c2ws, intr = [], [], []
    for im in entries:
        p = image_dir / im.name
        if not p.is_file():
            raise InputError(p, f"image file not found (listed in {img_file.name} as image {im.id})")
        if im.camera_id not in model.cameras:
            raise InputError(img_file, f"image {im.name} uses camera {im.camera_id}, which is not in "
                                       f"{model.files[0].name}")
        if not (np.all(np.isfinite(im.qvec)) and np.all(np.isfinite(im.tvec)) and np.linalg.norm(im.qvec) > 1e-8):
            raise InputError(img_file, f"image {im.name} has an invalid pose (quaternion zero or values not finite)")
        paths.append(p)
        c2ws.append(colmap_to_c2w(im.qvec, im.tvec))
        intr.append(camera_intrinsics(model.cameras[im.camera_id], model.files[0]))
    masks = [_mask_for(mask_dir, im.name) for im in entries]
    if not any(masks):
        masks = None
    elif not all(masks):
        log.warning(f"{mask_dir}: masks found for only {sum(m is not None for m in masks)} of "
                    f"{len(masks)} images; ignoring masks")
        masks = None

    sizes = [(model.cameras[im.camera_id].width, model.cameras[im.camera_id].height) for im in entries]
    frames = load_frames(paths, masks, cfg, expected_sizes=sizes, listed_in=model.files[0],
                         description="reading images")
    cams = Cameras.create(np.stack(c2ws), [i[0] for i in intr], [i[1] for i in intr], [i[2] for i in intr],
                          [i[3] for i in intr], frames.sizes[:, 0], frames.sizes[:, 1],
                          np.array([i[4] for i in intr]))
    if np.any(frames.scale != 1.0):
        cams = cams.scaled(frames.scale)
    names = frame_names(paths, image_dir)
    splits = holdout_split(len(paths), cfg.test_every)
    infos = [FrameInfo(name=n, source=str(p), split=s) for n, p, s in zip(names, paths, splits)]
    hashed = [*model.files, *paths, *(m for m in masks or [] if m is not None)]
    meta = {"source": str(path), "source_kind": "colmap", "source_hash": hash_inputs(path, hashed),
            "colmap_model": str(model_dir)}
    has_pts = len(model.points) > 0
    return Capture(images=frames.images, cameras=cams, frames=infos, masks=frames.masks,
                   points=model.points if has_pts else None, points_rgb=model.points_rgb if has_pts else None,
                   meta=meta)


# --- writer ----------------------------------------------------------------------------------

def _camera_record(cap: Capture, i: int) -> tuple[str, list[float]]:
    c = cap.cameras
    k1, k2, p1, p2, k3 = (float(x) for x in c.dist[i])
    if k3 != 0.0:
        raise ValueError("COLMAP's OPENCV model has no k3; cannot write this camera exactly")
    fx, fy, cx, cy = float(c.fx[i]), float(c.fy[i]), float(c.cx[i]), float(c.cy[i])
    if c.has_distortion:
        return "OPENCV", [fx, fy, cx, cy, k1, k2, p1, p2]
    return "PINHOLE", [fx, fy, cx, cy]


def _model_records(cap: Capture):
    if cap.cameras is None:
        raise ValueError("a COLMAP model needs cameras")
    out = []
    for i, fr in enumerate(cap.frames):
        model, params = _camera_record(cap, i)
        q, t = c2w_to_colmap(cap.cameras.c2w[i])
        out.append((i + 1, model, int(cap.cameras.width[i]), int(cap.cameras.height[i]), params, q, t,
                    f"{fr.name}.png"))
    pts = np.zeros((0, 3)) if cap.points is None else np.asarray(cap.points, dtype=np.float64)
    rgb = np.full((len(pts), 3), 128, np.uint8) if cap.points_rgb is None else np.asarray(cap.points_rgb, np.uint8)
    return out, pts, rgb


def write_colmap_text(cap: Capture, out_dir: str | Path) -> None:
    """Write ``cap``'s cameras (one per frame) and points as cameras/images/points3D.txt.

    Image names are ``<frame name>.png``; the images themselves are not written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    recs, pts, rgb = _model_records(cap)
    with open(out / "cameras.txt", "w") as f:
        f.write("# CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]\n")
        for cid, model, w, h, params, *_ in recs:
            f.write(f"{cid} {model} {w} {h} {' '.join(repr(p) for p in params)}\n")
    with open(out / "images.txt", "w") as f:
        f.write("# IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME\n# POINTS2D[] as (X, Y, POINT3D_ID)\n")
        for cid, _m, _w, _h, _p, q, t, name in recs:
            f.write(f"{cid} {' '.join(repr(float(x)) for x in (*q, *t))} {cid} {name}\n\n")
    with open(out / "points3D.txt", "w") as f:
        f.write("# POINT3D_ID, X, Y, Z, R, G, B, ERROR, TRACK[] as (IMAGE_ID, POINT2D_IDX)\n")
        for k, (p, c) in enumerate(zip(pts, rgb)):
            f.write(f"{k + 1} {p[0]!r} {p[1]!r} {p[2]!r} {c[0]} {c[1]} {c[2]} 0.0\n")


def write_colmap_binary(cap: Capture, out_dir: str | Path) -> None:
    """Like ``write_colmap_text``, in COLMAP's binary format (.bin)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    recs, pts, rgb = _model_records(cap)
    with open(out / "cameras.bin", "wb") as f:
        f.write(struct.pack("<Q", len(recs)))
        for cid, model, w, h, params, *_ in recs:
            f.write(struct.pack("<iiQQ", cid, MODEL_IDS[model], w, h) + struct.pack(f"<{len(params)}d", *params))
    with open(out / "images.bin", "wb") as f:
        f.write(struct.pack("<Q", len(recs)))
        for cid, _m, _w, _h, _p, q, t, name in recs:
            f.write(struct.pack("<I7dI", cid, *q, *t, cid) + name.encode() + b"\0" + struct.pack("<Q", 0))
    with open(out / "points3D.bin", "wb") as f:
        f.write(struct.pack("<Q", len(pts)))
        for k, (p, c) in enumerate(zip(pts, rgb)):
            f.write(struct.pack("<Q3d3BdQ", k + 1, *map(float, p), *map(int, c), 0.0, 0))
