"""The object model: one field (density or SDF) + occupancy grid + the losses that fit it to a capture."""
from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..core.config import Config
from ..fields.background_field import BackgroundField
from ..fields.base import Field
from ..render.background import render_background
from ..render.neus import neus_alpha
from ..render.occupancy import OccupancyGrid
from ..render.rays import RayBundle
from ..render.sampler import march_step
from ..render.volume import RenderOutput, render_rays


def make_field(cfg: Config, n_frames: int) -> Field:
    if cfg.field.kind == "sdf":
        from ..fields.sdf_field import SDFField

        return SDFField(cfg.field, cfg.render.bound, n_frames)
    from ..fields.density_field import DensityField

    return DensityField(cfg.field, cfg.render.bound, n_frames)


class ObjectModel(nn.Module):
    """Field + occupancy grid (+ an optional background field); renders ray batches, computes the losses.

    With ``background=True`` an unbounded field (``recon.fields.background_field``) is rendered
    behind the subject's field on every ray: the subject's field is held to the masks (opacity
    loss) and the colour loss covers the whole frame. Only the subject's field is baked.
    """

    def __init__(self, cfg: Config, n_frames: int = 0, background: bool = False):
        super().__init__()
        self.cfg = cfg
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
