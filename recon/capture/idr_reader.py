"""Read IDR / NeuS / DTU captures: ``cameras_sphere.npz``, ``image/*.png``, ``mask/*.png``.

Camera i is the projection ``P = world_mat_i @ scale_mat_i``: ``world_mat``
projects world points to pixels, ``scale_mat`` maps the unit sphere onto the
region of interest, so ``P`` projects points of the *normalised* world (the
subject inside the unit sphere, as NeuS trains). Decomposing ``P[:3, :4]``
gives K, R and the camera centre; the capture's ``normalization`` (original ->
normalised) is ``inv(scale_mat)`` and the capture is marked normalised.

Pixel convention: IDR/NeuS cast rays through integer pixel coordinates (pixel
centres at integers), recon puts centres at integer + 0.5, so the principal
point moves by half a pixel. Images and masks pair up by sorted file name
(as NeuS does); frame i uses camera i.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.config import CaptureConfig
from ..core.errors import InputError
from ..core.imageio import IMAGE_SUFFIXES
from ..core.log import get_logger
from ..core.types import Cameras, Capture, FrameInfo
from .frame_files import frame_names, hash_inputs, load_frames
from .split import holdout_split

log = get_logger(__name__)


def _images_in(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def decompose_projection(P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """3x4 projection matrix -> (K 3x3 with K[2,2]=1 and positive focals, OpenCV c2w 4x4).

    ``P ~ K [R | t]`` up to scale (and sign); RQ-decomposes the left 3x3 block and
    fixes signs so that K has a positive diagonal and R is a proper rotation.
    """
    from scipy.linalg import rq

    P = np.asarray(P, dtype=np.float64)[:3, :4]
    M = P[:, :3]
    if np.linalg.det(M) < 0:  # P is defined up to scale: pick the sign that makes R a rotation
        P = -P
        M = P[:, :3]
    K, R = rq(M)
    D = np.diag(np.sign(np.diag(K)))
    K, R = K @ D, D @ R  # D @ D = I, so K @ R is unchanged
    center = -np.linalg.solve(M, P[:, 3])  # the camera centre: P @ [C, 1] = 0
    c2w = np.eye(4)
    c2w[:3, :3] = R.T
    c2w[:3, 3] = center
    return K / K[2, 2], c2w


def read_idr(path: str | Path, cfg: CaptureConfig) -> Capture:
    """Read an IDR/NeuS/DTU folder into a Capture already normalised to the unit sphere."""
    path = Path(path)
    npz_path = path / "cameras_sphere.npz"
    if not npz_path.is_file():
        raise InputError(path, "no cameras_sphere.npz in the folder")
    try:
        with np.load(npz_path) as z:
            cams_npz = {k: np.asarray(z[k], dtype=np.float64) for k in z.files}
    except Exception as exc:  # zipfile/pickle/format errors all mean the same to the user
        raise InputError(npz_path, f"cannot read camera file ({exc.__class__.__name__})") from None

    image_dir = path / "image" if (path / "image").is_dir() else path / "images"
    images = _images_in(image_dir)
    if not images:
        raise InputError(image_dir, "no images (expected image/*.png beside cameras_sphere.npz)")
    mask_dir = path / "mask" if (path / "mask").is_dir() else path / "masks"
    masks = _images_in(mask_dir) if cfg.masks != "none" else []
    if masks and len(masks) != len(images):
        raise InputError(mask_dir, f"{len(masks)} masks for {len(images)} images in {image_dir.name}/")

    Ks, c2ws, scale_mats = [], [], []
    for i, img in enumerate(images):
        if f"world_mat_{i}" not in cams_npz:
            raise InputError(npz_path, f"no world_mat_{i} for image {img.name}")
        world = cams_npz[f"world_mat_{i}"]
        scale = cams_npz.get(f"scale_mat_{i}", np.eye(4))
        if world.shape not in ((4, 4), (3, 4)) or scale.shape != (4, 4):
            raise InputError(npz_path, f"world_mat_{i}/scale_mat_{i} must be 4x4 matrices")
        P = world[:3, :4] @ scale
        sv = np.linalg.svd(P[:, :3], compute_uv=False) if np.all(np.isfinite(P)) else None
        if sv is None or sv[-1] <= 1e-12 * sv[0]:  # not finite, or (numerically) singular
            raise InputError(npz_path, f"world_mat_{i} (image {img.name}) is not a valid projection "
                                       f"({'not finite' if sv is None else 'singular'})")
        K, c2w = decompose_projection(P)
        Ks.append(K)
        c2ws.append(c2w)
        scale_mats.append(scale)
    scale_mat = scale_mats[0]
    if any(np.abs(s - scale_mat).max() > 1e-6 * max(1.0, np.abs(scale_mat).max()) for s in scale_mats):
        raise InputError(npz_path, "scale_mat_i differ between cameras (one normalisation expected)")
    s3 = scale_mat[:3, :3]
    if np.abs(s3 - np.diag(np.diag(s3))).max() > 1e-9 * np.abs(s3).max() or np.ptp(np.diag(s3)) > 1e-9 * np.abs(s3).max():
        log.warning(f"{npz_path}: scale_mat is not a uniform scale + translation")

    frames = load_frames(images, masks or None, cfg, listed_in=npz_path, description="reading images")
    K = np.stack(Ks)
    skew = np.abs(K[:, 0, 1]).max() / np.abs(K[:, 0, 0]).min()
    if skew > 1e-3:
        log.warning(f"{npz_path}: intrinsics have skew (max {skew:.2g} of fx); ignored")
    cams = Cameras.create(
        c2w=np.stack(c2ws), fx=K[:, 0, 0], fy=K[:, 1, 1],
        cx=K[:, 0, 2] + 0.5, cy=K[:, 1, 2] + 0.5,  # integer pixel centres -> +0.5 centres
        width=frames.sizes[:, 0], height=frames.sizes[:, 1])
    if np.any(frames.scale != 1.0):
        cams = cams.scaled(frames.scale)

    names = frame_names(images, image_dir)
    splits = holdout_split(len(images), cfg.test_every)
    infos = [FrameInfo(name=n, source=str(p), index=i, split=s)
             for i, (n, p, s) in enumerate(zip(names, images, splits))]
    meta = {"source": str(path), "source_kind": "idr",
            "source_hash": hash_inputs(path, [npz_path, *images, *masks])}
    normalization = np.eye(4)
    if "scale_mat_0" in cams_npz:  # without scale_mats load_capture normalises as usual
        normalization = np.linalg.inv(scale_mat)
        meta.update(normalized=True, normalization_method="scale_mat")
    return Capture(images=frames.images, cameras=cams, frames=infos, masks=frames.masks,
                   normalization=normalization, meta=meta)
