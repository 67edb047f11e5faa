"""Procedural material priors (the PhotoScene / MATch idea, on a CPU).

A fitted PBR asset's surface is split into regions of like material; each region's albedo and roughness
are explained by a small procedural material whose parameters are resolution-free, stored with the asset
(``materials.json``) and regenerated at any texture size (``regenerate``; ``recon export --texture-size N``).

The materials are *solid* textures: functions of the surface point in the asset's frame, normalised by the
asset's centre and largest extent (``p`` in about [-0.5, 0.5]^3), so they have no UV seams. Each family is a
pattern of a few components ``B(p)`` (structural parameters: a direction, a frequency, a scale); linear
RGB albedo and roughness are linear in them and in a linear trend across the region, ``[1, p, B(p)] @ W``,
solved by least squares:

  uniform   no component                                        a constant material
  stripes   cos/sin(2πkf d·p), k = 1..3                         stripes, weave, banding
  plaid     stripes along two directions                        plaid, woven fabric
  wood      cos/sin(2πkf r), k = 1..2, r = distance to an axis  growth rings
  noise     fractal value noise at scale s                      mottled: stone, skin, plastic
  cells     Worley distance to the nearest cell point, scale s  leather, pebbles
  brushed   value noise stretched 24x along d                   brushed metal

Stripes, plaid and wood are fitted point for point: the wave is found (stripes: the peak of a 3-D
periodogram; plaid: the peak of what the stripes leave; wood: a search of axes and ring frequencies), then
refined by Adam with its harmonics (the linear part solved in every step); they are scored by the PSNR of the
albedo against the fitted texture and taken when they beat the region's linear trend by 2 dB. Noise has no
phase to fit: the stochastic families match statistics (the region's mean and trend, its spread along its main
colour axis, its variogram and its histogram) and are scored on those; their texel PSNR is reported too, and
is not expected to beat the region's mean colour.
"""
from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from ..core.log import get_logger
from ..render.colorspace import linear_to_srgb, srgb_to_linear
from .surface import DEFAULT_ORM

log = get_logger(__name__)

DETERMINISTIC = ("stripes", "plaid", "wood")
STOCHASTIC = ("noise", "cells", "brushed")
FAMILIES = ("uniform",) + DETERMINISTIC + STOCHASTIC
_HARMONICS = {"stripes": 3, "plaid": 3, "wood": 2}
# a region's procedural material replaces its texture on export only when it is this close to it: a pattern
# (or uniform) within ACCEPT_PSNR dB of the fitted albedo, a stochastic family within ACCEPT_STATS statistics error
ACCEPT_PSNR = 28.0
ACCEPT_STATS = 0.15
_BRUSH_STRETCH = 24.0


# ---------------------------------------------------------------------------------------------- patterns
def _hash(cells: Tensor, salt: float) -> Tensor:
    """(..., 3) integer lattice points -> (...,) pseudo-random values in [0, 1), the same on any machine."""
    h = torch.sin(cells @ torch.tensor([127.1, 311.7, 74.7], dtype=cells.dtype) + salt) * 43758.5453
    return h - torch.floor(h)


_CORNERS = torch.tensor([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], dtype=torch.float64)


def value_noise(x: Tensor) -> Tensor:
    """(N, 3) float64 -> (N,) smooth lattice value noise in [0, 1] (differentiable in x)."""
    cell = torch.floor(x)
    f = x - cell
    u = f * f * (3 - 2 * f)
    out = torch.zeros(len(x), dtype=x.dtype)
    for c in _CORNERS:
        w = torch.where(c.bool(), u, 1 - u).prod(-1)
        out = out + w * _hash(cell + c, 0.0)
    return out


def fbm(x: Tensor, octaves: int = 4) -> Tensor:
    """(N, 3) -> (N,) fractal value noise: octaves at doubling frequency and halving weight, in [0, 1]."""
    total, norm = 0.0, 0.0
    for k in range(octaves):
        total = total + 0.5 ** k * value_noise(x * 2.0 ** k + 19.19 * k)
        norm += 0.5 ** k
    return total / norm


_NEIGHBOURS = torch.tensor([[i, j, k] for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)],
                           dtype=torch.float64)


def worley(x: Tensor) -> Tensor:
    """(N, 3) -> (N,) distance to the nearest of one random point per lattice cell (clamped to [0, 1])."""
    cells = torch.floor(x)[:, None] + _NEIGHBOURS  # (N, 27, 3)
    jitter = torch.stack([_hash(cells, s) for s in (1.7, 9.2, 23.5)], -1)
    return (x[:, None] - cells - jitter).norm(dim=-1).min(-1).values.clamp(max=1.0)


def _unit(v: Tensor) -> Tensor:
    return v / v.norm().clamp_min(1e-12)


def _waves(x: Tensor, freqs: Tensor, harmonics: int) -> Tensor:
    """Coordinates x (..., N) -> (..., F, N, 2H): cos and sin of 2π k f x for every frequency f and k = 1..H."""
    k = torch.arange(1, harmonics + 1, dtype=x.dtype)
    a = 2 * math.pi * x[..., None, :, None] * freqs[:, None, None] * k
    return torch.cat([torch.cos(a), torch.sin(a)], -1)


def components(family: str, p: Tensor, params: dict[str, Tensor]) -> Tensor:
    """The family's pattern components at normalised points p (N, 3): (N, K) (K = 0 for uniform)."""
    if family == "uniform":
        return p.new_zeros(len(p), 0)
    if family in ("stripes", "plaid", "wood"):
        waves = []
        for i in ((1, 2) if family == "plaid" else (1,)):
            d, f = _unit(params[f"direction{i}" if family == "plaid" else "direction"]), params[
                f"frequency{i}" if family == "plaid" else "frequency"]
            if family == "wood":
                q = p - params["origin"]
                x = (q - (q @ d)[:, None] * d).norm(dim=-1)
            else:
                x = p @ d
            waves.append(_waves(x, f.reshape(1), _HARMONICS[family])[0])
        return torch.cat(waves, -1)
    s = params["scale"]
    if family == "noise":
        t = fbm(p * s + params["offset"])
    elif family == "cells":
        t = worley(p * s + params["offset"])
    elif family == "brushed":
        d = _unit(params["direction"])
        along = (p @ d)[:, None] * d
        t = fbm((p - along) * s + along * (s / _BRUSH_STRETCH) + params["offset"])
    else:
        raise ValueError(f"unknown procedural family {family!r} (known: {', '.join(FAMILIES)})")
    return t[:, None]


# ---------------------------------------------------------------------------------------------- a material
@dataclass
class ProceduralMaterial:
    """One region's material: ``family``, its structural ``params`` and the linear map ``weights``
    ((4 + K, 4): intercept, the linear trend in p and per-component rows -> linear R, G, B, roughness);
    ``metallic`` is constant.
    Stochastic families standardise their pattern with ``t_mean``/``t_std`` (measured when fitted)."""

    family: str
    params: dict[str, list[float] | float]
    weights: np.ndarray
    metallic: float = 0.0
    t_mean: float = 0.0
    t_std: float = 1.0
    scores: dict = field(default_factory=dict)

    def _tensor_params(self) -> dict[str, Tensor]:
        return {k: torch.as_tensor(v, dtype=torch.float64) for k, v in self.params.items()}

    def evaluate(self, p: np.ndarray | Tensor) -> np.ndarray:
        """Normalised points (N, 3) -> (N, 5) float32: linear albedo RGB, roughness, metallic (clamped)."""
        p = torch.as_tensor(np.asarray(p), dtype=torch.float64)
        out = []
        for chunk in p.split(1 << 16):
            B = components(self.family, chunk, self._tensor_params())
            if self.family in STOCHASTIC:
                B = (B - self.t_mean) / self.t_std
            y = _design(chunk, B) @ torch.as_tensor(self.weights)
            out.append(y)
        y = torch.cat(out).numpy() if out else np.zeros((0, 4))
        rgb = np.clip(y[:, :3], 0, 1)
        rough = np.clip(y[:, 3:4], 0.05, 1)
        return np.concatenate([rgb, rough, np.full((len(y), 1), self.metallic)], 1).astype(np.float32)

    def to_dict(self) -> dict:
        return {"family": self.family, "params": self.params, "weights": np.round(self.weights, 6).tolist(),
                "metallic": self.metallic, "t_mean": self.t_mean, "t_std": self.t_std, "scores": self.scores}

    @classmethod
    def from_dict(cls, d: dict) -> "ProceduralMaterial":
        if d.get("family") not in FAMILIES:
            raise ValueError(f"unknown procedural family {d.get('family')!r}")
        return cls(d["family"], d["params"], np.asarray(d["weights"], np.float64), float(d.get("metallic", 0.0)),
                   float(d.get("t_mean", 0.0)), float(d.get("t_std", 1.0)), d.get("scores", {}))


# ---------------------------------------------------------------------------------------------- fitting
def _design(p: Tensor, B: Tensor) -> Tensor:
    """[1, p, B]: intercept, linear trend and the pattern's components; p (N, 3), B (..., N, K) -> (..., N, 4 + K)."""
    lead = torch.cat([torch.ones(len(p), 1, dtype=p.dtype), p], 1).to(B.dtype)
    return torch.cat([lead.expand(*B.shape[:-1], 4), B], -1)


def _solve(p: Tensor, B: Tensor, Y: Tensor, ridge: float = 1e-4) -> tuple[Tensor, Tensor]:
    """Least squares of Y (N, C) on [1, p, B] (B (..., N, K), a batch of designs): weights (..., 4+K, C), SSE (...)."""
    A = _design(p, B)
    G = A.transpose(-1, -2) @ A
    reg = ridge * len(Y) * torch.eye(G.shape[-1], dtype=B.dtype)
    reg[:4, :4] = 0
    AtY = A.transpose(-1, -2) @ Y
    W = torch.linalg.solve(G + reg, AtY)
    sse = Y.pow(2).sum() - 2 * (W * AtY).sum((-1, -2)) + (W * (G @ W)).sum((-1, -2))
    return W, sse


def fibonacci_directions(n: int) -> Tensor:
    """(n, 3) unit directions spread evenly over a hemisphere (a direction and its opposite are one pattern)."""
    i = torch.arange(n, dtype=torch.float64) + 0.5
    z = 1 - i / n
    phi = math.pi * (3 - math.sqrt(5)) * i
    r = (1 - z * z).sqrt()
    return torch.stack([r * torch.cos(phi), r * torch.sin(phi), z], -1)


def _albedo_psnr(pred: Tensor, Y: Tensor) -> float:
    """PSNR (dB) of the albedo in sRGB between linear predictions and the fitted texture's values."""
    a, b = linear_to_srgb(pred[:, :3].clamp(0, 1)), linear_to_srgb(Y[:, :3].clamp(0, 1))
    return float(-10 * torch.log10((a - b).pow(2).mean().clamp_min(1e-10)))


@dataclass
class RegionSamples:
    """A region's texels: normalised points p (N, 3) and their fitted linear albedo + roughness Y (N, 4),
    metallic m (N,), with ``texel`` the size of a texel in normalised units (the finest pattern allowed)."""

    p: Tensor
    Y: Tensor
    m: Tensor
    texel: float


class _Variogram:
    """The statistics a stochastic material must match: point pairs binned by distance (log-spaced from a few
    texels to half the region) and standardised quantiles."""

    def __init__(self, p: Tensor, texel: float, bins: int = 8, per_bin: int = 3000, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        n = len(p)
        i = torch.randint(n, (min(n, 1500),), generator=g)
        d = torch.cdist(p[i], p)
        extent = float((p.max(0).values - p.min(0).values).norm())
        edges = np.geomspace(3 * texel, max(extent / 2, 6 * texel), bins + 1)
        self.pairs = []
        for lo, hi in zip(edges[:-1], edges[1:]):
            a, b = torch.nonzero((d >= lo) & (d < hi), as_tuple=True)
            if len(a) < 50:
                continue
            keep = torch.randperm(len(a), generator=g)[:per_bin]
            self.pairs.append((i[a[keep]], b[keep]))
        self.q = torch.linspace(0.02, 0.98, 33, dtype=torch.float64)

    def __call__(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Standardised values (N,) -> (variogram per bin, quantiles)."""
        gam = torch.stack([0.5 * (z[a] - z[b]).pow(2).mean() for a, b in self.pairs]) if self.pairs \
            else z.new_zeros(0)
        return gam, torch.quantile(z, self.q)


def _stochastic_fit(family: str, s: RegionSamples, stats: _Variogram, target: tuple[Tensor, Tensor],
                    axis: Tensor, spread: float, trend: Tensor, scales: Tensor, seed: int
                    ) -> tuple[ProceduralMaterial, float]:
    """Search the family's scale (and direction for brushed) for the best statistics match."""
    g = torch.Generator().manual_seed(seed)
    offset = (torch.rand(3, generator=g, dtype=torch.float64) * 100).tolist()
    dirs = fibonacci_directions(12) if family == "brushed" else [None]
    best = None
    for d in dirs:
        for sc in scales:
            params = {"scale": float(sc), "offset": offset}
            if d is not None:
                params["direction"] = d.tolist()
            t = components(family, s.p, {k: torch.as_tensor(v, dtype=torch.float64) for k, v in params.items()})[:, 0]
            mu, sd = float(t.mean()), float(t.std().clamp_min(1e-9))
            z = (t - mu) / sd
            gam, q = stats(z)
            for sign in (1.0, -1.0):
                qs = torch.quantile(sign * z, stats.q)
                err = float((gam - target[0]).abs().mean() + (qs - target[1]).abs().mean()) if len(gam) else \
                    float((qs - target[1]).abs().mean())
                if best is None or err < best[0]:
                    best = (err, params, mu, sd, sign)
    err, params, mu, sd, sign = best
    W = torch.cat([trend, sign * spread * axis[None]]).numpy()  # Y = trend + axis * spread * (±z)
    mat = ProceduralMaterial(family, params, W, float(s.m.mean()), mu, sd)
    return mat, err


def _wave_peak(p: Tensor, R: Tensor, f_max: float, points: int = 2048) -> tuple[Tensor, Tensor]:
    """The plane wave that explains most of R (N, C, centred) at points p (N, 3): the peak of the periodogram
    over a grid of wave vectors (spacing 0.7 cycles across the region, up to ``f_max``); (direction, frequency)."""
    p, R = p[:points].float(), R[:points].float()
    step = 0.7 / float((p.max(0).values - p.min(0).values).max().clamp_min(1e-6))
    n = int(math.ceil(f_max / step))
    g = torch.arange(-n, n + 1, dtype=torch.float32) * step
    K = torch.cartesian_prod(g, g, g[n:])
    half = (K[:, 2] > 0) | ((K[:, 2] == 0) & ((K[:, 1] > 0) | ((K[:, 1] == 0) & (K[:, 0] > 0))))  # k ~ -k
    K = K[half & (K.norm(dim=1) <= f_max) & (K.norm(dim=1) >= 2 * step)]  # a pattern: >1.4 cycles, not a trend
    best = (-1.0, None)
    for chunk in K.split(4096):
        a = 2 * math.pi * p @ chunk.T
        power = ((R.T @ torch.cos(a)).pow(2) + (R.T @ torch.sin(a)).pow(2)).sum(0)
        i = int(power.argmax())
        if float(power[i]) > best[0]:
            best = (float(power[i]), chunk[i].double())
    k = best[1]
    return k / k.norm(), k.norm()


def _deterministic_fit(family: str, s: RegionSamples, f_max: float, steps: int,
                       first: ProceduralMaterial | None = None) -> ProceduralMaterial:
    """Find the wave (stripes: the periodogram's peak; plaid: the peak of what the stripes ``first`` leave;
    wood: a search of axes through the region's centre x ring frequencies), then refine with the harmonics."""
    centre = s.p.mean(0)
    fixed = {}
    if family == "plaid":
        fixed = {"direction1": torch.as_tensor(first.params["direction"], dtype=torch.float64),
                 "frequency1": torch.as_tensor(first.params["frequency"], dtype=torch.float64)}
        left = s.Y - torch.as_tensor(first.evaluate(s.p)[:, :4], dtype=torch.float64)
        d, f = _wave_peak(s.p, left - left.mean(0), f_max)
    elif family == "stripes":
        d, f = _wave_peak(s.p, s.Y - _design(s.p, s.p[:, :0]) @ _solve(s.p, s.p[:, :0], s.Y)[0], f_max)
    else:
        dirs = fibonacci_directions(96)
        freqs = torch.as_tensor(np.geomspace(0.5, max(f_max, 1.0), 28), dtype=torch.float64)
        q = s.p - centre
        xs = (q[None] - (q @ dirs.T).T[..., None] * dirs[:, None]).norm(dim=-1)  # (D, N) distance to each axis
        best = (float("inf"), None)
        for chunk in torch.arange(len(dirs)).split(8):
            _, sse = _solve(s.p, _waves(xs[chunk], freqs, 1), s.Y)  # the fundamental alone (harmonics alias f/k)
            i = int(sse.argmin())
            if float(sse.flatten()[i]) < best[0]:
                best = (float(sse.flatten()[i]), (dirs[chunk[i // len(freqs)]], freqs[i % len(freqs)]))
        d, f = best[1]
    keys = ("direction2", "frequency2") if family == "plaid" else ("direction", "frequency")
    free = {keys[0]: d.clone().requires_grad_(True), "log_f": torch.log(f).clone().requires_grad_(True)}
    if family == "wood":
        free["origin"] = centre.clone().requires_grad_(True)
    if family == "plaid":
        free["direction1"] = fixed["direction1"].clone().requires_grad_(True)
        free["log_f1"] = torch.log(fixed["frequency1"]).clone().requires_grad_(True)
    opt = torch.optim.Adam(free.values(), lr=5e-3)
    decay = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 1 - i / steps)  # settle, not jitter, at the optimum

    def current() -> dict[str, Tensor]:
        params = {k: v for k, v in free.items() if not k.startswith("log_f")}
        params[keys[1]] = free["log_f"].exp()
        if family == "plaid":
            params["frequency1"] = free["log_f1"].exp()
        return params

    for _ in range(steps):
        _, sse = _solve(s.p, components(family, s.p, current()), s.Y)
        opt.zero_grad()
        (sse / len(s.Y)).backward()
        opt.step()
        decay.step()
    with torch.no_grad():
        params = current()
        W, _ = _solve(s.p, components(family, s.p, params), s.Y)
    out = {k: (_unit(v) if k.startswith("direction") else v).tolist() for k, v in params.items()}
    return ProceduralMaterial(family, out, W.numpy(), float(s.m.mean()))


def fit_region(s: RegionSamples, gain_db: float = 2.0, flat: float = 0.02, steps: int = 60, seed: int = 0
               ) -> ProceduralMaterial:
    """The procedural material that best explains one region (see the module docstring for the choice).

    A deterministic family is taken when its albedo PSNR beats the region's linear trend alone by ``gain_db``;
    otherwise a region whose spread along its main colour axis is below ``flat`` (linear) is uniform, and
    any other gets the stochastic family whose statistics match best.
    """
    Y = s.Y
    mean = Y.mean(0)
    psnr_uniform = _albedo_psnr(mean.expand_as(Y), Y)
    f_max = min(1.0 / (6 * s.texel), 32.0)  # a period of at least 6 texels and 1/32 of the asset
    stripes = _deterministic_fit("stripes", s, f_max, steps)
    candidates = {"stripes": stripes, "plaid": _deterministic_fit("plaid", s, f_max, steps, first=stripes),
                  "wood": _deterministic_fit("wood", s, f_max, steps)}
    for name, mat in candidates.items():
        pred = torch.as_tensor(mat.evaluate(s.p)[:, :4], dtype=torch.float64)
        mat.scores = {"psnr": _albedo_psnr(pred, Y), "psnr_uniform": psnr_uniform}
    # plaid (two stripe sets) only where it explains clearly more than one set, and one set is not already exact
    one, two = candidates["stripes"].scores["psnr"], candidates["plaid"].scores["psnr"]
    if two < one + gain_db or one >= 45.0:
        del candidates["plaid"]
    trend, _ = _solve(s.p, s.p[:, :0], Y)  # (4, 4): mean and linear trend
    smooth = _design(s.p, s.p[:, :0]) @ trend
    det = max(candidates.values(), key=lambda m: m.scores["psnr"])
    if det.scores["psnr"] - _albedo_psnr(smooth, Y) >= gain_db:  # the pattern, not the trend, must earn it
        return det
    centred = Y - smooth
    evals, evecs = torch.linalg.eigh(centred.T @ centred / len(Y))
    axis, spread = evecs[:, -1], float(evals[-1].clamp_min(0).sqrt())
    if spread < flat:
        mat = ProceduralMaterial("uniform", {}, trend.numpy(), float(s.m.mean()))
        pred = torch.as_tensor(mat.evaluate(s.p)[:, :4], dtype=torch.float64)
        mat.scores = {"psnr": _albedo_psnr(pred, Y), "psnr_uniform": psnr_uniform, "spread": spread}
        return mat
    stats = _Variogram(s.p, s.texel, seed=seed)
    y = centred @ axis / spread
    target = stats(y)
    scales = torch.as_tensor(np.geomspace(1.0, max(1.0 / (3 * s.texel), 2.0), 24), dtype=torch.float64)
    best = None
    for fam in STOCHASTIC:
        if fam == "brushed" and float(s.m.mean()) < 0.5:
            continue  # brushed metal is for metal
        mat, err = _stochastic_fit(fam, s, stats, target, axis, spread, trend, scales, seed)
        # a family other than plain noise must match clearly better to be taken
        if best is None or err < best[1] * (0.8 if best[0].family == "noise" else 1.0):
            best = (mat, err)
    mat, err = best
    pred = torch.as_tensor(mat.evaluate(s.p)[:, :4], dtype=torch.float64)
    mat.scores = {"psnr": _albedo_psnr(pred, Y), "psnr_uniform": psnr_uniform, "stats_error": err,
                  "spread": spread}
    return mat


# ---------------------------------------------------------------------------------------------- regions
def _texels(mesh, size: int) -> tuple[Tensor, Tensor]:
    """Face id (S, S) under each texel centre of ``mesh``'s atlas (-1: none), and the surface points (M, 3)
    of the covered texels (``face >= 0``, row-major order)."""
    from ..bake.texture import rasterize_uv

    face, bary = rasterize_uv(torch.as_tensor(mesh.uvs), torch.as_tensor(mesh.faces), size)
    covered = face >= 0
    corners = torch.as_tensor(mesh.positions, dtype=torch.float64)[torch.as_tensor(mesh.faces)[face[covered]]]
    return face, (corners * bary[covered].double()[..., None]).sum(-2)


def _sample_texture(img: np.ndarray, size: int) -> np.ndarray:
    """``img`` (H, W, C) uint8 resampled to (size, size, C) (bilinear up, area-filtered down)."""
    from PIL import Image

    if img.shape[0] == size and img.shape[1] == size:
        return img.copy()
    return np.array(Image.fromarray(img).resize((size, size), Image.BILINEAR if size > img.shape[0] else Image.LANCZOS))


def face_regions(faces: np.ndarray, positions: np.ndarray, face_values: np.ndarray, face_area: np.ndarray,
                 k: int, min_fraction: float, reach: float = 0.08, merge: float = 0.02, seed: int = 0) -> np.ndarray:
    """(F,) region label per face (-1: too small a region), regions numbered by area.

    The faces' values (F, C) are first blurred in space (a Gaussian of ``reach`` times the mesh's extent), so
    a patterned or mottled material stays one region; then k-means (``k`` at most), and clusters whose centres
    are closer than ``merge``, or whose values form one mode (``_one_mode``), are joined.
    """
    from scipy.cluster.vq import kmeans2

    from scipy.ndimage import gaussian_filter, map_coordinates

    # blur in space: splat the faces' area-weighted values on a grid, Gaussian blur, read back at the faces
    centroid = positions[faces].mean(1)
    lo, extent = positions.min(0), float(np.ptp(positions, axis=0).max()) or 1.0
    grid = 48
    cell = (centroid - lo) / extent * (grid - 1)
    idx = np.clip(np.round(cell).astype(int), 0, grid - 1)
    flat = np.ravel_multi_index(idx.T, (grid,) * 3)
    n = len(faces)
    chans = [face_values[:, c] * face_area for c in range(face_values.shape[1])] + [face_area]
    blurred = [gaussian_filter(np.bincount(flat, ch, grid ** 3).reshape((grid,) * 3), reach * grid, mode="constant")
               for ch in chans]
    v = np.stack([map_coordinates(b, cell.T, order=1) for b in blurred[:-1]], 1)
    w = map_coordinates(blurred[-1], cell.T, order=1)
    x = v / np.maximum(w, 1e-30)[:, None]
    k = max(1, min(k, n))
    centres, labels = kmeans2(x, k, iter=30, minit="++", seed=seed)
    # join clusters that are one material: centres closer than `merge`, or no dip in the values between them
    # (a mottled material's blurred values are one spread-out mode that k-means cut; two materials, two modes)
    while True:
        ids = np.unique(labels)
        cen = {i: np.average(x[labels == i], 0, face_area[labels == i]) for i in ids}
        pairs = sorted(((float(np.linalg.norm(cen[i] - cen[j])), i, j) for i in ids for j in ids if i < j))
        join = next(((i, j) for d, i, j in pairs if d < merge or _one_mode(x, labels, face_area, i, j, cen)), None)
        if join is None:
            break
        labels[labels == join[1]] = join[0]
    log.debug("regions: centres %s", np.round(np.stack([x[labels == i].mean(0) for i in np.unique(labels)]), 3))
    labels = _drop_transitions(x, labels, face_area, merge)
    frac = np.bincount(labels, weights=face_area, minlength=k) / face_area.sum()
    order = np.argsort(-frac)  # regions numbered by size
    remap = np.full(k, -1)
    keep = [c for c in order if frac[c] >= min_fraction]
    remap[keep] = np.arange(len(keep))
    return remap[labels]


def _region_features(values: np.ndarray) -> np.ndarray:
    """(F, 4) linear RGB + roughness -> the values regions are told apart by: chromaticity first (baked-in
    shading darkens a material without changing its chromaticity), log luminance and roughness less."""
    total = values[:, :3].sum(1, keepdims=True) + 1e-3
    lum = np.log(values[:, :3] @ np.array([0.2126, 0.7152, 0.0722]) + 0.01)
    return np.concatenate([values[:, :2] / total, 0.05 * lum[:, None], 0.2 * values[:, 3:4]], 1)


def _one_mode(x: np.ndarray, labels: np.ndarray, area: np.ndarray, i: int, j: int, cen: dict) -> bool:
    """Whether clusters i and j of the values x (F, C) form one mode: along the line joining their centres the
    area-weighted histogram has no dip below half its lower peak between them."""
    sel = (labels == i) | (labels == j)
    d = cen[j] - cen[i]
    t = (x[sel] - cen[i]) @ d / max(float(d @ d), 1e-20)  # 0 at i's centre, 1 at j's
    hist, _ = np.histogram(t, bins=24, range=(-0.5, 1.5), weights=area[sel])
    hist = np.convolve(hist, [0.25, 0.5, 0.25], mode="same")
    a, b = int(hist[:12].argmax()), 12 + int(hist[12:].argmax())
    return bool(hist[a:b + 1].min() > 0.5 * min(hist[a], hist[b]))


def _drop_transitions(x: np.ndarray, labels: np.ndarray, area: np.ndarray, tol: float) -> np.ndarray:
    """Relabel the clusters that are only the blur between two others (their centre on the segment joining two
    other centres, within ``tol``): each face goes to the nearer of the two."""
    while True:
        ids = np.unique(labels)
        if len(ids) < 3:
            return labels
        cen = {i: np.average(x[labels == i], 0, area[labels == i]) for i in ids}
        size = {i: area[labels == i].sum() for i in ids}
        found = None
        for m in sorted(ids, key=size.get):
            for i in ids:
                for j in ids:
                    if len({i, j, m}) < 3 or i > j:
                        continue
                    d = cen[j] - cen[i]
                    t = float((cen[m] - cen[i]) @ d / max(d @ d, 1e-20))
                    if 0.05 < t < 0.95 and np.linalg.norm(cen[i] + t * d - cen[m]) < tol:
                        found = (m, i, j)
                        break
                if found:
                    break
            if found:
                break
        if found is None:
            return labels
        m, i, j = found
        sel = labels == m
        closer_i = np.linalg.norm(x[sel] - cen[i], axis=1) < np.linalg.norm(x[sel] - cen[j], axis=1)
        labels[sel] = np.where(closer_i, i, j)


@dataclass
class ProceduralFit:
    """materials: one per region; face_region (F,) int (-1: not procedural); centre (3,), scale: the
    normalisation p = (x - centre) / scale; per-region figures in ``materials[i].scores``."""

    materials: list[ProceduralMaterial]
    face_region: np.ndarray
    centre: np.ndarray
    scale: float

    def to_json(self) -> dict:
        packed = base64.b64encode((self.face_region + 1).astype(np.uint8).tobytes()).decode()
        return {"version": 1, "space": "asset frame: p = (x - centre) / scale",
                "centre": self.centre.round(6).tolist(), "scale": round(self.scale, 6),
                "faces": len(self.face_region), "face_region_uint8_base64_plus1": packed,
                "regions": [m.to_dict() for m in self.materials]}

    @classmethod
    def from_json(cls, d: dict) -> "ProceduralFit":
        labels = np.frombuffer(base64.b64decode(d["face_region_uint8_base64_plus1"]), np.uint8).astype(np.int64) - 1
        if len(labels) != d["faces"]:
            raise ValueError("materials.json: face labels do not match its face count")
        return cls([ProceduralMaterial.from_dict(m) for m in d["regions"]], labels,
                   np.asarray(d["centre"], np.float64), float(d["scale"]))

    def summary(self) -> list[dict]:
        """One row per region: its family and scores (for metrics.json and the report)."""
        return [{"region": i, "family": m.family, **{k: round(v, 3) if isinstance(v, float) else v
                                                      for k, v in m.scores.items()}}
                for i, m in enumerate(self.materials)]


def fit_procedural(mesh, regions: int = 4, min_fraction: float = 0.05, samples: int = 4096, seed: int = 0
                   ) -> ProceduralFit:
    """Fit procedural materials to the regions of a PBR ``TexturedMesh`` (base colour = albedo, ORM texture).

    Regions come from ``face_regions`` over the faces' mean albedo and roughness (``regions`` at most, each at
    least ``min_fraction`` of the area); each region is fitted on up to ``samples`` of its texels.
    """
    size = mesh.base_color.shape[0]
    face, x = _texels(mesh, size)
    covered = face >= 0
    albedo = srgb_to_linear(torch.as_tensor(mesh.base_color, dtype=torch.float64) / 255)
    rm = torch.as_tensor(_orm(mesh, size)[..., 1:], dtype=torch.float64) / 255
    values = torch.cat([albedo, rm], -1)[covered]  # (T, 5): linear RGB, roughness, metallic
    fid = face[covered].numpy()
    F = len(mesh.faces)
    count = np.bincount(fid, minlength=F)
    face_values = np.stack([np.bincount(fid, weights=values[:, c].numpy(), minlength=F) for c in range(4)], 1)
    missing = count == 0  # faces smaller than a texel: the texel nearest their first corner's uv
    face_values = face_values / np.maximum(count, 1)[:, None]
    if missing.any():
        uv = mesh.uvs[mesh.faces[missing, 0]]
        col = np.clip((uv[:, 0] * size).astype(int), 0, size - 1)
        row = np.clip((uv[:, 1] * size).astype(int), 0, size - 1)
        face_values[missing] = torch.cat([albedo, rm], -1)[row, col, :4].numpy()
    tri = mesh.positions[mesh.faces]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1) + 1e-20
    labels = face_regions(mesh.faces, mesh.positions, _region_features(face_values), area, regions, min_fraction,
                          seed=seed)
    lo, hi = mesh.positions.min(0), mesh.positions.max(0)
    centre, scale = (lo + hi) / 2, float((hi - lo).max())
    p_all = (x - torch.as_tensor(centre)) / scale
    texel = math.sqrt(area.sum() / max(int(covered.sum()), 1)) / scale
    g = np.random.default_rng(seed)
    mats = []
    region_of_texel = labels[fid]
    for r in range(int(labels.max()) + 1):
        idx = np.nonzero(region_of_texel == r)[0]
        idx = g.choice(idx, min(samples, len(idx)), replace=False)
        s = RegionSamples(p_all[idx], values[idx, :4], values[idx, 4], texel)
        mat = fit_region(s, seed=seed)
        mat.scores["area_fraction"] = float(area[labels == r].sum() / area.sum())
        mat.scores["mean_albedo_srgb"] = [round(float(v), 3) for v in linear_to_srgb(s.Y[:, :3].mean(0).clamp(0, 1))]
        mat.scores["accepted"] = bool(mat.scores["stats_error"] <= ACCEPT_STATS if "stats_error" in mat.scores
                                      else mat.scores["psnr"] >= ACCEPT_PSNR)
        log.info("procedural region %d (%.0f%% of the area): %s, albedo PSNR %.1f dB (mean colour %.1f dB), %s", r,
                 100 * mat.scores["area_fraction"], mat.family, mat.scores["psnr"], mat.scores["psnr_uniform"],
                 "used on export" if mat.scores["accepted"] else "too far from the texture: kept the texture")
        mats.append(mat)
    return ProceduralFit(mats, labels, centre, scale)


def _orm(mesh, size: int) -> np.ndarray:
    """``mesh``'s ORM texture at ``size`` (``surface.DEFAULT_ORM`` when it has none, as the shader reads it)."""
    if mesh.orm is None:
        return np.full((size, size, 3), DEFAULT_ORM, np.uint8)
    return _sample_texture(mesh.orm, size)


def regenerate(mesh, fit: ProceduralFit, size: int, accepted_only: bool = True):
    """``mesh`` with base colour and ORM at ``size`` x ``size``: the procedural regions evaluated at each
    texel's surface point (only those close enough to their texture, ``scores["accepted"]``, unless
    ``accepted_only`` is False), the other texels resampled from the stored textures, gutters filled as the
    bake does."""
    from ..bake.texture import dilate

    if len(fit.face_region) != len(mesh.faces):
        raise ValueError(f"materials.json labels {len(fit.face_region)} faces, the mesh has {len(mesh.faces)}")
    base = torch.as_tensor(_sample_texture(mesh.base_color, size), dtype=torch.float32) / 255
    orm = torch.as_tensor(_orm(mesh, size), dtype=torch.float32) / 255
    face, x = _texels(mesh, size)
    covered = face >= 0
    region = torch.as_tensor(fit.face_region)[face[covered]]  # (M,) per covered texel
    p = (x - torch.as_tensor(fit.centre)) / fit.scale
    base_c, orm_c = base[covered], orm[covered]
    for r, mat in enumerate(fit.materials):
        sel = region == r
        if not bool(sel.any()) or (accepted_only and not mat.scores.get("accepted", True)):
            continue
        y = torch.as_tensor(mat.evaluate(p[sel]))
        base_c[sel] = linear_to_srgb(y[:, :3])
        orm_c[sel] = torch.stack([torch.ones(len(y)), y[:, 3], y[:, 4]], -1)
    base[covered], orm[covered] = base_c, orm_c
    base = dilate(base, covered, 4)
    orm = dilate(orm, covered, 4)
    u8 = lambda t: (t.clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)  # noqa: E731
    normal = None if mesh.normal_map is None else _sample_texture(mesh.normal_map, size)
    return mesh.with_(base_color=u8(base), orm=u8(orm), normal_map=normal)


def region_map(mesh, fit: ProceduralFit, size: int = 256) -> np.ndarray:
    """(size, size, 3) uint8: the atlas coloured by region (grey: not procedural), for the report."""
    palette = np.array([[230, 97, 1], [94, 60, 153], [27, 158, 119], [231, 41, 138], [102, 166, 30],
                        [230, 171, 2], [166, 118, 29], [31, 120, 180]], np.uint8)
    from ..bake.texture import rasterize_uv

    face, _ = rasterize_uv(torch.as_tensor(mesh.uvs), torch.as_tensor(mesh.faces), size)
    out = np.full((size, size, 3), 255, np.uint8)
    f = face.numpy()
    lab = np.where(f >= 0, fit.face_region[np.maximum(f, 0)], -2)
    out[lab == -1] = 160
    for r in range(len(fit.materials)):
        out[lab == r] = palette[r % len(palette)]
    return out


def resize_textures(mesh, materials_json, size: int):
    """``mesh`` (read from an asset folder) with its textures at ``size``: regenerated from the folder's
    ``materials_json`` (a path) where it has procedural regions, else resampled; one-line errors for a bad size
    or a materials.json that is not this mesh's."""
    import json
    from pathlib import Path

    from ..core.errors import InputError

    if not 16 <= size <= 16384:
        raise InputError(None, f"--texture-size must be between 16 and 16384 texels, got {size}")
    path = Path(materials_json)
    if not path.is_file():
        log.info("no procedural materials (%s): the textures are resampled to %d", path.name, size)
        return mesh.with_(base_color=_sample_texture(mesh.base_color, size),
                          orm=None if mesh.orm is None else _sample_texture(mesh.orm, size),
                          normal_map=None if mesh.normal_map is None else _sample_texture(mesh.normal_map, size))
    try:
        fit = ProceduralFit.from_json(json.loads(path.read_text()))
        out = regenerate(mesh, fit, size)
    except (ValueError, KeyError, json.JSONDecodeError) as e:
        raise InputError(path, f"cannot regenerate the procedural materials: {e}") from None
    used = sum(bool(m.scores.get("accepted", True)) for m in fit.materials)
    log.info("regenerated %d of %d procedural regions at %d texels (the others are too far from their texture: "
             "resampled)", used, len(fit.materials), size)
    return out
