"""The head job: ``recon fit --image photo.jpg --subject head`` and ``recon fit --video face.mp4 --subject head``
(``recon.pipeline.fit`` hands a head here), in the same job folder as every model:

    out/capture/  frames/<name>.png (the frames read), faces.json (per frame: MediaPipe's 478 landmarks of
                  the face fitted, or null where none was usable), capture.json (source and its hash)
    out/fit/      head_fit.npz (identity, expressions, head poses, intrinsics, the offsets of the shape
                  beyond the model: ``detail``), transforms.json (nerfstudio's format: the head poses as the
                  frames' cameras, in the head's frame), eval.json (landmark reprojection errors, silhouette IoU
                  before and after the offsets, frames fitted, seconds), config.yaml
    out/asset/    <name>.glb/.obj/.ply on ICT-FaceKit's topology (every head shares its vertices' meaning),
                  the 57 ARKit expressions as morph targets and an "expressions" animation (the video's, or
                  neutral -> the photo's -> neutral), landmarks.json (Multi-PIE 68, dense, MediaPipe 478: a
                  triangle of the mesh and barycentric weights each), metrics.json, report.html, thumb.png,
                  turntable.mp4, provenance.json (``recon.bake.asset_writer``)

No SfM: skin gives it little to match, and the head's pose in each frame (from its landmarks) is the camera.
The asset stays in the head model's frame: metres, +Y up, the face towards +Z.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import torch

from ..core.config import Config, write_config
from ..core.errors import START_AGAIN, InputError, read_json_object
from ..core.fsutil import atomic_dir, sha256_file
from ..core.log import get_logger
from ..core.types import Cameras, Capture, FrameInfo
from .model import HeadModel, load_head_model
from .observe import FaceObservation, crop_intrinsics, face_crop, warp_crop

log = get_logger(__name__)

REPORT_VIEWS = 6  # frames the report shows beside the re-rendered head
REPORT_SIZE = 360  # pixels across the report's face crops
REPORT_CROP = 1.8  # their side over the face landmarks' box's larger side


def read_head_source(data, cfg: Config) -> Capture:
    """The frames to fit: one photo, ``head.frames`` frames of a video (full resolution: landmarks need
    pixels), or an in-memory Capture as it is."""
    from ..capture.load import VIDEO_SUFFIXES
    from ..capture.video_reader import read_video
    from ..core.imageio import IMAGE_SUFFIXES, read_image

    if isinstance(data, Capture):
        return data
    path = Path(data)
    if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
        return Capture([read_image(path)], None, [FrameInfo(name=path.stem, source=str(path))],
                       meta={"source": str(path), "source_kind": "photo", "source_hash": sha256_file(path)})
    if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
        return read_video(path, cfg.capture.model_copy(update={"max_frames": cfg.head.frames, "test_every": 0,
                                                               "max_size": None}))
    raise InputError(path, "a head is fitted from one photo (--image, e.g. .jpg/.png) or a video file (--video), "
                           f"not {'a folder' if path.is_dir() else 'this file'}")


def face_yaw_deg(obs: FaceObservation) -> float:
    """How far the face is turned from the camera (degrees, 0 = frontal), from MediaPipe's 3D landmarks: the
    angle of the line between the outer eye corners (points 33 and 263) out of the image plane."""
    d = obs.landmarks[263] - obs.landmarks[33]
    return float(abs(math.degrees(math.atan2(float(d[2]), float(d[0])))))


def _box_iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / area if area > 0 else 0.0


def find_faces(cap: Capture, cfg: Config) -> list[FaceObservation | None]:
    """The face to fit in each frame (None where none was found, or it is turned past ``head.max_yaw_deg``).
    In a video the first frame with faces picks one (``head.face_index``, else the largest, with a
    warning when there are several); later frames with several follow it (the face overlapping the last
    one picked most). A photo without a usable face, or a video without any, is an InputError."""
    from ..core.progress import track
    from .observe import FaceMeshDetector, pick_face

    photo = len(cap) == 1
    out: list[FaceObservation | None] = []
    turned = 0
    with FaceMeshDetector() as det:
        for i in track(range(len(cap)), "finding faces", total=len(cap)):
            found = det.detect(cap.images[i])
            where = cap.frames[i].source if photo else f"{cap.frames[i].source} frame {cap.frames[i].name}"
            if not found and not photo:
                out.append(None)
                continue
            prev = next((f for f in reversed(out) if f is not None), None)
            if prev is not None and cfg.head.face_index is None and len(found) > 1:
                face = max(found, key=lambda f: _box_iou(f.box, prev.box))  # the same person as before
            else:
                face = pick_face(found, where, cfg.head.face_index)
            yaw = face_yaw_deg(face)
            if yaw > cfg.head.max_yaw_deg:
                if photo:
                    raise InputError(where, f"the face is turned {yaw:.0f} deg from the camera, past what the "
                                            f"landmarker handles (head.max_yaw_deg {cfg.head.max_yaw_deg:.0f}): "
                                            "use a photo nearer frontal")
                turned += 1
                face = None
            out.append(face)
    kept = sum(f is not None for f in out)
    if kept == 0:
        raise InputError(cap.meta.get("source"), "no usable face in any frame (mediapipe face mesh): the face must "
                                                 "be visible, lit and not turned much past profile")
    if kept < len(out):
        log.warning("faces in %d of %d frames (%d turned past %.0f deg, %d without a face): fitting those",
                    kept, len(out), turned, cfg.head.max_yaw_deg, len(out) - kept - turned)
    return out


def intrinsics_of(cap: Capture, cfg: Config) -> np.ndarray:
    """(N, 4) fx, fy, cx, cy per frame: the capture's cameras when it has them, else a lens of
    ``head.fov_deg`` (``fit.default_focal``)."""
    from .fit import default_focal

    if cap.cameras is not None:
        c = cap.cameras
        return np.stack([c.fx, c.fy, c.cx, c.cy], 1).astype(np.float64)
    rows = []
    for img in cap.images:
        h, w = img.shape[:2]
        f = default_focal(w, h, cfg.head.fov_deg)
        rows.append([f, f, w / 2, h / 2])
    return np.array(rows)


# -- the job folder's stages -------------------------------------------------------------------------

def _write_capture(cap_dir: Path, cap: Capture, faces: list, intr: np.ndarray, assumed: bool) -> None:
    from ..core.imageio import write_image

    with atomic_dir(cap_dir, overwrite=True) as tmp:
        (tmp / "frames").mkdir()
        for img, fr in zip(cap.images, cap.frames):
            write_image(tmp / "frames" / f"{fr.name}.png", img)
        rows = [{"name": fr.name, "index": fr.index, "timestamp": fr.timestamp, "intrinsics": k.tolist(),
                 "faces_found": f.faces_found if f is not None else 0,
                 "box": list(f.box) if f is not None else None,
                 "landmarks": np.round(f.landmarks, 3).tolist() if f is not None else None}
                for fr, f, k in zip(cap.frames, faces, intr)]
        (tmp / "faces.json").write_text(json.dumps({
            "detector": "mediapipe face mesh 0.10.21 (478 points: x, y pixels, z relative depth)",
            "intrinsics": "assumed (head.fov_deg)" if assumed else "the capture's", "frames": rows}))
        from .. import __version__

        src = {"path": cap.meta.get("source"), "kind": cap.meta.get("source_kind"), "hash": cap.meta.get("source_hash")}
        (tmp / "capture.json").write_text(json.dumps({"source": src, "recon_version": __version__,
                                                      "frames": len(cap), "video": cap.meta.get("video")}, indent=1))


def _read_capture(cap_dir: Path) -> tuple[Capture, list, np.ndarray]:
    from ..core.imageio import read_image

    info = read_json_object(cap_dir / "capture.json", START_AGAIN)
    rows = read_json_object(cap_dir / "faces.json", START_AGAIN)["frames"]
    images = [read_image(cap_dir / "frames" / f"{r['name']}.png") for r in rows]
    src = info.get("source") or {}
    frames = [FrameInfo(name=r["name"], source=str(src.get("path")), index=r["index"], timestamp=r["timestamp"])
              for r in rows]
    faces = [None if r["landmarks"] is None else
             FaceObservation(np.asarray(r["landmarks"], np.float32), tuple(r["box"]), r["faces_found"]) for r in rows]
    cap = Capture(images, None, frames, meta={"source": src.get("path"), "source_kind": src.get("kind"),
                                              "source_hash": src.get("hash"), "video": info.get("video")})
    return cap, faces, np.array([r["intrinsics"] for r in rows], np.float64)


def _fit(model: HeadModel, faces: list, intr: np.ndarray, photo: bool, cfg: Config):
    from ..core.progress import progress_bar
    from .fit import HeadFitConfig, fit_head

    keep = np.array([i for i, f in enumerate(faces) if f is not None])
    with progress_bar("fitting the head", total=cfg.head.steps) as bar:
        return fit_head(model, [faces[i] for i in keep], intr[keep], HeadFitConfig(steps=cfg.head.steps),
                        frames=keep, shared_expression=photo,
                        progress=lambda step, steps: bar.update(completed=step))


def head_pose_transforms(cap: Capture, fit, intr: np.ndarray) -> dict:
    """A nerfstudio transforms.json for the fitted frames with the head's pose as each frame's camera (the
    world is the head frame: metres, +Y up, the face towards +Z), its paths relative to ``out/fit/``: what
    SfM could not give on skin, for other tools to use."""
    from ..capture.capture_writer import transforms_dict

    frames = [replace(cap.frames[i], split="train") for i in fit.frames]
    k = intr[fit.frames]
    cams = Cameras.create(np.stack([np.linalg.inv(fit.head_to_camera(j)) for j in range(len(fit.frames))]),
                          k[:, 0], k[:, 1], k[:, 2], k[:, 3], [cap.images[i].shape[1] for i in fit.frames],
                          [cap.images[i].shape[0] for i in fit.frames])
    out = transforms_dict(Capture([cap.images[i] for i in fit.frames], cams, frames))
    for f in out["frames"]:
        f["file_path"] = "../capture/" + f["file_path"]
    out["recon"]["convention"] = ("transform_matrix: OpenGL camera-to-world in the head model's frame (metres, +Y up, "
                                  "the face towards +Z), from the fitted head pose")
    return out


def _save_fit(fit_dir: Path, fit, offset: np.ndarray | None, intr: np.ndarray, ev: dict, cfg: Config,
              cap: Capture) -> None:
    with atomic_dir(fit_dir, overwrite=True) as tmp:
        (tmp / "transforms.json").write_text(json.dumps(head_pose_transforms(cap, fit, intr), indent=1))
        extra = {} if offset is None else {"detail_offset": offset}
        np.savez(tmp / "head_fit.npz", identity=fit.identity, expression=fit.expression, rotation=fit.rotation,
                 translation=fit.translation, frames=fit.frames, residual_px=fit.residual_px,
                 residual_face=fit.residual_face, intrinsics=intr, **extra)
        (tmp / "eval.json").write_text(json.dumps(ev, indent=1))
        write_config(cfg, tmp / "config.yaml")


def _load_fit(fit_dir: Path):
    from .fit import HeadFit

    with np.load(fit_dir / "head_fit.npz") as z:
        fit = HeadFit(**{k: z[k] for k in ("identity", "expression", "rotation", "translation", "frames",
                                           "residual_px", "residual_face")})
        return fit, (z["detail_offset"] if "detail_offset" in z.files else None), z["intrinsics"]


def landmark_errors(model: HeadModel, fit, faces: list, intr: np.ndarray) -> np.ndarray:
    """(N,) mean distance in pixels, per fitted frame, between MediaPipe's 478 detected points (iris
    included) and the same points on the fitted head projected into that frame."""
    from .landmarks import mediapipe_embeddings, view_yaw

    emb = mediapipe_embeddings()
    out = []
    for k, i in enumerate(fit.frames):
        yaw = view_yaw(fit.head_to_camera(k))
        p = project(fit, k, emb.points(_posed(model, fit, k), model.faces, yaw).numpy(), intr[i])
        out.append(float(np.linalg.norm(p - faces[i].landmarks[:, :2], axis=1).mean()))
    return np.array(out)


def _posed(model: HeadModel, fit, k: int, grow: np.ndarray | None = None) -> torch.Tensor:
    """(V, 3) the fitted head in frame ``k`` (head frame), with ``grow`` (V, 3) (``detail.growth``) added."""
    v = model.vertices(torch.as_tensor(fit.identity), torch.as_tensor(fit.expression[k]))
    return v if grow is None else v + torch.as_tensor(grow, dtype=v.dtype)


def project(fit, k: int, points: np.ndarray, intrinsics) -> np.ndarray:
    """(P, 2) pixels: head-frame ``points`` (P, 3) in fitted frame ``k``."""
    fx, fy, cx, cy = intrinsics
    c = points @ fit.rotation[k].T + fit.translation[k]
    return np.stack([fx * c[:, 0] / c[:, 2] + cx, fy * c[:, 1] / c[:, 2] + cy], 1)


def _report_views(model: HeadModel, mesh, fit, cap: Capture, faces: list, intr: np.ndarray, errors: np.ndarray,
                  grow: np.ndarray):
    """The report's input strip (each frame's face with its 478 detections drawn) and pairs (the face |
    the fitted head re-rendered from that frame's camera with the dense landmarks drawn), cropped to the face."""
    from ..bake.preview import render
    from .landmarks import landmark_sets

    dense = landmark_sets(model)["dense"]
    pick = np.unique(np.linspace(0, len(fit.frames) - 1, min(REPORT_VIEWS, len(fit.frames))).round().astype(int))
    strip, pairs = [], []
    for k in pick:
        i = int(fit.frames[k])
        img, face = cap.images[i], faces[i]
        A = face_crop(face.box, REPORT_CROP, REPORT_SIZE)  # small faces are enlarged
        K = crop_intrinsics(intr[i], A)
        cam = Cameras.create(np.linalg.inv(fit.head_to_camera(k)), *K, REPORT_SIZE, REPORT_SIZE)
        posed = replace(mesh, positions=(mesh.positions + np.einsum("k,kvc->vc", fit.expression[k],
                                                                    mesh.morph_positions)).astype(np.float32))
        view = render(posed, cam, lit=False)[0]
        rr = np.ascontiguousarray((np.clip(view["rgb"], 0, 1) * 255 + 0.5).astype(np.uint8))
        pts = dense.at(_posed(model, fit, k, grow), model.faces).numpy()
        uv = project(fit, k, pts, K)
        z = pts @ fit.rotation[k].T + fit.translation[k]
        xi, yi = (np.clip(c.astype(int), 0, REPORT_SIZE - 1) for c in uv.T)
        for (x, y), d, zz in zip(uv, view["depth"][yi, xi], z[:, 2]):
            if d > 0 and zz <= d + 0.004:  # visible points only
                cv2.circle(rr, (int(x), int(y)), 1, (0, 170, 255), -1)
        photo = warp_crop(img, A, REPORT_SIZE, cv2.INTER_CUBIC, cv2.BORDER_REPLICATE)
        drawn = photo.copy()
        for x, y in face.landmarks[:, :2] @ A[:, :2].T + A[:, 2]:
            cv2.circle(drawn, (int(x), int(y)), 1, (0, 255, 120), -1)
        strip.append(drawn)
        pairs.append((photo, rr, f"{cap.frames[i].name}: {len(dense)} dense landmarks drawn on the fitted head; "
                                 f"the 478 detected points reproject at {errors[k]:.2f} px mean"))
    return strip, pairs


def _fit_detail(model: HeadModel, fit, cap: Capture, faces: list, intr: np.ndarray, cfg: Config
                ) -> tuple[np.ndarray | None, dict]:
    """The shape beyond the model (``detail.fit_detail``) from the person's silhouettes in the fitted frames
    (a video holds every 5th out and reports its silhouette IoU there), and the figures for eval.json."""
    from ..capture.people_masks import people_masks
    from .detail import DetailConfig, fit_detail

    if cfg.head.detail_steps <= 0:
        return None, {}
    t0 = time.perf_counter()
    sub = Capture([cap.images[i] for i in fit.frames], None, [cap.frames[i] for i in fit.frames])
    masks, _ = people_masks(sub, "selfie")
    lm = model.landmarks68.numpy()
    chin = [project(fit, k, _posed(model, fit, k).numpy()[lm[8:9]], intr[i])[0, 1]
            for k, i in enumerate(fit.frames)]
    n = len(fit.frames)
    held = (np.arange(n) % 5 == 2) if n >= 5 else np.zeros(n, bool)

    def run(pick: np.ndarray, steps: int, given=None):
        part = replace(fit, expression=fit.expression[pick], rotation=fit.rotation[pick],
                                   translation=fit.translation[pick], frames=fit.frames[pick])
        return fit_detail(model, part, [masks[k] for k in np.flatnonzero(pick)],
                          [faces[i].box for i in part.frames], intr[part.frames], [chin[k] for k in np.flatnonzero(pick)],
                          DetailConfig(steps=steps), given)

    d = run(~held, cfg.head.detail_steps)
    figures = {"detail_silhouette_iou_before": round(d.iou_before, 4), "detail_silhouette_iou_after": round(d.iou_after, 4),
               "detail_frames": int((~held).sum()), "detail_offset_max_m": round(float(d.offset.max()), 4),
               "detail_region": "the person's MediaPipe selfie mask above the chin, in a crop around the head"}
    if held.any():
        h = run(held, 0, d.offset)
        figures.update(detail_silhouette_iou_heldout_before=round(h.iou_before, 4),
                       detail_silhouette_iou_heldout_after=round(h.iou_after, 4), detail_heldout_frames=int(held.sum()))
    figures["detail_seconds"] = round(time.perf_counter() - t0, 2)
    log.info("shape beyond the model: head silhouette IoU %.3f -> %.3f%s", d.iou_before, d.iou_after,
             f" (held-out frames {figures['detail_silhouette_iou_heldout_before']:.3f} -> "
             f"{figures['detail_silhouette_iou_heldout_after']:.3f})" if held.any() else "")
    return d.offset, figures


def _landmarks_json(model: HeadModel) -> bytes:
    from .landmarks import landmark_sets

    sets = landmark_sets(model)
    return json.dumps({
        "topology": "ICT-FaceKit (the asset's triangles, in the glb's order)",
        "definition": "each point: 'face' indexes the asset mesh's triangles, 'bary' weighs its three corners; "
                      "it follows the mesh through any morph target or pose",
        "sets": {k: {"count": len(s), "points": s.to_json()} for k, s in sets.items()}}).encode()


def _bake(model: HeadModel, fit, offset: np.ndarray | None, cap: Capture, faces: list, intr: np.ndarray, ev: dict,
          out: Path, name: str, cfg: Config, provenance: dict) -> dict:
    import trimesh

    from ..bake.asset_writer import write_asset_folder
    from ..bake.report import viewer_camera
    from .asset import TextureView, head_mesh, photo_texture, split_seams

    from .detail import growth

    t0 = time.perf_counter()
    grow = growth(model, fit.identity, offset)
    # the texture: the most frontal frames (the face's +Z axis towards the camera: rotation[2, 2] most negative)
    order = np.argsort(fit.rotation[:, 2, 2])[:cfg.head.texture_frames]
    views = [TextureView(_posed(model, fit, k, grow).double().numpy(), fit.head_to_camera(k), tuple(intr[fit.frames[k]]),
                         cap.images[fit.frames[k]]) for k in order]
    tex, seen = photo_texture(model, views, cfg.head.texture_tile)
    if len(cap) > 1:  # the fitted expressions over the video's time
        ts = [cap.frames[i].timestamp for i in fit.frames]
        times = np.asarray(ts, np.float64) - ts[0] if None not in ts else np.arange(len(ts)) / 30.0
        expressions = fit.expression
    else:  # neutral -> the photo's expression -> neutral, 2 s
        times = np.array([0.0, 1.0, 2.0])
        expressions = np.stack([0 * fit.expression[0], fit.expression[0], 0 * fit.expression[0]])
    mesh = replace(head_mesh(model, fit.identity, tex, times, expressions, grow), material="radiance")  # photo light
    errors = np.asarray(ev["landmarks478_px_per_frame"])
    strip, pairs = _report_views(model, mesh, fit, cap, faces, intr, errors, grow)
    _, _, afaces = split_seams(model)
    closed = trimesh.Trimesh(_posed(model, fit, 0, grow).numpy(), model.faces.numpy())  # seams merged
    k0 = int(order[0])
    fx, fy, cx, cy = intr[fit.frames[k0]]
    h = cap.images[fit.frames[k0]].shape[0]
    camera = viewer_camera(np.linalg.inv(fit.head_to_camera(k0)), float(fy), h,
                           (mesh.positions.min(0) + mesh.positions.max(0)) / 2)
    frame = {"note": "the ICT-FaceKit head frame: metres, +Y up, the face towards +Z; the asset rests neutral "
                     "(morph weights 0)", "asset_from_capture": None}
    landmark_counts = {k: v["count"] for k, v in json.loads(_landmarks_json(model))["sets"].items()}
    metrics = {
        "name": name, "kind": "head", "requested_subject": provenance.get("requested_subject", "head"),
        "material": "radiance", "triangles": int(len(afaces)), "vertices": int(len(mesh.positions)),
        "watertight": bool(closed.is_watertight), "texture_size": int(cfg.head.texture_tile),
        "texture_shape": [int(tex.shape[1]), int(tex.shape[0])], "texture_seen": seen,
        "texture_frames": [cap.frames[fit.frames[k]].name for k in order],
        "morph_targets": len(mesh.morph_names), "animation": "expressions",
        "animation_keys": int(len(times)), "animation_seconds": float(times[-1]), "landmarks": landmark_counts,
        "landmarks478_px_mean": ev["landmarks478_px_mean"], "frames_fitted": ev["frames_fitted"],
        "units": "metres (head model frame)", "frame": frame,
        "extent": [float(v) for v in mesh.positions.max(0) - mesh.positions.min(0)], "fit": ev,
    }
    write_asset_folder(out / "asset", name, mesh, metrics, cfg.bake, started=t0, frame=frame, provenance=provenance,
                       overwrite=True, inputs=strip, masks_note=None, pairs=pairs, camera=camera,
                       animation="expressions", extra_files={"landmarks.json": _landmarks_json(model)})
    return metrics


def fit_head_job(data, out: Path, name: str, cfg: Config, *, resume: bool, bake: bool, provenance: dict):
    """Capture -> fit -> bake a head into the job folder ``out`` (see the module docstring); returns
    (eval dict, metrics dict or None). ``provenance``: what provenance.json records (with the source's hash and
    kind from the capture, and kind head)."""
    model = load_head_model()
    cap_dir, fit_dir = out / "capture", out / "fit"
    if resume and (cap_dir / "faces.json").is_file():
        cap, faces, intr = _read_capture(cap_dir)
    else:
        cap = read_head_source(data, cfg)
        faces = find_faces(cap, cfg)
        intr = intrinsics_of(cap, cfg)
        if not isinstance(data, Capture):
            _write_capture(cap_dir, cap, faces, intr, assumed=cap.cameras is None)
    photo = len(cap) == 1
    if resume and (fit_dir / "head_fit.npz").is_file() and (fit_dir / "eval.json").is_file():
        fit, offset, intr = _load_fit(fit_dir)
        ev = read_json_object(fit_dir / "eval.json", START_AGAIN)
        log.info("head fit already finished: %s", fit_dir)
    else:
        t0 = time.perf_counter()
        fit = _fit(model, faces, intr, photo, cfg)
        errors = landmark_errors(model, fit, faces, intr)
        ev = {"model": "head", "frames_read": len(cap), "frames_fitted": int(len(fit.frames)),
              "landmarks478_px_mean": float(errors.mean()), "landmarks478_px_per_frame": errors.round(3).tolist(),
              "landmarks468_fit_px_mean": float(fit.residual_px.mean()),
              "landmarks_region": "MediaPipe's 478 detections (iris included) against the same points on the "
                                  "fitted head, every fitted frame (no frame is held out)",
              "face_size_px_mean": float(np.mean([faces[i].size for i in fit.frames])),
              "yaw_deg": [round(face_yaw_deg(faces[i]), 1) for i in fit.frames],
              "faces_found_max": int(max(faces[i].faces_found for i in fit.frames)),
              "fit_seconds": round(time.perf_counter() - t0, 2)}
        offset, figures = _fit_detail(model, fit, cap, faces, intr, cfg)
        ev.update(figures)
        _save_fit(fit_dir, fit, offset, intr, ev, cfg, cap)
    log.info("head: %d of %d frames fitted; the 478 landmarks reproject at %.2f px mean", ev["frames_fitted"],
             ev["frames_read"], ev["landmarks478_px_mean"])
    if not bake:
        return ev, None
    if resume and (out / "asset" / "provenance.json").is_file():
        log.info("asset already baked: %s", out / "asset")
        return ev, read_json_object(out / "asset" / "metrics.json")
    source = {"source_hash": cap.meta.get("source_hash"), "source_kind": cap.meta.get("source_kind")}
    provenance = {**provenance, **{k: v for k, v in source.items() if v is not None}, "kind": "head"}
    return ev, _bake(model, fit, offset, cap, faces, intr, ev, out, name, cfg, provenance)
