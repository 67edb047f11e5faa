"""The object model: one field (density or SDF) + occupancy grid + the losses that fit it to a capture."""
from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..core.config import Config
from ..core.errors import ConfigError
from ..core.log import log_event
from ..core.types import Capture
from ..fields.background_field import BackgroundField
from ..fields.base import Field
from ..render.background import render_background
from ..render.neus import neus_alpha
from ..render.occupancy import OccupancyGrid
from ..render.rays import RayBundle
from ..render.sampler import march_step
from ..render.volume import RenderOutput, render_rays
from .base import SubjectModel
from .object_eval import BACKGROUNDS, evaluate
from .pixels import PixelSet, detect_mask_mode


def make_field(cfg: Config, n_frames: int) -> Field:
    if cfg.field.kind == "sdf":
        from ..fields.sdf_field import SDFField

        return SDFField(cfg.field, cfg.render.bound, n_frames)
    from ..fields.density_field import DensityField

    return DensityField(cfg.field, cfg.render.bound, n_frames)


def wants_background(cfg: Config, cap: Capture, mask_mode: str) -> bool:
    """Whether the fit adds a background field (``cfg.background.model``; see ``BackgroundConfig``)."""
    model = cfg.background.model
    if model == "field" and mask_mode == "none":
        raise ConfigError("background.model=field needs subject masks (supply --masks, or let a segmenter "
                          "make them: --auto-masks, --motion-masks, --subject-box)")
    if model == "auto":  # not with object-centric cameras: there the background moves
        return mask_mode == "weight" and bool((cap.meta.get("masks") or {}).get("method")) and \
            (cap.meta.get("sfm") or {}).get("region") != "subject"
    return model == "field"


class ObjectModel(SubjectModel):
    """Field + occupancy grid (+ an optional background field); renders ray batches, computes the losses.

    With ``background=True`` an unbounded field (``recon.fields.background_field``) is rendered
    behind the subject's field on every ray: the subject's field is held to the masks (opacity
    loss) and the colour loss covers the whole frame. Only the subject's field is baked.
    ``mask_mode`` says how masks enter the loss (``recon.models.pixels.detect_mask_mode``).
    """

    kind = "object"

    def __init__(self, cfg: Config, n_frames: int = 0, background: bool = False, mask_mode: str = "none"):
        super().__init__()
        self.cfg = cfg
        self.mask_mode = mask_mode
        self.n_frames = n_frames
        self.pixels: PixelSet | None = None
        self.field = make_field(cfg, n_frames)
        self.background: BackgroundField | None = BackgroundField(cfg.background) if background else None
        # the colour shown where the background field is transparent (a logit)
        self.sky = nn.Parameter(torch.zeros(3)) if background else None
        r = cfg.render
        self.grid = OccupancyGrid(r.grid_resolution, r.bound, r.occ_threshold, r.occ_ema)
        self.step = march_step(r.bound, r.samples_per_ray)
        self.max_steps = r.samples_per_ray

    @property
    def is_sdf(self) -> bool:
        return self.field.kind == "sdf"

    def set_progress(self, p: float) -> None:
        """Training progress p in [0, 1]: coarse-to-fine hash levels for SDF fields (Neuralangelo)."""
        if not self.is_sdf:
            return
        fc = self.cfg.field
        L = fc.grid.n_levels
        frac = 1.0 if fc.coarse_to_fine <= 0 else min(1.0, p / fc.coarse_to_fine)
        self.field.encoding.set_active_levels(fc.coarse_to_fine_start + round(frac * (L - fc.coarse_to_fine_start)))

    @torch.no_grad()
    def cell_opacity(self, x: Tensor) -> Tensor:
        """Opacity of one marching step at x: the occupancy grid's per-cell value."""
        if self.is_sdf:
            # the largest NeuS alpha a step can reach anywhere in the cell: shrink |sdf| by the half diagonal
            sdf = self.field.sdf(x).abs() - 0.5 * self.grid.cell_size * 3 ** 0.5
            sdf = sdf.clamp_min(0.0)
            step = torch.full_like(sdf, self.step)
            return neus_alpha(sdf, -torch.ones_like(sdf), step, self.field.inv_s())
        return 1.0 - torch.exp(-self.field.density(x) * self.step)

    def update_occupancy(self, n_cells: int | None, generator: torch.Generator | None = None) -> None:
        self.grid.update(self.cell_opacity, n_cells, generator=generator)

    def free_space_loss(self, n: int, generator: torch.Generator | None = None) -> Tensor | None:
        """SDF: mean relu(-sdf) at n random points just outside the visual hull (None without a hull).

        The hull bounds where samples are taken; without this term nothing stops the
        SDF from being negative in the whole hull, which NeuS renders as an opaque hull.
        """
        if not self.is_sdf or bool(self.grid.hull.all()):
            return None
        if getattr(self, "_shell", None) is None or self._shell.device != self.grid.hull.device:
            self._shell = self.grid.hull_shell()
        if self._shell.numel() == 0:
            return None
        dev = self._shell.device
        idx = self._shell[torch.randint(self._shell.numel(), (n,), device=dev, generator=generator)]
        x = self.grid.cell_centers(idx) + (torch.rand(n, 3, device=dev, generator=generator) - 0.5) * self.grid.cell_size
        return torch.relu(-self.field.sdf(x)).mean()

    def render_background(self, rays: RayBundle, training: bool = False,
                          generator: torch.Generator | None = None) -> Tensor:
        """(R, 3) colour of the background field behind each ray (requires ``background=True``)."""
        return render_background(self.background, torch.sigmoid(self.sky), rays, training, generator)[0]

    def render(self, rays: RayBundle, background: Tensor, training: bool = False,
               generator: torch.Generator | None = None) -> RenderOutput:
        """Render R rays over ``background`` ((3,) or (R, 3)), or over the background field when the model
        has one (then the output carries its distortion loss per ray)."""
        if self.background is None:
            return render_rays(self.field, self.grid, rays, self.step, self.max_steps, background, training, generator)
        bg, _, distortion = render_background(self.background, torch.sigmoid(self.sky), rays, training, generator)
        out = render_rays(self.field, self.grid, rays, self.step, self.max_steps, bg, training, generator)
        return replace(out, bg_distortion=distortion)

    def losses(self, out: RenderOutput, rgb: Tensor, alpha: Tensor | None, mask_mode: str) -> dict[str, Tensor]:
        """Loss terms; ``rgb`` is the target already composited over the same background (composite mode)."""
        fc = self.cfg.fit
        err = out.rgb - rgb
        if mask_mode == "weight" and alpha is not None and self.background is None:
            # real photos with masks and no background model: colour only where the subject is
            w = (alpha > 0.5).float()[:, None]
            err = err * w
            denom = w.sum().clamp_min(1.0) * 3
        else:
            denom = torch.tensor(float(err.numel()))
        rgb_loss = (err.abs().sum() if self.is_sdf else (err * err).sum()) / denom
        terms = {"rgb": rgb_loss}
        if alpha is not None and fc.mask_weight > 0 and mask_mode != "none":
            op = out.opacity.clamp(1e-3, 1 - 1e-3)
            terms["mask"] = fc.mask_weight * F.binary_cross_entropy(op, alpha)
        if out.bg_distortion is not None and self.cfg.background.distortion_weight > 0:
            # only where the subject does not cover the ray (elsewhere the background is hidden)
            seen = (1.0 - out.opacity).detach()
            terms["bg_distortion"] = self.cfg.background.distortion_weight * (seen * out.bg_distortion).mean()
        if self.is_sdf and out.grad is not None and out.grad.shape[0] > 0:
            if fc.eikonal_weight > 0:
                terms["eikonal"] = fc.eikonal_weight * ((out.grad.norm(dim=-1) - 1.0) ** 2).mean()
            if fc.curvature_weight > 0:
                terms["curvature"] = fc.curvature_weight * out.laplacian.abs().mean()
        return terms

    def param_groups(self) -> list[dict]:
        """Adam groups with their own learning rates: grid tables, MLPs (+codes), SDF inverse variance."""
        fc = self.cfg.fit
        grid, mlp, var = [], [], []
        for name, p in self.field.named_parameters():
            if name.endswith("encoding.table"):
                grid.append(p)
            elif name == "variance":
                var.append(p)
            else:
                mlp.append(p)
        if self.background is not None:
            for name, p in self.background.named_parameters():
                (grid if name.endswith("encoding.table") else mlp).append(p)
            mlp.append(self.sky)
        groups = [{"params": grid, "lr": fc.lr_grid, "name": "grid", "weight_decay": 0.0},
                  {"params": mlp, "lr": fc.lr_mlp, "name": "mlp", "weight_decay": fc.weight_decay_mlp}]
        if var:
            groups.append({"params": var, "lr": fc.lr_variance, "name": "variance", "weight_decay": 0.0})
        return groups

    # -- what the trainer asks (recon.models.base.SubjectModel) ------------------------------------
    @classmethod
    def for_capture(cls, cfg: Config, cap: Capture, train_idx: np.ndarray) -> "ObjectModel":
        mask_mode = detect_mask_mode(cap)
        return cls(cfg, len(train_idx), wants_background(cfg, cap, mask_mode), mask_mode)

    @classmethod
    def from_info(cls, cfg: Config, info: dict) -> "ObjectModel":
        return cls(cfg, int(info["n_frames"]), bool(info.get("background", False)), info.get("mask_mode", "none"))

    def checkpoint_info(self) -> dict:
        return {"n_frames": self.n_frames, "field_kind": self.field.kind, "background": self.background is not None,
                "mask_mode": self.mask_mode}

    def attach(self, cap: Capture, train_idx: np.ndarray, fresh: bool) -> None:
        dev = self.grid.values.device
        self.pixels = PixelSet(cap, train_idx, dev)
        self.field.normalization.copy_(torch.as_tensor(cap.normalization, dtype=torch.float64))
        if fresh and cap.masks is not None and self.cfg.render.visual_hull:
            kept = self.grid.carve_visual_hull(self.pixels.cams, [cap.masks[i] for i in train_idx])
            log_event("visual_hull", kept_fraction=round(kept, 4))

    @property
    def batch_size(self) -> int:
        return self.cfg.fit.batch_rays

    def _ray_background(self, n: int, generator: torch.Generator) -> Tensor:
        mode = self.cfg.render.background
        dev = self.grid.values.device
        if mode == "auto":
            mode = "black" if self.mask_mode == "weight" else "random"
        if mode == "random":
            return torch.rand(n, 3, device=dev, generator=generator)
        return torch.tensor(BACKGROUNDS[mode], device=dev)

    def train_losses(self, iteration: int, progress: float,
                     generator: torch.Generator) -> tuple[dict[str, Tensor], dict[str, float]]:
        """Occupancy upkeep, then one batch of random training rays rendered against their pixels."""
        cfg = self.cfg
        self.set_progress(progress)
        r = cfg.render
        if iteration % r.occ_update_every == 0:
            n_cells = max(int(self.grid.hull.sum()) // 8, 1)
            self.grid.update(self.cell_opacity, n_cells, generator=generator,
                             prune=iteration >= r.occ_warmup or progress >= 0.1)
        n = cfg.fit.batch_rays
        batch = self.pixels.sample(n, generator)
        bg = self._ray_background(n, generator)
        target = batch.rgb
        if self.mask_mode == "composite" and batch.alpha is not None:
            target = target * batch.alpha[:, None] + bg * (1.0 - batch.alpha[:, None])
        amp = cfg.fit.mixed_precision and bg.device.type == "cuda"
        with torch.autocast(bg.device.type, dtype=torch.float16, enabled=amp):
            out = self.render(batch.rays, bg, training=True, generator=generator)
        terms = self.losses(out, target, batch.alpha, self.mask_mode)
        if cfg.fit.free_space_weight > 0:
            free = self.free_space_loss(n // 4, generator)
            if free is not None:
                terms["free_space"] = cfg.fit.free_space_weight * free
        with torch.no_grad():
            se = (out.rgb.detach() - target) ** 2
            if self.mask_mode == "weight" and batch.alpha is not None and self.background is None:
                se = se[batch.alpha > 0.5]  # photos without a background model: the subject's pixels only
            mse = float(se.mean()) if se.numel() else 0.0
        stats = {"psnr": -10 * math.log10(max(mse, 1e-10)), "samples_per_ray": out.n_samples / n}
        return terms, stats

    def evaluate(self, cap: Capture, indices: np.ndarray, save_dir: Path | None = None) -> dict:
        return evaluate(self, cap, indices, self.mask_mode, save_dir=save_dir)

    def log_record(self) -> dict:
        rec = {"occupied": round(float(self.grid.binary.float().mean()), 5)}
        if self.is_sdf:
            rec["inv_s"] = round(float(self.field.inv_s().detach()), 3)
            rec["active_levels"] = int(self.field.encoding.active_levels)
        return rec

    def describe(self) -> dict:
        return {"field": self.field.kind, "mask_mode": self.mask_mode,
                "background": "field" if self.background is not None else "none"}
