"""Turn any supported source into one normalised ``Capture``.

Source kinds (``detect_source``):
  video        a video file (.mp4 .mov .webm .mkv .avi .m4v)
  transforms   a folder (or file) with transforms.json / transforms_{train,test}.json
               (nerfstudio, instant-ngp, Blender; also recon's own capture folders)
  colmap       a COLMAP sparse model folder (cameras/images/points3D .bin or .txt),
               or a dataset folder holding ``sparse/0`` (or ``sparse``) and ``images``
  idr          an IDR/NeuS/DTU folder with cameras_sphere.npz, image/, mask/
  images       a folder of image files without poses (cameras from SfM)
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from ..core.config import CaptureConfig
from ..core.errors import InputError
from ..core.log import get_logger
from ..core.types import Capture
from .upright import with_up

log = get_logger(__name__)

VIDEO_SUFFIXES = {".mp4", ".mov", ".webm", ".mkv", ".avi", ".m4v"}


def _colmap_model_dir(path: Path) -> Path | None:
    for cand in (path, path / "sparse" / "0", path / "sparse", path / "colmap" / "sparse" / "0"):
        if any((cand / f"images{ext}").is_file() for ext in (".bin", ".txt")) and \
                any((cand / f"cameras{ext}").is_file() for ext in (".bin", ".txt")):
            return cand
    return None


def detect_source(source: str | Path) -> str:
    """Name the kind of ``source``; raise InputError if it is none we read."""
    path = Path(source)
    if not path.exists():
        raise InputError(path, "no such file or folder")
    if path.is_file():
        if path.suffix.lower() in VIDEO_SUFFIXES:
            return "video"
        if path.suffix.lower() == ".json":
            return "transforms"
        raise InputError(path, f"unsupported input file type '{path.suffix}' (expected a video, "
                               "a transforms.json, or a folder)")
    if any((path / n).is_file() for n in ("transforms.json", "transforms_train.json")):
        return "transforms"
    if (path / "cameras_sphere.npz").is_file():
        return "idr"
    if _colmap_model_dir(path) is not None:
        return "colmap"
    from ..core.imageio import IMAGE_SUFFIXES

    if any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.iterdir()) or \
            ((path / "images").is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in (path / "images").iterdir())):
        return "images"
    raise InputError(path, "folder holds no images, transforms.json, COLMAP model or cameras_sphere.npz")


def read_source(source: str | Path, cfg: CaptureConfig) -> Capture:
    """Read ``source`` with the reader for its kind; cameras may be None (no poses)."""
    kind = detect_source(source)
    path = Path(source)
    if kind == "video":
        from .video_reader import read_video
        return read_video(path, cfg)
    if kind == "transforms":
        from .transforms_reader import read_transforms
        return read_transforms(path, cfg)
    if kind == "idr":
        from .idr_reader import read_idr
        return read_idr(path, cfg)
    if kind == "colmap":
        from .colmap_reader import read_colmap
        return read_colmap(path, cfg)
    from .image_folder_reader import read_image_folder
    return read_image_folder(path, cfg)


def _segment(cap: Capture, cfg: CaptureConfig, method: str, why: str | None = None) -> Capture:
    """``cap`` with masks from the segmenter ``method`` (``recon.capture.segment``) and the options in ``cfg``."""
    from .segment import segment_capture

    options: dict = {}
    if method == "folder":
        if not cfg.masks_path:
            raise InputError(None, "segmenter 'folder' needs a mask folder or video (--masks PATH)")
        options = {"path": cfg.masks_path}
    elif method == "prompt":
        if cfg.subject_box is None:
            raise InputError(None, "segmenter 'prompt' needs a box (--subject-box x0,y0,x1,y1)")
        box = np.asarray(cfg.subject_box, np.float64)
        points = np.asarray(cfg.subject_points, np.float64).reshape(-1, 3)
        src_size = (cap.meta.get("video") or {}).get("size")  # a video's prompt is in its own pixels
        if src_size and cfg.prompt_frame < len(cap):
            scale = cap.images[cfg.prompt_frame].shape[1] / float(src_size[0])
            box, points[:, :2] = box * scale, points[:, :2] * scale
        options = {"box": box.tolist(), "points": [(x, y, int(lab)) for x, y, lab in points],
                   "prompt_frame": cfg.prompt_frame}
    elif method == "onnx":
        if not cfg.onnx_model:
            raise InputError(None, "segmenter 'onnx' needs a model file (--onnx-masks MODEL.onnx)")
        options = {"model_path": cfg.onnx_model, "threshold": cfg.onnx_threshold,
                   "mean": cfg.onnx_mean, "std": cfg.onnx_std}
    elif method == "people":
        options = {"mode": cfg.people_mode}
    cap = segment_capture(cap, method, **options)
    if why:
        cap.meta["masks"]["why"] = why
    log.info(f"masks from the {method} segmenter{f' ({why})' if why else ''}: "
             f"mean subject coverage {cap.meta['masks']['mean_coverage']:.3f}")
    return cap


def downscale(cap: Capture, max_size: int) -> Capture:
    """``cap`` with images, masks and cameras brought down so the longest side is at most ``max_size``."""
    import cv2

    from .frame_selection import fit_size

    images, masks, scale = [], [], []
    for i, im in enumerate(cap.images):
        h, w = im.shape[:2]
        nw, nh = fit_size(w, h, max_size)
        scale.append((nw / w, nh / h))
        images.append(im if (nw, nh) == (w, h) else cv2.resize(im, (nw, nh), interpolation=cv2.INTER_AREA))
        if cap.masks is not None:
            m = cv2.resize(cap.masks[i], (nw, nh), interpolation=cv2.INTER_AREA)
            masks.append(np.where(m > 127, 255, 0).astype(np.uint8))
    sx, sy = np.array(scale).T
    c = cap.cameras
    cams = None if c is None else type(c).create(
        c.c2w, c.fx * sx, c.fy * sy, c.cx * sx, c.cy * sy, [im.shape[1] for im in images],
        [im.shape[0] for im in images], c.dist)
    return replace(cap, images=images, masks=masks if cap.masks is not None else None, cameras=cams)


BEFORE_SFM = ("folder", "prompt", "motion", "onnx", "people")  # segmenters that need no cameras


def pick_segmenter(cap: Capture, cfg: CaptureConfig) -> tuple[str, str | None]:
    """The segmenter to run on ``cap`` and why: ``cfg.segmenter``, or for "auto" none when the
    source has masks, else motion or static by ``recon.capture.subject_motion``."""
    if cfg.segmenter != "auto":
        return cfg.segmenter, None
    if cap.masks is not None:
        return "none", None
    from .subject_motion import subject_motion

    evidence = subject_motion(cap)
    return ("motion" if evidence["moving"] else "static"), f"automatic: {evidence['reason']}"


def load_capture(source: str | Path, config: CaptureConfig | None = None, normalize: bool = True,
                 hull_iou=None) -> Capture:
    """Read any supported source into a Capture with cameras, normalised to the unit sphere.

    Frames without poses get cameras from structure-from-motion (pycolmap); ``meta["up"]``
    says which way is up (``recon.capture.upright``). Masks come from the source or from the
    configured segmenter (``pick_segmenter``); those that need no cameras run before SfM.
    ``hull_iou``: the rigidity check for a moving subject's own cameras (``sfm.solve_cameras_for``).
    """
    cfg = config or CaptureConfig()
    target = cfg.max_size
    if target is not None and detect_source(source) in ("video", "images"):
        # frames without poses: segment and solve cameras at SfM's resolution (small subjects need
        # the pixels), then bring everything down to max_size
        cfg_read = cfg.model_copy(update={"max_size": max(target, cfg.sfm.max_image_size)})
    else:
        cfg_read = cfg
    cap = read_source(source, cfg_read)
    method, why = pick_segmenter(cap, cfg)
    if method in BEFORE_SFM:
        cap = _segment(cap, cfg, method, why)
    if cap.cameras is None:
        from .sfm import solve_cameras_for
        cap = solve_cameras_for(cap, cfg, hull_iou)
    if cfg_read is not cfg:
        cap = downscale(cap, target)
    if method == "static":  # needs the cameras; before normalising, which centres on the subject
        cap = _segment(cap, cfg, method, why)
    if normalize and not cap.meta.get("normalized", False):
        from .normalize import normalize_capture
        cap = normalize_capture(cap)
    return replace(cap, meta=with_up(cap.meta, cap.cameras, cfg.up, cap.normalization))


def capture_to_folder(source: str | Path, out: str | Path, config: CaptureConfig | None = None,
                      overwrite: bool = False, hull_iou=None) -> Capture:
    """``recon capture``: load ``source`` and write a capture folder atomically to ``out``.

    The folder holds frames/, masks/, transforms.json (nerfstudio-compatible)
    and capture.json (source, hashes, frame picks, SfM statistics).
    """
    from ..core.fsutil import atomic_dir
    from .capture_writer import write_capture_folder

    cap = load_capture(source, config, hull_iou=hull_iou)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        write_capture_folder(cap, tmp)
    log.info(f"wrote {len(cap)} frames to {out}")
    return cap
