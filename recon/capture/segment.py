"""Subject masks for captures that come without them: a registry of pluggable segmenters.

A segmenter is a function ``(cap, **options) -> (masks, stats)``: masks are N
(H, W) uint8 0/255 arrays (255 = subject), one per frame at that frame's image
size; stats is a JSON-friendly dict recorded in ``cap.meta["masks"]``. Bad
options or inputs raise ``InputError`` (one line).

    cap = segment_capture(cap, "prompt", box=(40, 30, 200, 180))
    cap = segment_capture(cap, "folder", path="my_masks/")

Registered: "folder" (user masks from a folder or a mask video, ``user_masks``),
"prompt" (a box and points in one frame, GrabCut + optical flow, ``prompt_masks``)
and "static" (a still subject the cameras circle: triangulated points where the
viewing rays converge, GrabCut per frame, checked against their visual hull,
``static_subject_masks``; needs cameras).
Also "motion" (what moves against the background, no prompt: flow vs a homography, ``motion_masks``),
"onnx" (any ONNX segmentation model from a local file, run with onnxruntime, extra ``onnx``;
``onnx_masks``: ``model_path``, ``threshold``, ``input_size``, ``mean``, ``std``, ``output_index``)
and "people" (people with MediaPipe selfie segmentation or pose, extra ``humans``; ``people_masks``:
``mode`` "selfie" | "pose", ``threshold``). Their optional packages are imported only when run.

Which one runs when the user names none: ``recon.capture.load.pick_segmenter`` (the
source's own masks, else motion or static by ``recon.capture.subject_motion``).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

import numpy as np

from ..core.errors import InputError
from ..core.types import Capture
from .auto_masks import static_subject_masks
from .motion_masks import motion_masks
from .onnx_masks import onnx_masks
from .people_masks import people_masks
from .prompt_masks import prompt_masks
from .user_masks import user_masks

Segmenter = Callable[..., "tuple[list[np.ndarray], dict[str, Any]]"]

SEGMENTERS: dict[str, Segmenter] = {"folder": user_masks, "prompt": prompt_masks, "static": static_subject_masks,
                                   "motion": motion_masks, "onnx": onnx_masks, "people": people_masks}


def mask_stats(cap: Capture, masks: list[np.ndarray]) -> dict[str, Any]:
    """Coverage per frame (fraction of subject pixels), its mean, and the frames with an empty mask."""
    cover = [float((m > 127).mean()) for m in masks]
    return {"coverage": [round(c, 5) for c in cover], "mean_coverage": round(float(np.mean(cover)), 5),
            "empty": [f.name for f, c in zip(cap.frames, cover) if c == 0.0]}


def segment_capture(cap: Capture, method: str, **options) -> Capture:
    """``cap`` with masks from the segmenter ``method`` (a key of ``SEGMENTERS``) given ``options``.

    Returns a copy with ``masks`` (N (H, W) uint8 0/255, sized like each image) and
    ``meta["masks"] = {"method": method, **segmenter stats, coverage, mean_coverage, empty}``.
    """
    if method not in SEGMENTERS:
        raise InputError(None, f"unknown mask method {method!r} (choose from {', '.join(sorted(SEGMENTERS))})")
    masks, stats = SEGMENTERS[method](cap, **options)
    if len(masks) != len(cap.images):
        raise RuntimeError(f"segmenter {method!r} returned {len(masks)} masks for {len(cap.images)} frames")
    for m, img, f in zip(masks, cap.images, cap.frames):
        if m.shape != img.shape[:2] or m.dtype != np.uint8:
            raise RuntimeError(f"segmenter {method!r} returned a {m.dtype} {m.shape} mask for frame {f.name} "
                               f"of shape {img.shape[:2]}")
    masks = [np.where(m > 127, 255, 0).astype(np.uint8) for m in masks]
    stats = dict(stats)
    if "method" in stats:  # the segmenter's own sub-method (e.g. how the static one found its points)
        stats["detail"] = stats.pop("method")
    meta = {**cap.meta, "masks": {"method": method, **stats, **mask_stats(cap, masks)}}
    return replace(cap, masks=masks, meta=meta)
