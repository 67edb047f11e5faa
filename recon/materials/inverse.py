"""Inverse rendering on the baked mesh: albedo, roughness, metallic and normal-detail textures plus the
capture's environment light, fitted to the training photos (masks respected), the mesh held fixed.

Every covered, in-mask training pixel gives a surface point (uv, shading normal, direction to the
camera) and a target colour. The model renders each as ``recon.render.shading.shade_pbr`` under a
light fitted as order-2 spherical harmonics (9 x 3 coefficients: a low-frequency light, which is what
a diffuse surface reveals; drawn as a ``light_height`` x 2 ``light_height`` map whose SH irradiance and
split-sum stack are linear in it, so the light gets gradients), times an optional per-photo exposure /
white balance, encoded to sRGB and compared with the photo.

A diffuse surface can be explained by any light (the albedo follows), so the data term cannot pick
the light: ``estimate_light`` does first, from the photos alone (surface points a few percent apart
with the same chromaticity should imply the same albedo). Initialisation: that light (neutral, scaled
so the implied albedos stay below 0.9), albedo = the baked radiance (linear), roughness 1 (``init_roughness``;
clamped to [0.05, 1] straight through, so a texel at 1 can still come down), metallic 0; the light then
moves slowly (``light_lr``). Priors, as nvdiffrec's: roughness and metallic piecewise
smooth (L1 between a point and a jittered neighbour in the texture; the albedo's too when
``albedo_smoothness`` > 0, off by default: it cost held-out PSNR on the lego), metallic
pulled to 0 (most captured things are dielectric), the light's colour pulled to its luminance (a
coloured cast goes to the albedo). The albedo-light scale is not observable, only their product
(albedo is reported after a per-channel scale, as the literature does).

Normal detail (``normal_detail`` > 0, meshes with tangents): a slope texture (dx, dy) bends each
shading normal along the mesh's tangent frame exactly as a glTF renderer bends it with a normal map,
so the result is written as the asset's normal map (its own, if it had one, bent further). Small
surface relief the mesh lacks (pores, a grain) then shades as relief under a new light instead of
being painted into the albedo under the capture's; an L2 pull on the slopes keeps flat what the
photos do not ask to bend.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
import torch
import torch.nn.functional as F

from ..core.config import MaterialsConfig
from ..core.log import get_logger
from ..core.progress import track
from ..render.colorspace import linear_to_srgb, srgb_to_linear
from ..render.environment import LAMBERT_BANDS, LightProbe, directions, sh_basis
from ..render.mesh_raster import covered_pixels
from ..render.shading import shade_pbr
from ..render.texture_lookup import ResidualPyramid
from .surface import SurfaceAttributes

log = get_logger(__name__)

_LUMA = torch.tensor([0.2126, 0.7152, 0.0722])
GRAZING = 0.15  # observations with n.v below this are not fitted
DETAIL_LR = 0.1  # the normal detail's learning rate, times the albedo's (avocado bench: 0.3 bent it more, no better)


@dataclass(frozen=True)
class Observations:
    """Training-photo pixels on the mesh. uv (P, 2); normal, view (P, 3) unit, in the light's frame;
    rgb (P, 3) sRGB target in [0, 1]; photo (P,) index into the fitted photos; point (P, 3) position;
    tangent, bitangent (P, 3): the mesh's tangent frame there (light frame; zeros without tangents), along
    which a fitted normal detail bends the normal as a glTF normal map does."""

    uv: torch.Tensor
    normal: torch.Tensor
    view: torch.Tensor
    rgb: torch.Tensor
    photo: torch.Tensor
    point: torch.Tensor
    tangent: torch.Tensor
    bitangent: torch.Tensor

    def __len__(self) -> int:
        return len(self.uv)

    def take(self, sel: torch.Tensor) -> "Observations":
        return Observations(*(getattr(self, f.name)[sel] for f in fields(self)))


def observations(mesh, capture, normalization: np.ndarray, to_light: np.ndarray | None, max_samples: int,
                 seed: int = 0) -> tuple[Observations, int]:
    """The training photos' covered pixels as ``Observations`` (a random ``max_samples`` of them) and the
    number of photos. Pixels within 2 of a silhouette or mask edge, or seen at grazing angles, are left out."""
    surf = SurfaceAttributes(mesh)
    R = torch.eye(3) if to_light is None else torch.as_tensor(np.asarray(to_light)[:3, :3], dtype=torch.float32)
    parts = []
    for k, px in enumerate(covered_pixels(mesh.positions, mesh.faces, capture, normalization, erode=2)):
        uv = surf.uv(px.face, px.bary)
        frame = surf.tangent_frame(px.face, px.bary) if surf.tangents is not None else None
        n = surf.normal(px.face, px.bary, uv, frame)
        p = surf.points(px.face, px.bary)
        v = F.normalize(px.eye - p, dim=-1).float()
        ok = (n * v).sum(-1) > GRAZING  # grazing views: texture and geometry errors dominate
        t, b = frame[:2] if frame is not None else (n * 0, n * 0)
        parts.append((uv[ok], n[ok] @ R.T, v[ok] @ R.T, px.rgb[ok], torch.full((int(ok.sum()),), k), p.float()[ok],
                      t[ok] @ R.T, b[ok] @ R.T))
    obs = Observations(*(torch.cat(p) for p in zip(*parts)))
    if len(obs) > max_samples:
        gen = torch.Generator().manual_seed(seed)
        obs = obs.take(torch.randperm(len(obs), generator=gen)[:max_samples])
    return obs, len(parts)


def neighbour_pairs(points: torch.Tensor, anchors: int = 512, k: int = 6, sets: int = 16, seed: int = 0
                    ) -> torch.Tensor:
    """(M, 2) indices of observation pairs some way apart on the surface: ``sets`` draws of ``anchors``
    random observations, each anchor paired with its k nearest others of its draw. With a few hundred
    anchors the pairs span a few percent of the subject: far enough for the shading to differ, near
    enough to share an albedo mostly (pixel noise and texture detail swamp the shading between closer ones)."""
    from scipy.spatial import cKDTree

    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(sets):
        idx = torch.randperm(len(points), generator=gen)[:anchors]
        pts = points[idx].double().numpy()
        _, nb = cKDTree(pts).query(pts, k=min(k + 1, len(pts)))
        a = np.repeat(np.arange(len(pts)), nb.shape[1] - 1)
        out.append(torch.stack([idx[a], idx[nb[:, 1:].reshape(-1)]], 1))
    return torch.cat(out)


def estimate_light(obs: Observations, cfg: MaterialsConfig, seed: int = 0, steps: int = 1500) -> torch.Tensor:
    """(9,) the light's order-2 SH luminance, up to scale (coefficient 0 = 1), from the photos alone.

    Lambertian intrinsic-image reasoning on the known surface: pairs of surface points a few percent
    apart (``neighbour_pairs``) whose colours have the same chromaticity (the same material, most
    likely) should imply the same albedo, photo luminance / irradiance(n); the light is the one that
    makes them agree best (chroma-weighted L1 of the log ratios). Fitted before the materials, on its
    own: inside the joint fit the data term cannot tell lights apart (the albedo follows any of them)
    and its small model errors would steer the light instead.
    """
    pairs = neighbour_pairs(obs.point, seed=seed)
    lin = srgb_to_linear(obs.rgb)
    chroma = F.normalize(lin + 1e-3, p=1, dim=-1)
    w = torch.exp(-(chroma[pairs[:, 0]] - chroma[pairs[:, 1]]).pow(2).sum(-1) / (2 * cfg.chroma_sigma ** 2))
    log_y = (lin @ _LUMA).clamp_min(1e-4).log()
    basis = sh_basis(obs.normal) * LAMBERT_BANDS
    rest = torch.nn.Parameter(torch.zeros(8))
    opt = torch.optim.Adam([rest], lr=0.01)
    for _ in range(steps):
        e = (basis @ torch.cat([torch.ones(1), rest])).clamp_min(1e-3)
        implied = log_y - e.log()
        loss = (w * (implied[pairs[:, 0]] - implied[pairs[:, 1]]).abs()).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return torch.cat([torch.ones(1), rest.detach()])


class MaterialModel(torch.nn.Module):
    """The fitted unknowns: albedo (linear) and roughness/metallic textures, the light, per-photo gains."""

    def __init__(self, base_color: np.ndarray, photos: int, cfg: MaterialsConfig, detail: bool = False):
        super().__init__()
        albedo = srgb_to_linear(torch.as_tensor(base_color).float() / 255)
        self.albedo = ResidualPyramid(albedo, 4)
        s = max(8, albedo.shape[0] // cfg.orm_downscale)
        rm = torch.tensor([cfg.init_roughness, 0.0]).expand(s, s, 2).contiguous()
        self.rough_metal = ResidualPyramid(rm, 3)
        h = cfg.light_height
        self.register_buffer("basis", sh_basis(directions(h, 2 * h)))  # (h, 2h, 9)
        sh = torch.zeros(9, 3)
        sh[0] = math.sqrt(4 * math.pi)  # uniform radiance 1
        self.light_sh = torch.nn.Parameter(sh)
        self.log_gain = torch.nn.Parameter(torch.zeros(photos, 3), requires_grad=cfg.exposure)
        # normal detail: the slopes (dx, dy) a normal map adds along the tangent frame, at the albedo's size
        self.detail = ResidualPyramid(np.zeros((albedo.shape[0],) * 2 + (2,), np.float32), 4) if detail else None

    def light(self) -> torch.Tensor:
        """(h, 2h, 3) linear radiance: the order-2 spherical harmonics light, clamped at 0."""
        return (self.basis @ self.light_sh).clamp_min(0)

    def gains(self) -> torch.Tensor:
        """(photos, 3) per-photo exposure x white balance, geometric mean 1 per channel."""
        return (self.log_gain - self.log_gain.mean(0, keepdim=True)).exp()

    def materials(self, uv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """albedo (P, 3), roughness (P,), metallic (P,) at uvs (P, 2)."""
        rm = self.rough_metal.sample(uv)
        # roughness clamped straight through: with a plain clamp, texels that step past 1 (the default
        # start) get no gradient again and a glossy surface stays matte
        r = rm[:, 0]
        return self.albedo.sample(uv).clamp(0, 1), r + (r.clamp(0.05, 1) - r).detach(), rm[:, 1].clamp(0, 1)

    def slopes(self, uv: torch.Tensor) -> torch.Tensor:
        """(P, 2) the normal detail's slopes at uvs (P, 2) (zeros when no detail is fitted)."""
        return self.detail.sample(uv) if self.detail is not None else uv.new_zeros(len(uv), 2)

    def normals(self, obs: Observations, slopes: torch.Tensor | None = None) -> torch.Tensor:
        """(P, 3) shading normals: the mesh's, bent by the normal detail's slopes along its tangent frame."""
        if self.detail is None:
            return obs.normal
        d = self.slopes(obs.uv) if slopes is None else slopes
        return F.normalize(obs.normal + d[:, :1] * obs.tangent + d[:, 1:] * obs.bitangent, dim=-1)

    def normal_map(self, base: np.ndarray | None, size: int) -> np.ndarray | None:
        """(size, size, 3) uint8 tangent-space normal map: ``base`` (the mesh's map, or flat) bent by the
        fitted slopes, the same bend ``normals`` applies; None when no detail is fitted."""
        if self.detail is None:
            return None
        with torch.no_grad():
            d = self.detail.texture().permute(2, 0, 1)[None]
            d = F.interpolate(d, size=(size, size), mode="bilinear", align_corners=False)[0].permute(1, 2, 0)
            m = torch.tensor([0.0, 0.0, 1.0]).expand(size, size, 3) if base is None else F.interpolate(
                torch.as_tensor(base).float().permute(2, 0, 1)[None] / 127.5 - 1, size=(size, size), mode="bilinear",
                align_corners=False)[0].permute(1, 2, 0)
            n = F.normalize(F.normalize(m, dim=-1) + F.pad(d, (0, 1)), dim=-1)
            n[..., 2] = n[..., 2].clamp(min=0)
            return (F.normalize(n, dim=-1).numpy() * 127.5 + 128).clip(0, 255).astype(np.uint8)

    def render(self, obs: Observations, probe: LightProbe, materials=None, slopes=None) -> torch.Tensor:
        """(P, 3) sRGB renders of the observed points (``materials``: their ``materials(obs.uv)``, ``slopes``
        their ``slopes(obs.uv)``, if at hand)."""
        a, r, m = self.materials(obs.uv) if materials is None else materials
        rgb = shade_pbr(a, r, m, self.normals(obs, slopes), obs.view, probe) * self.gains()[obs.photo]
        return linear_to_srgb(rgb.clamp(0, 1))


@dataclass(frozen=True)
class MaterialFit:
    """albedo (S, S, 3) uint8 sRGB; orm (S, S, 3) uint8 linear (occlusion 1, roughness, metallic);
    environment (h, 2h, 3) float32 linear radiance in the light's frame; stats for metrics.json;
    normal_map (S, S, 3) uint8 tangent space (the mesh's own bent by the fitted detail), None when none was fitted."""

    albedo: np.ndarray
    orm: np.ndarray
    environment: np.ndarray
    stats: dict
    normal_map: np.ndarray | None = None


def _psnr(model: MaterialModel, obs: Observations, probe: LightProbe, radiance: ResidualPyramid | None = None) -> float:
    """PSNR over all observations of the model's render, or of the unlit ``radiance`` texture."""
    err = []
    with torch.no_grad():
        for sel in torch.arange(len(obs)).split(1 << 17):
            o = obs.take(sel)
            pred = model.render(o, probe) if radiance is None else radiance.sample(o.uv).clamp(0, 1)
            err.append((pred - o.rgb).pow(2).sum(0))
    return float(-10 * torch.log10(torch.stack(err).sum() / (3 * len(obs))))


def fit_materials(mesh, capture, normalization: np.ndarray, cfg: MaterialsConfig | None = None,
                  to_light: np.ndarray | None = None, seed: int = 0) -> MaterialFit:
    """Fit albedo, roughness, metallic and the light to the training photos of ``capture`` (see the module).

    mesh: a ``TexturedMesh`` in the capture's original frame whose base colour is the baked radiance;
    normalization: the capture's 4x4 original -> normalised similarity; to_light: (3, 3) rotation from
    the mesh frame to the light's frame (the asset's +Y up), identity when None.
    """
    cfg = cfg or MaterialsConfig()
    torch.manual_seed(seed)
    obs, photos = observations(mesh, capture, normalization, to_light, cfg.max_samples, seed)
    if len(obs) == 0:
        raise ValueError("no training pixel covers the mesh: nothing to fit materials to")
    detail = cfg.normal_detail > 0 and getattr(mesh, "tangents", None) is not None
    model = MaterialModel(mesh.base_color, photos, cfg, detail)
    sh = estimate_light(obs, cfg, seed)  # a neutral light shaped as the photos imply, bright enough that
    with torch.no_grad():  # 99% of the albedos it implies stay below 0.9 (8-bit textures clamp at 1)
        e = ((sh_basis(obs.normal) * LAMBERT_BANDS) @ sh).clamp_min(1e-3)
        implied = (srgb_to_linear(obs.rgb).max(-1).values / e).quantile(0.99)
        model.light_sh.copy_(sh[:, None].expand(9, 3) * float(implied) / 0.9)
    radiance = ResidualPyramid(mesh.base_color, 1)
    groups = [{"params": model.albedo.parameters(), "lr": cfg.lr},
              {"params": model.rough_metal.parameters(), "lr": cfg.lr * 2},
              {"params": [model.light_sh], "lr": cfg.light_lr}]
    if cfg.exposure:
        groups.append({"params": [model.log_gain], "lr": cfg.lr})
    if model.detail is not None:  # slopes: a step of the albedo's lr on each of 4 levels would bend normals ~2 degrees
        groups.append({"params": model.detail.parameters(), "lr": cfg.lr * DETAIL_LR})
    opt = torch.optim.Adam(groups)
    gen = torch.Generator().manual_seed(seed)
    S = mesh.base_color.shape[0]
    luma = _LUMA
    for step in track(range(cfg.steps), "fitting materials and light", total=cfg.steps):
        o = obs.take(torch.randint(len(obs), (min(cfg.batch, len(obs)),), generator=gen))
        probe = LightProbe.from_map(model.light(), cfg.light_height)
        a0, r0, m0 = mats = model.materials(o.uv)
        d0 = model.slopes(o.uv)
        loss = (model.render(o, probe, mats, d0) - o.rgb).pow(2).mean() + cfg.normal_detail * d0.pow(2).sum(-1).mean()
        # piecewise smooth materials: a point against a neighbour up to ~smoothness_texels away
        # (texels of the albedo; the roughness/metallic texels are orm_downscale times larger)
        reach = torch.rand(len(o.uv), 1, generator=gen) * cfg.smoothness_texels / S
        jitter = torch.randn(o.uv.shape, generator=gen) * reach
        a1 = model.materials(o.uv + jitter)[0]
        _, r1, m1 = model.materials(o.uv + jitter * cfg.orm_downscale)
        loss = loss + cfg.albedo_smoothness * (a0 - a1).abs().mean() \
            + cfg.orm_smoothness * ((r0 - r1).abs().mean() + (m0 - m1).abs().mean()) + cfg.metallic_prior * m0.mean()
        sh = model.light_sh  # a neutral light: its colour goes to the albedo
        neutral = (sh - (sh @ luma)[:, None]).pow(2).sum() / (sh[0] @ luma).detach().pow(2)
        loss = loss + cfg.light_neutrality * neutral
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    probe = LightProbe.from_map(model.light().detach(), cfg.light_height)
    stats = {"materials_psnr_radiance": _psnr(model, obs, probe, radiance), "materials_psnr_pbr": _psnr(model, obs, probe),
             "materials_pixels": int(len(obs)), "materials_photos": photos, "materials_steps": cfg.steps}
    with torch.no_grad():
        albedo = linear_to_srgb(model.albedo.texture().clamp(0, 1))
        rm = model.rough_metal.texture().permute(2, 0, 1)[None]
        rm = F.interpolate(rm, size=(S, S), mode="bilinear", align_corners=False)[0].permute(1, 2, 0)
        orm = torch.stack([torch.ones(S, S), rm[..., 0].clamp(0.05, 1), rm[..., 1].clamp(0, 1)], -1)
        light = model.light().numpy().astype(np.float32)
        gains = model.gains()
    stats.update(light_mean_radiance=float(light.mean()), roughness_mean=float(orm[..., 1].mean()),
                 metallic_mean=float(orm[..., 2].mean()))
    if cfg.exposure:
        stats["exposure_spread"] = float(gains.log().std(0).mean())
    log.info("materials: photos PSNR %.2f dB (radiance asset) -> %.2f dB (PBR under the fitted light), "
             "%d pixels", stats["materials_psnr_radiance"], stats["materials_psnr_pbr"], len(obs))
    nmap = model.normal_map(getattr(mesh, "normal_map", None), S)
    if nmap is not None:
        with torch.no_grad():
            slope = model.detail.texture().norm(dim=-1)
        stats.update(normal_detail_deg_mean=float(torch.rad2deg(torch.atan(slope)).mean()))
    u8 = lambda x: (x.numpy() * 255 + 0.5).astype(np.uint8)  # noqa: E731
    return MaterialFit(albedo=u8(albedo), orm=u8(orm), environment=light, stats=stats, normal_map=nmap)


def per_channel_scale(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """(3,) least-squares scales s with s * pred ~ truth per channel (over ``mask``): the albedo-light
    scale is not observable, so albedo is compared after it (as NeRFactor and its successors do)."""
    p = pred.reshape(-1, 3).astype(np.float64)
    t = truth.reshape(-1, 3).astype(np.float64)
    if mask is not None:
        p, t = p[mask.reshape(-1)], t[mask.reshape(-1)]
    return (p * t).sum(0) / np.maximum((p * p).sum(0), 1e-12)


__all__ = ["fit_materials", "MaterialFit", "MaterialModel", "Observations", "observations", "per_channel_scale"]
