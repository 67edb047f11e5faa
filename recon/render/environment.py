"""Environment light: equirectangular HDR maps, their spherical-harmonics irradiance and split-sum
pre-filtered specular stacks, all differentiable in the map's texels.

Convention (the one Mitsuba 3's ``envmap`` and pbrt use, +Y up): a world direction d = (x, y, z)
looks up the map at u = atan2(x, -z) / 2pi (wrapped to [0, 1), across the columns) and
v = acos(y) / pi (down the rows: row 0 is straight up). Maps hold linear radiance (H, W, 3).

``LightProbe.from_map`` turns a map into what the shading needs:
- ``sh`` (9, 3): the map's order-2 spherical-harmonics coefficients; ``diffuse(n)`` is the
  irradiance E(n) / pi they give (Ramamoorthi & Hanrahan 2001): what a white Lambertian surface
  facing n reflects;
- ``specular`` (L, h, w, 3): the map convolved with the GGX lobe of roughness k / (L-1) around each
  direction (Karis 2013, "split sum", with n = v = r), read trilinearly by ``specular_at(r, roughness)``.
Both are linear in the map, so a light fitted as a small map gets gradients through them.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..core.errors import InputError

ENV_SUFFIXES = (".hdr", ".exr")


def directions(h: int, w: int) -> Tensor:
    """(h, w, 3) unit directions through the texel centres of an h x w equirectangular map."""
    theta = (torch.arange(h, dtype=torch.float64) + 0.5) / h * math.pi
    phi = (torch.arange(w, dtype=torch.float64) + 0.5) / w * 2 * math.pi
    st, ct = torch.sin(theta)[:, None], torch.cos(theta)[:, None]
    return torch.stack([st * torch.sin(phi), ct.expand(h, w), -st * torch.cos(phi)], -1).float()


def solid_angles(h: int, w: int) -> Tensor:
    """(h, w) solid angle of each texel (sums to 4 pi)."""
    edges = torch.arange(h + 1, dtype=torch.float64) / h * math.pi
    band = torch.cos(edges[:-1]) - torch.cos(edges[1:])  # exact per row
    return (band[:, None] * (2 * math.pi / w)).expand(h, w).float()


def direction_to_uv(d: Tensor) -> Tensor:
    """(N, 3) unit directions -> (N, 2) map coordinates (u, v) in [0, 1)."""
    u = torch.atan2(d[:, 0], -d[:, 2]) / (2 * math.pi)
    v = torch.acos(d[:, 1].clamp(-1 + 1e-6, 1 - 1e-6)) / math.pi  # acos' is infinite at +-1: no NaN gradients
    return torch.stack([u - torch.floor(u), v], 1)


def sh_basis(d: Tensor) -> Tensor:
    """(N, 3) unit directions -> (N, 9) real spherical harmonics up to order 2."""
    x, y, z = d.unbind(-1)
    return torch.stack([
        torch.full_like(x, 0.282095), 0.488603 * y, 0.488603 * z, 0.488603 * x,
        1.092548 * x * y, 1.092548 * y * z, 0.315392 * (3 * z * z - 1), 1.092548 * x * z,
        0.546274 * (x * x - y * y)], -1)


# cosine-lobe convolution per band (A_l / pi): irradiance / pi from radiance coefficients
LAMBERT_BANDS = torch.tensor([1.0, 2 / 3, 2 / 3, 2 / 3, 1 / 4, 1 / 4, 1 / 4, 1 / 4, 1 / 4])


def ggx_weights(out_dirs: Tensor, in_dirs: Tensor, in_area: Tensor, roughness: float) -> Tensor:
    """(M, P) normalised split-sum weights: the GGX lobe (alpha = roughness^2) around each of M output
    directions over P input texels (directions (P, 3), solid angles (P,)), times n.l, n = v = r."""
    alpha2 = max(roughness, 0.02) ** 4
    cos = out_dirs @ in_dirs.T  # n.l
    n_dot_h2 = ((1 + cos) / 2).clamp_min(0)  # h = normalize(n + l): (n.h)^2 = (1 + n.l) / 2
    D = alpha2 / (math.pi * (n_dot_h2 * (alpha2 - 1) + 1) ** 2)
    w = torch.where(cos > 0, D * cos * in_area, torch.zeros_like(cos))
    return w / w.sum(1, keepdim=True).clamp_min(1e-30)


@lru_cache(maxsize=8)
def _prefilter_operators(h: int, w: int, levels: int) -> Tensor:
    """(levels, h*w, h*w) the split-sum prefilter of an h x w map for roughness 0 .. 1."""
    d = directions(h, w).reshape(-1, 3)
    area = solid_angles(h, w).reshape(-1)
    return torch.stack([ggx_weights(d, d, area, k / (levels - 1)) for k in range(levels)])


def downsample(env: Tensor, h: int) -> Tensor:
    """(H, W, 3) map -> (h, 2h, 3) by area averaging (H a multiple of h) or bilinear resampling."""
    H, W = env.shape[:2]
    if (H, W) == (h, 2 * h):
        return env
    x = env.permute(2, 0, 1)[None]
    if H % h == 0 and W % (2 * h) == 0:
        return F.avg_pool2d(x, (H // h, W // (2 * h)))[0].permute(1, 2, 0)
    return F.interpolate(x, size=(h, 2 * h), mode="bilinear", align_corners=False, antialias=True)[0].permute(1, 2, 0)


@dataclass(frozen=True, eq=False)
class LightProbe:
    """What shading reads from an environment map (see the module docstring). Linear radiance.

    sh: (9, 3) radiance SH coefficients; specular: (L, h, w, 3) pre-filtered maps, roughness k / (L-1).
    """

    sh: Tensor
    specular: Tensor

    @classmethod
    def from_map(cls, env: Tensor, spec_height: int = 32, levels: int = 6) -> "LightProbe":
        """The probe of an (H, W, 3) map (differentiable); its specular stack is ``spec_height`` rows high."""
        H, W = env.shape[:2]
        d = directions(H, W).reshape(-1, 3)
        area = solid_angles(H, W).reshape(-1, 1)
        sh = sh_basis(d).T @ (env.reshape(-1, 3) * area)  # (9, 3) projection
        small = downsample(env, min(spec_height, H))
        h, w = small.shape[:2]
        spec = _prefilter_operators(h, w, levels) @ small.reshape(1, h * w, 3)
        return cls(sh=sh, specular=spec.reshape(levels, h, w, 3))

    def diffuse(self, n: Tensor) -> Tensor:
        """(N, 3) irradiance / pi at unit normals n (N, 3), clamped at 0."""
        return ((sh_basis(n) * LAMBERT_BANDS.to(n)) @ self.sh.to(n)).clamp_min(0)

    def specular_at(self, r: Tensor, roughness: Tensor) -> Tensor:
        """(N, 3) pre-filtered radiance around reflection directions r (N, 3) for roughness (N,) in [0, 1]."""
        L, h, w, _ = self.specular.shape
        vol = self.specular.permute(3, 0, 1, 2)  # (3, L, h, w)
        vol = torch.cat([vol[..., -1:], vol, vol[..., :1]], -1)  # wrap around in u
        uv = direction_to_uv(r)
        x = (uv[:, 0] * w + 0.5) / (w + 1) * 2 - 1  # padded texel coords, align_corners=True
        y = ((uv[:, 1] * h - 0.5) / max(h - 1, 1)) * 2 - 1
        z = roughness.clamp(0, 1) * 2 - 1
        grid = torch.stack([x, y, z], -1).to(vol)[None, None, None]  # (1, 1, 1, N, 3)
        out = F.grid_sample(vol[None], grid, mode="bilinear", padding_mode="border", align_corners=True)
        return out[0, :, 0, 0].T


def load_environment(path: str | Path) -> np.ndarray:
    """Read an equirectangular HDR map (.hdr Radiance or .exr OpenEXR) as (H, W, 3) float32 linear RGB."""
    os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")  # OpenCV reads EXR only when asked to
    import cv2

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "environment map not found")
    if path.suffix.lower() not in ENV_SUFFIXES:
        raise InputError(path, f"environment map must be {' or '.join(ENV_SUFFIXES)} (equirectangular HDR)")
    im = cv2.imread(str(path), cv2.IMREAD_UNCHANGED | cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
    if im is None or im.ndim != 3 or im.shape[2] < 3:
        raise InputError(path, "cannot read the environment map (not an RGB HDR/EXR image)")
    im = np.ascontiguousarray(im[..., 2::-1], dtype=np.float32)  # BGR(A) -> RGB
    if abs(im.shape[1] - 2 * im.shape[0]) > 1:
        raise InputError(path, f"environment map is {im.shape[1]}x{im.shape[0]}: an equirectangular map is twice "
                               "as wide as high")
    if not np.isfinite(im).all() or (im < 0).any():
        im = np.nan_to_num(np.maximum(im, 0), posinf=0.0)
    return im


def save_environment(path: str | Path, env: np.ndarray) -> Path:
    """Write (H, W, 3) linear RGB as a Radiance .hdr (or OpenEXR .exr) file."""
    os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")
    import cv2

    path = Path(path)
    if not cv2.imwrite(str(path), np.ascontiguousarray(np.asarray(env, np.float32)[..., ::-1])):
        raise OSError(f"{path}: could not write the environment map")
    return path


def builtin_environments() -> dict[str, Path]:
    """Name -> path of the CC0 Poly Haven maps ``scripts/setup.sh`` installs (npm ``@pmndrs/assets``)."""
    folder = Path(__file__).resolve().parents[1] / "materials" / "envmaps"
    return {p.name.split(".")[0]: p for p in sorted(folder.glob("*.exr"))}


def resolve_environment(spec: str | Path) -> Path:
    """A file path, or the name of an installed map (``city``, ``studio``, ...)."""
    p = Path(spec)
    if p.is_file():
        return p
    maps = builtin_environments()
    if str(spec) in maps:
        return maps[str(spec)]
    names = ", ".join(maps) or "none installed (run scripts/setup.sh)"
    raise InputError(p, f"no such environment map file or name (installed maps: {names})")
