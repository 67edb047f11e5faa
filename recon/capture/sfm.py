"""Camera poses and intrinsics for unposed captures: incremental structure-from-motion (pycolmap).

Stages (each logged with its time): the frames are written to a temporary
folder; SIFT features are extracted; image pairs are matched and verified
(``sequential`` for video frames, whose neighbours in time overlap, or
``exhaustive`` for photo sets); COLMAP's incremental mapper registers the
frames and triangulates sparse points. The largest reconstruction wins; frames
it did not register are dropped from the capture and named in
``meta["sfm"]["unregistered"]``. Too few registered frames is an SfMError.

Cameras: video frames share one camera (one lens, one zoom). A photo set shares
one camera when every photo has the same size and the same (or no) EXIF focal
length, and gets one camera per photo otherwise, started from its EXIF focal
length (``meta["intrinsics_prior"]``).

Video frames keep the radial distortion at zero: with a shared camera, a
short baseline and a moving subject, refining distortion during incremental
mapping lets focal length and distortion drift together until the
reconstruction collapses (seen on the bundled cat clip, 2 of 3 seeds), while
phone video comes out of the ISP already nearly undistorted. Photo sets refine
it (COLMAP's default).

Runs are repeatable: images enter COLMAP's database in a fixed order, RANSAC
and the mapper are seeded, and the mapper runs on one thread (its threaded
steps are not repeatable); extraction and matching use every core.

Poses are converted at this border: COLMAP world-to-camera -> OpenCV
camera-to-world (``conventions.colmap_to_c2w``).
"""
from __future__ import annotations

import logging
import math
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from ..core.config import SfMConfig
from ..core.conventions import colmap_to_c2w
from ..core.errors import SfMError
from ..core.log import get_logger
from ..core.progress import progress_bar
from ..core.types import Cameras, Capture

log = get_logger(__name__)

CAMERA_MODEL = "SIMPLE_RADIAL"  # focal, principal point, one radial term: stable on few frames
SEED = 0  # COLMAP's RANSAC and mapper seeds: the same frames give the same cameras


def _num_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _shared_camera(cap: Capture, priors: dict[str, float]) -> bool:
    """Whether all frames can share one camera (video, or one image size and one focal prior)."""
    if cap.meta.get("source_kind") == "video":
        return True
    sizes = {im.shape[:2] for im in cap.images}
    focals = [priors.get(f.name) for f in cap.frames]
    if len(sizes) > 1:
        return False
    if all(f is None for f in focals):
        return True
    if any(f is None for f in focals):
        return False
    return max(focals) <= 1.01 * min(focals)


def _set_focal_priors(pycolmap, db_path: Path, names: list[str], priors: dict[str, float]) -> int:
    """Start the cameras of images with a known focal length (pixels) from it; returns how many."""
    db = pycolmap.Database.open(str(db_path))
    try:
        done = set()
        for image in db.read_all_images():
            focal = priors.get(names[int(Path(image.name).stem)])
            if focal is None or image.camera_id in done:
                continue
            cam = db.read_camera(image.camera_id)
            params = np.array(cam.params)
            params[list(cam.focal_length_idxs())] = focal
            cam.params = params
            cam.has_prior_focal_length = True
            db.update_camera(cam)
            done.add(image.camera_id)
        return len(done)
    finally:
        db.close()


def _intrinsics(cam) -> tuple[float, float, float, float, np.ndarray]:
    """(fx, fy, cx, cy, dist[k1 k2 p1 p2 k3]) of a pycolmap camera."""
    p = np.asarray(cam.params, dtype=np.float64)
    model = cam.model.name
    dist = np.zeros(5)
    if model in ("SIMPLE_PINHOLE", "SIMPLE_RADIAL", "RADIAL"):
        fx = fy = p[0]
        cx, cy = p[1], p[2]
        dist[: len(p) - 3] = p[3:]  # k1 (, k2)
    elif model in ("PINHOLE", "OPENCV"):
        fx, fy, cx, cy = p[:4]
        dist[: len(p) - 4] = p[4:]  # k1 k2 p1 p2
    else:  # pragma: no cover - recon only asks COLMAP for the models above
        raise ValueError(f"camera model {model} is not supported")
    return fx, fy, cx, cy, dist


def _registration_floor(n: int, cfg: SfMConfig) -> int:
    return max(min(cfg.min_registered, n), math.ceil(cfg.min_registered_fraction * n))


def _feature_mask(mask: np.ndarray, region: str) -> np.ndarray:
    """COLMAP feature mask (255 = use) for ``region`` "subject" or "background" of a 0/255 subject mask."""
    h, w = mask.shape
    r = max(2, round(0.005 * max(h, w)))  # keep features off the outline, where the two motions mix
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    if region == "subject":
        return cv2.erode(mask, kernel)
    return 255 - cv2.dilate(mask, kernel)


def solve_cameras_for(cap: Capture, cfg, hull_iou: Callable[[Capture], float] | None = None) -> Capture:
    """SfM for ``recon.capture.load``: ``cfg`` is a CaptureConfig (its ``sfm``, ``sfm_region`` and
    ``rigid_hull_iou``).

    With masks of a moving subject and ``sfm_region`` auto, the subject alone is tried first
    (object-centric cameras: the subject holds still in them, as a static fit needs); when it
    does not register (too little texture, or a subject that bends, like an animal), the
    background alone (scene cameras). A subject that bends can still register on its rigid part
    (a walking cat's body): ``hull_iou`` (the mean silhouette IoU of one visual hull carved in
    the registered frames' cameras, supplied by a layer that carves hulls) then tells it from a
    rigid one, below ``cfg.rigid_hull_iou``. ``meta["sfm"]["why"]`` says which and why.
    """
    region = cfg.sfm_region
    moving = (cap.meta.get("masks") or {}).get("method") == "motion"
    if cap.masks is None or region in ("all", "subject", "background") or not moving:
        return solve_cameras(cap, cfg.sfm, region if region != "auto" else "all")
    # the subject covers a small part of each frame and turns quickly: match more neighbours, and
    # accept that frames where it is small or blurred do not register (they are dropped)
    sub = cfg.sfm.model_copy(update={"overlap": max(cfg.sfm.overlap, 15),
                                     "min_registered_fraction": min(cfg.sfm.min_registered_fraction, 0.4)})
    try:
        out = solve_cameras(cap, sub, "subject")
        why = (f"the subject moves; SfM on the subject alone registered {len(out)} of {len(cap)} frames: "
               "object-centric cameras, the subject holds still in them")
        if hull_iou is not None:
            iou = hull_iou(out)
            if iou < cfg.rigid_hull_iou:
                raise SfMError(None, f"registered {len(out)} of {len(cap)} frames, but it bends: one visual hull "
                               f"explains its masks in those cameras to IoU {iou:.2f} < "
                               f"capture.rigid_hull_iou {cfg.rigid_hull_iou:.2f}")
            why += f" (one visual hull explains its masks in them: IoU {iou:.2f})"
    except SfMError as exc:
        reason = exc.problem.split(";")[0]
        out = solve_cameras(cap, cfg.sfm, "background")
        why = (f"the subject moves; SfM on the subject alone failed ({reason}), so on the background alone: "
               f"scene cameras ({len(out)} of {len(cap)} frames), the subject moves in them")
    log.info(f"sfm: {why}")
    return replace(out, meta={**out.meta, "sfm": {**out.meta["sfm"], "why": why}})


def solve_cameras(cap: Capture, cfg: SfMConfig | None = None, region: str = "all") -> Capture:
    """Recover cameras and sparse points for ``cap`` (whose cameras are unknown) with COLMAP.

    Returns the capture restricted to the registered frames, with ``cameras``
    (OpenCV camera-to-world, pixels, distortion), ``points``/``points_rgb`` and
    ``meta["sfm"]`` = {registered, total, unregistered, n_points,
    mean_reproj_error, seconds, matcher, shared_camera}. Raises SfMError naming
    the source when fewer than ``cfg.min_registered`` frames or
    ``cfg.min_registered_fraction`` of them register.

    region: where features are taken when the capture has masks: "all", "subject" (inside
    the masks: cameras relative to the subject, for a subject that moves as one rigid body)
    or "background" (outside the dilated masks: cameras relative to the scene). COLMAP
    skips features where its mask image is black.
    """
    import pycolmap

    cfg = cfg or SfMConfig()
    source = cap.meta.get("source", "capture")
    n = len(cap)
    if n < 2:
        raise SfMError(source, f"structure-from-motion needs at least 2 frames, got {n}")
    is_video = cap.meta.get("source_kind") == "video"
    matcher = cfg.matcher if cfg.matcher != "auto" else ("sequential" if is_video else "exhaustive")
    priors = dict(cap.meta.get("intrinsics_prior") or {})
    shared = _shared_camera(cap, priors)
    threads = _num_threads()
    names = [f.name for f in cap.frames]
    t_start = time.perf_counter()

    old_level = pycolmap.logging.minloglevel
    if not log.isEnabledFor(logging.DEBUG):
        pycolmap.logging.minloglevel = 3  # COLMAP's own log (stderr) off unless --verbose: failures become SfMError
    pycolmap.set_random_seed(SEED)
    try:
        with tempfile.TemporaryDirectory(prefix="recon-sfm-") as tmp:
            tmp = Path(tmp)
            image_dir, db_path = tmp / "images", tmp / "database.db"
            # Files named by position: COLMAP's sequential matcher orders images by name.
            files = [f"{i:06d}.png" for i in range(n)]
            image_dir.mkdir()
            for fname, im in zip(files, cap.images):  # lossless PNG, fast (little compression)
                cv2.imwrite(str(image_dir / fname), np.ascontiguousarray(im[..., ::-1]),
                            [cv2.IMWRITE_PNG_COMPRESSION, 1])

            t = time.perf_counter()
            log.info(f"sfm: extracting SIFT features from {n} frames "
                     f"({'one shared camera' if shared else 'one camera per image'}, {threads} threads)")
            reader = pycolmap.ImageReaderOptions()
            reader.camera_model = CAMERA_MODEL
            if region != "all" and cap.masks is not None:
                (tmp / "masks").mkdir()
                for fname, m in zip(files, cap.masks):
                    cv2.imwrite(str(tmp / "masks" / f"{fname}.png"), _feature_mask(m, region))
                reader.mask_path = str(tmp / "masks")
            extraction = pycolmap.FeatureExtractionOptions()
            extraction.max_image_size = cfg.max_image_size
            extraction.num_threads = threads
            extraction.sift.max_num_features = cfg.max_features
            mode = pycolmap.CameraMode.SINGLE if shared else pycolmap.CameraMode.PER_IMAGE
            # Images enter the database in order first: extraction threads would otherwise number them
            # in completion order, and the image ids steer matching and RANSAC (same input, other cameras).
            pycolmap.Database.open(str(db_path)).close()
            pycolmap.import_images(db_path, image_dir, camera_mode=mode, image_names=files, options=reader)
            if priors:
                k = _set_focal_priors(pycolmap, db_path, names, priors)
                log.info(f"sfm: {k} camera(s) start from the EXIF focal length")
            pycolmap.extract_features(db_path, image_dir, image_names=files, reader_options=reader,
                                      extraction_options=extraction, camera_mode=mode)
            log.info(f"sfm: features done in {time.perf_counter() - t:.1f}s")

            t = time.perf_counter()
            matching = pycolmap.FeatureMatchingOptions()
            matching.num_threads = threads
            verification = pycolmap.TwoViewGeometryOptions()
            verification.ransac.random_seed = SEED
            if matcher == "sequential":
                log.info(f"sfm: matching each frame with its {cfg.overlap} neighbours in time")
                pairing = pycolmap.SequentialPairingOptions()
                pairing.overlap = cfg.overlap
                pairing.loop_detection = False  # needs a vocabulary tree file
                pycolmap.match_sequential(db_path, matching_options=matching, pairing_options=pairing,
                                          verification_options=verification)
            else:
                log.info(f"sfm: matching all {n * (n - 1) // 2} frame pairs")
                pycolmap.match_exhaustive(db_path, matching_options=matching,
                                          verification_options=verification)
            log.info(f"sfm: matching done in {time.perf_counter() - t:.1f}s")

            t = time.perf_counter()
            options = pycolmap.IncrementalPipelineOptions()
            # One thread: the mapper's threaded steps make runs differ (the cat clip: 2 different models
            # in 3 runs) while saving little (measured on 53 full-size car frames: 183-201 CPU-s with 2
            # threads, 193 with 1; its bundle adjustments are mostly single-threaded anyway).
            options.num_threads = 1
            options.random_seed = SEED
            options.ba_refine_extra_params = not is_video
            options.mapper.abs_pose_refine_extra_params = not is_video
            log.info("sfm: incremental mapping")
            with progress_bar("sfm: registering frames", total=n) as bar:
                recs = pycolmap.incremental_mapping(db_path, image_dir, tmp / "sparse", options=options,
                                                    next_image_callback=lambda: bar.advance(1))
            log.info(f"sfm: mapping done in {time.perf_counter() - t:.1f}s")
    finally:
        pycolmap.logging.minloglevel = old_level

    rec = max(recs.values(), key=lambda r: r.num_reg_images(), default=None)
    registered = {} if rec is None else {
        int(Path(im.name).stem): im for im in rec.images.values() if im.has_pose}
    k, need = len(registered), _registration_floor(n, cfg)
    if k < need:
        raise SfMError(source, f"structure-from-motion registered only {k} of {n} frames (need {need}); "
                               "the camera may move too little, too fast, or see too little texture")

    keep = sorted(registered)
    c2w, intr = [], []
    for i in keep:
        im = registered[i]
        pose = im.cam_from_world()
        x, y, z, w = pose.rotation.quat  # Eigen order
        c2w.append(colmap_to_c2w(np.array([w, x, y, z]), np.asarray(pose.translation)))
        intr.append(_intrinsics(rec.cameras[im.camera_id]))
    fx, fy, cx, cy, dist = (np.array(v) for v in zip(*intr))
    sizes = np.array([cap.images[i].shape[:2] for i in keep])
    cameras = Cameras.create(np.stack(c2w), fx, fy, cx, cy, sizes[:, 1], sizes[:, 0], dist)

    pts = list(rec.points3D.values())
    points = np.array([p.xyz for p in pts], dtype=np.float64).reshape(-1, 3)
    colors = np.array([p.color for p in pts], dtype=np.uint8).reshape(-1, 3)
    seconds = time.perf_counter() - t_start
    stats = {
        "registered": k,
        "total": n,
        "unregistered": [names[i] for i in range(n) if i not in registered],
        "n_points": len(pts),
        "mean_reproj_error": float(rec.compute_mean_reprojection_error()),
        "seconds": round(seconds, 2),
        "matcher": matcher,
        "shared_camera": shared,
        "camera_model": CAMERA_MODEL,
        "n_reconstructions": len(recs),
        "region": region if cap.masks is not None else "all",
    }
    log.info(f"sfm: registered {k} of {n} frames, {len(pts)} points, "
             f"reprojection error {stats['mean_reproj_error']:.2f}px, {seconds:.1f}s")
    if stats["unregistered"]:
        log.warning(f"sfm: dropped {n - k} unregistered frames: {', '.join(stats['unregistered'][:8])}"
                    + (" ..." if n - k > 8 else ""))
    out = cap.subset(keep)
    return replace(out, cameras=cameras, points=points, points_rgb=colors,
                   meta={**cap.meta, "sfm": stats})
