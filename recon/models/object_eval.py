"""The object model's evaluation on held-out views: render, compare (PSNR, SSIM, mask IoU), save a few
side-by-sides."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..core.types import Capture
from ..eval.metrics import mask_iou, psnr, ssim
from ..render.rays import CameraTensors, image_rays
from ..render.volume import render_image

if TYPE_CHECKING:
    from .object_model import ObjectModel

BACKGROUNDS = {"white": (1.0, 1.0, 1.0), "black": (0.0, 0.0, 0.0)}


def eval_target(img: np.ndarray, mask: np.ndarray | None, mask_mode: str, bg: tuple[float, float, float]):
    """Ground truth as float (H, W, 3): composited over ``bg`` for RGBA-style captures."""
    rgb = img.astype(np.float32) / 255.0
    if mask_mode == "composite" and mask is not None:
        a = (mask.astype(np.float32) / 255.0)[..., None]
        rgb = rgb * a + np.asarray(bg, np.float32) * (1 - a)
    return rgb


@torch.no_grad()
def evaluate(model: "ObjectModel", cap: Capture, indices: np.ndarray, mask_mode: str,
             save_dir: Path | None = None, n_save: int = 3) -> dict:
    """Render the frames ``indices`` and compare them with the capture.

    "weight" mode (real photos with masks) without a background model measures PSNR/SSIM
    inside the mask, as the DTU protocol does; otherwise over the whole frame (with a
    background field, the subject's field over the background field's render; then
    ``psnr_subject`` is the figure inside the mask). ``region`` says which.
    """
    cfg = model.cfg
    region = "full frame (subject over the background field)" if model.background is not None else \
        "inside the masks" if mask_mode == "weight" and cap.masks is not None else "full frame"
    was_training = model.training
    model.eval()
    dev = model.grid.values.device
    bg_name = cfg.render.eval_background if mask_mode != "weight" else "black"
    bg = BACKGROUNDS[bg_name]
    cams = CameraTensors.from_cameras(cap.cameras[indices], dev)
    per_view = []
    for k, i in enumerate(indices):
        h, w = cap.images[i].shape[:2]
        rays = image_rays(cams, k)  # no frame index: held-out views use the mean appearance code
        back = torch.tensor(bg, device=dev)
        if model.background is not None:
            back = torch.cat([model.render_background(rays[c:c + cfg.render.chunk_rays])
                              for c in range(0, len(rays), cfg.render.chunk_rays)])
        img = render_image(model.field, model.grid, rays, model.step, model.max_steps,
                           back, h, w, cfg.render.chunk_rays)
        pred = img["rgb"].clamp(0, 1).cpu().numpy()
        mask = None if cap.masks is None else cap.masks[i]
        gt = eval_target(cap.images[i], mask, mask_mode, bg)
        rec = {"frame": cap.frames[i].name}
        if model.background is not None:
            rec["psnr"] = psnr(pred, gt)
            rec["ssim"] = ssim(pred, gt)
            if mask is not None:
                rec["psnr_subject"] = psnr(pred, gt, mask > 127)
        elif mask_mode == "weight" and mask is not None:
            m = mask > 127
            rec["psnr"] = psnr(pred, gt, m)
            rec["ssim"] = ssim(pred * m[..., None], gt * m[..., None])
        else:
            rec["psnr"] = psnr(pred, gt)
            rec["ssim"] = ssim(pred, gt)
        if mask is not None:
            rec["mask_iou"] = mask_iou(img["opacity"].cpu().numpy() > 0.5, mask > 127)
        per_view.append(rec)
        if save_dir is not None and k < n_save:
            from ..core.imageio import write_image

            shown = gt * (mask > 127)[..., None] if region == "inside the masks" and mask is not None else gt
            write_image(Path(save_dir) / f"{cap.frames[i].name}.png", np.concatenate([pred, shown], axis=1))
    model.train(was_training)
    out = {"n_views": len(per_view),
           "psnr": float(np.mean([r["psnr"] for r in per_view])) if per_view else float("nan"),
           "ssim": float(np.mean([r["ssim"] for r in per_view])) if per_view else float("nan")}
    for key in ("mask_iou", "psnr_subject"):
        if per_view and key in per_view[0]:
            out[key] = float(np.mean([r[key] for r in per_view]))
    out["region"] = region
    out["views"] = per_view
    return out
