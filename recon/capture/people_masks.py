"""Masks of people with MediaPipe (extra ``humans``; mediapipe 0.10.21, legacy ``mp.solutions``).

mode "selfie": ``selfie_segmentation`` with model_selection=1 (the general / landscape model),
a per-pixel person probability. mode "pose": ``pose`` with enable_segmentation=True and
model_complexity=1 (complexity 0 and 2 download their weights at run time: never used), static
image mode, so every frame is a fresh detection; no pose found = no person in the frame.

Both models ship inside the mediapipe wheel; nothing is downloaded. Each frame's probability map
is thresholded, then cleaned: the largest part(s) kept (``mask_ops.largest_parts``), plus small
parts close to them (a hand the model sees apart from its arm), and holes filled. Less than
``MIN_AREA`` of the frame above the threshold counts as no person. A frame without a person gets
an empty mask; a capture without a person in any frame is refused (InputError).
"""
from __future__ import annotations

import os
from typing import Any

import cv2
import numpy as np

from ..core.errors import InputError, MissingDependencyError
from ..core.progress import track
from ..core.types import Capture
from .mask_ops import at_frame_size, fill_holes, largest_parts, threshold_option

MODES = ("selfie", "pose")
MIN_AREA = 0.002  # fraction of the frame below which a detection is noise, not a person
NEAR = 0.03  # small parts within this fraction of the frame's long side of the main ones are kept


def clean_person(fg: np.ndarray) -> np.ndarray:
    """``fg`` (H, W) bool reduced to its main part(s) (each at least a tenth of the largest), plus the
    parts within ``NEAR`` of them that are not specks (0.2% of the main area), with holes filled."""
    main = largest_parts(fg, keep=0.1)
    r = max(1, round(NEAR * max(fg.shape)))
    near = cv2.dilate(main.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    n, labels, st, _ = cv2.connectedComponentsWithStats(fg.astype(np.uint8), connectivity=8)
    close = np.unique(labels[(near > 0) & fg])
    close = close[(close > 0) & (st[close, cv2.CC_STAT_AREA] >= 0.002 * main.sum())]  # not specks
    return fill_holes(np.isin(labels, close))


def _mediapipe():
    os.environ.setdefault("GLOG_minloglevel", "2")  # quiet the C++ start-up logging
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import mediapipe as mp

        mp.solutions.selfie_segmentation, mp.solutions.pose  # noqa: B018 - the legacy API must be there
    except (ImportError, AttributeError):
        raise MissingDependencyError("mediapipe", "the people segmenter", "humans",
                                     hint="bash scripts/setup.sh, or pip install --no-deps mediapipe==0.10.21 "
                                          "plus 'recon[humans]'") from None
    return mp


def _model(mp, mode: str):
    if mode == "selfie":
        return mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=1)
    return mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1, enable_segmentation=True,
                                  smooth_segmentation=False)


def person_probability(model, mode: str, img: np.ndarray) -> np.ndarray | None:
    """Person probability (H, W) float32 in [0, 1] for an (H, W, 3) uint8 RGB image; None when the
    pose model finds no person."""
    res = model.process(np.ascontiguousarray(img[..., :3]))
    if mode == "pose" and res.pose_landmarks is None:
        return None
    prob = res.segmentation_mask
    return None if prob is None else np.asarray(prob, np.float32)


def people_masks(cap: Capture, mode: str = "selfie", threshold: float = 0.5) -> tuple[list[np.ndarray], dict[str, Any]]:
    """Masks of the people in every frame of ``cap`` (see the module doc).

    mode: "selfie" or "pose"; threshold: person probability cut, in (0, 1).
    Returns N (H, W) uint8 0/255 masks at the frames' sizes (empty where no person) and stats
    {mode, frames_with_person (count), no_person (frame names)}.
    """
    if mode not in MODES:
        raise InputError(None, f"people mode must be one of {', '.join(MODES)}, got {mode!r}")
    threshold = threshold_option("people", threshold)
    mp = _mediapipe()
    masks, missing = [], []
    with _model(mp, mode) as model:
        for img, frame in zip(track(cap.images, f"people masks ({mode})", total=len(cap.images)), cap.frames):
            prob = person_probability(model, mode, img)
            fg = np.zeros(img.shape[:2], bool) if prob is None else prob > threshold
            if fg.mean() < MIN_AREA:
                fg[:] = False
            else:
                fg = clean_person(fg)
            if not fg.any():
                missing.append(frame.name)
            masks.append(at_frame_size(fg, img))
    if cap.images and len(missing) == len(cap.images):
        raise InputError(None, f"no person found in any of the {len(cap.images)} frames "
                               f"(people segmenter, mode {mode}); use another mask method for this subject")
    return masks, {"mode": mode, "frames_with_person": len(cap.images) - len(missing), "no_person": missing}
