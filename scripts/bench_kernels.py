"""Time the compiled CPU kernels against their PyTorch twins (65,536 samples; a 50k-face mesh at 256²).

    .venv/bin/python scripts/bench_kernels.py [--repeats 15] [--threads N] [--clock wall|cpu] [--backend cpp|cuda]

For each op: forward, and forward + backward (hash grid: grad to the table;
composite: grads to alphas and values; rasterize: grads of the barycentrics and
depth to the vertices; ray marching has no backward), the median
of ``--repeats`` back-to-back runs after warm-up (the min too), for the torch
twin and the compiled kernel, whose outputs and gradients are checked against
the twin. Prints a table, then,
last, one JSON line. The first run builds the extension (timed as ``build_s``).
Timings on a shared machine vary: compare runs made side by side.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import time

import torch

from recon.ops import HashGridSpec, composite_torch, hash_grid_encode_torch, march_rays_torch, rasterize_torch
from recon.ops.backend import get_kernel, set_backend

N_SAMPLES = 65_536
CLOCK = time.perf_counter  # --clock cpu: time.process_time (CPU time of all threads)


def _time_each(fns, repeats: int, device: torch.device) -> list[dict]:
    """Median and min milliseconds of each fn after two warm-up calls, the fns taking turns (one call each
    per round), so that a change in the machine's speed during the run weighs on all of them alike."""
    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    for fn in fns:
        fn()
        fn()
    sync()
    ts: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, t_fn in zip(fns, ts):
            t = CLOCK()
            fn()
            sync()
            t_fn.append((CLOCK() - t) * 1e3)
    return [{"median": statistics.median(t), "min": min(t)} for t in ts]


def _close(a, b, rtol: float, atol: float) -> bool:
    return all(torch.allclose(x, y, rtol=rtol, atol=atol) for x, y in zip(a, b))


def bench_hash_grid(dev, repeats):
    spec = HashGridSpec(n_levels=16, n_features=2, log2_hashmap_size=19)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(N_SAMPLES, 3, generator=g).to(dev)
    table = ((torch.rand(spec.n_params, 2, generator=g) * 2 - 1) * 1e-2).to(dev).requires_grad_()
    grad = torch.randn(N_SAMPLES, spec.out_dim, generator=g).to(dev)
    kernel = get_kernel("hash_grid_encode", dev)

    def fwd(f):
        return lambda: f(x, table, spec)

    def fwd_bwd(f):
        return lambda: torch.autograd.grad(f(x, table, spec), table, grad)[0]

    same = (_close([fwd(kernel)()], [fwd(hash_grid_encode_torch)()], 1e-5, 1e-6)
            and _close([fwd_bwd(kernel)()], [fwd_bwd(hash_grid_encode_torch)()], 1e-5, 1e-4))
    return {"op": "hash_grid", "size": f"{N_SAMPLES} pts, 16x2, 2^19", "same": same,
            "fwd": _time_each([fwd(f) for f in (hash_grid_encode_torch, kernel)], repeats, dev),
            "fwd_bwd": _time_each([fwd_bwd(f) for f in (hash_grid_encode_torch, kernel)], repeats, dev)}


def _march_inputs(n_rays: int, dev, seed: int = 0):
    """Rays from cameras on a sphere of radius 4 through a ball of occupied cells (a lego-like load)."""
    g = torch.Generator().manual_seed(seed)
    G, bound = 128, 1.0
    centres = (torch.stack(torch.meshgrid(*[torch.arange(G)] * 3, indexing="ij"), -1) + 0.5) / G * 2 - 1
    occupancy = centres.norm(dim=-1) < 0.6
    cam = torch.randn(n_rays, 3, generator=g)
    cam = cam / cam.norm(dim=-1, keepdim=True) * 4.0
    target = (torch.rand(n_rays, 3, generator=g) * 2 - 1) * 0.7
    dirs = target - cam
    dirs = dirs / dirs.norm(dim=-1, keepdim=True)
    # near/far: the ray's entry and exit of the cube, as a renderer passes them
    t1, t2 = (-bound - cam) / dirs, (bound - cam) / dirs
    near = torch.minimum(t1, t2).amax(-1).clamp(min=0.0)
    far = torch.maximum(t1, t2).amin(-1)
    step = 2 * math.sqrt(3) * bound / 1024
    args = [cam, dirs, near, far, occupancy]
    return [a.to(dev) for a in args] + [bound, step, 1024, torch.rand(n_rays, generator=g).to(dev)]


def bench_march(dev, repeats):
    kernel = get_kernel("march_rays", dev)
    probe = 1024
    n = kernel(*_march_inputs(probe, dev))[1].numel()
    n_rays = max(1, round(probe * N_SAMPLES / n))  # rays giving ~65,536 samples
    args = _march_inputs(n_rays, dev)
    ref, got = march_rays_torch(*args), kernel(*args)
    same = all(torch.equal(a, b) for a, b in zip(ref, got))
    return {"op": "march_rays", "size": f"{n_rays} rays -> {got[1].numel()} samples", "same": same,
            "fwd": _time_each([lambda f=f: f(*args) for f in (march_rays_torch, kernel)], repeats, dev),
            "fwd_bwd": None}


def bench_composite(dev, repeats):
    g = torch.Generator().manual_seed(0)
    R = 1024
    counts = torch.multinomial(torch.ones(R), N_SAMPLES, replacement=True, generator=g).bincount(minlength=R)
    packed = torch.stack([counts.cumsum(0) - counts, counts], 1).to(dev)
    alphas = (torch.rand(N_SAMPLES, generator=g) * 0.1).to(dev).requires_grad_()
    values = torch.rand(N_SAMPLES, 3, generator=g).to(dev).requires_grad_()
    grads = [torch.randn(R, 3, generator=g).to(dev), torch.randn(R, generator=g).to(dev)]
    kernel = get_kernel("composite", dev)

    def fwd(f):
        return lambda: f(alphas, values, packed)

    def fwd_bwd(f):
        def run():
            out, opacity, _ = f(alphas, values, packed)
            return torch.autograd.grad((out, opacity), (alphas, values), grads)
        return run

    same = (_close(fwd(kernel)(), fwd(composite_torch)(), 1e-5, 1e-6)
            and _close(fwd_bwd(kernel)(), fwd_bwd(composite_torch)(), 1e-4, 1e-5))
    return {"op": "composite", "size": f"{N_SAMPLES} samples, {R} rays, 3 ch", "same": same,
            "fwd": _time_each([fwd(f) for f in (composite_torch, kernel)], repeats, dev),
            "fwd_bwd": _time_each([fwd_bwd(f) for f in (composite_torch, kernel)], repeats, dev)}


def raster_mesh(n_faces: int, size: int, dev) -> tuple[torch.Tensor, torch.Tensor]:
    """A closed mesh of ``n_faces`` faces (a subdivided sphere with seeded bumps) in screen space, filling
    about half of a ``size``² view: (verts (V, 3) float32 (u, v, z), faces (F, 3) int64)."""
    import trimesh

    sub = max(0, math.ceil(math.log(n_faces / 20, 4)))
    m = trimesh.creation.icosphere(subdivisions=sub)
    faces = torch.as_tensor(m.faces[:n_faces], dtype=torch.long)
    v = torch.as_tensor(m.vertices, dtype=torch.float32)
    g = torch.Generator().manual_seed(0)
    v = v * (1 + 0.05 * torch.rand(len(v), 1, generator=g))
    z = v[:, 2] + 3.0
    f = 1.2 * size
    verts = torch.stack([f * v[:, 0] / z + size / 2, f * v[:, 1] / z + size / 2, z], 1)
    return verts.to(dev), faces.to(dev)


def bench_rasterize(dev, repeats, n_faces: int = 50_000, size: int = 256):
    verts, faces = raster_mesh(n_faces, size, dev)
    verts.requires_grad_()
    g = torch.Generator().manual_seed(1)
    grads = [torch.randn(size, size, 3, generator=g).to(dev), torch.randn(size, size, generator=g).to(dev)]
    kernel = get_kernel("rasterize", dev)

    def fwd(f):
        return lambda: f(verts, faces, size, size)

    def fwd_bwd(f):
        def run():
            _, bary, depth = f(verts, faces, size, size)
            return torch.autograd.grad((bary, depth), verts, grads)
        return run

    fk, ft = fwd(kernel)(), fwd(rasterize_torch)()
    same = (torch.equal(fk[0], ft[0]) and _close(fk[1:], ft[1:], 1e-6, 1e-6)
            and _close(fwd_bwd(kernel)(), fwd_bwd(rasterize_torch)(), 1e-4, 1e-4))
    cover = float((ft[0] >= 0).float().mean())
    return {"op": "rasterize", "size": f"{n_faces // 1000}k faces, {size}², {cover:.0%} covered", "same": same,
            "fwd": _time_each([fwd(f) for f in (rasterize_torch, kernel)], repeats, dev),
            "fwd_bwd": _time_each([fwd_bwd(f) for f in (rasterize_torch, kernel)], repeats, dev)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--threads", type=int, default=0, help="torch/OpenMP threads (0: torch's default)")
    ap.add_argument("--backend", choices=["cpp", "cuda"], default="cpp")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="cpu: CPU time of the process (all threads), steadier than wall time on a shared "
                         "machine; with --threads 1 it is the run time without the waits for a core")
    args = ap.parse_args()
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    if args.threads:
        torch.set_num_threads(args.threads)
    set_backend(args.backend)
    dev = torch.device("cuda" if args.backend == "cuda" else "cpu")
    t = time.perf_counter()
    get_kernel("composite", dev)  # builds (or loads the cached build of) the extension
    build_s = time.perf_counter() - t

    rows = [bench_hash_grid(dev, args.repeats), bench_march(dev, args.repeats),
            bench_composite(dev, args.repeats), bench_rasterize(dev, args.repeats)]
    print(f"device {dev}, {torch.get_num_threads()} threads, {args.clock} clock, {args.repeats} repeats "
          f"(median; min in brackets); build/load {build_s:.1f} s")
    be = args.backend
    print(f"{'op':<11} {'size':<32} {'pass':<8} {'torch ms':>18} {be + ' ms':>16} {'speedup':>15}  same")
    summary = {"device": str(dev), "threads": torch.get_num_threads(), "clock": args.clock, "repeats": args.repeats,
               "build_s": round(build_s, 2), "ops": {}}
    for r in rows:
        entry = {"same": r["same"]}
        for kind in ("fwd", "fwd_bwd"):
            if r[kind] is None:
                continue
            tt, tc = r[kind]
            sp, sp_min = tt["median"] / tc["median"], tt["min"] / tc["min"]
            print(f"{r['op']:<11} {r['size']:<32} {kind:<8} {tt['median']:>9.2f} [{tt['min']:>6.2f}]"
                  f" {tc['median']:>7.2f} [{tc['min']:>6.2f}] {sp:>6.1f}x [{sp_min:>5.1f}x]  {r['same']}")
            entry[kind] = {"torch_ms": round(tt["median"], 3), f"{be}_ms": round(tc["median"], 3),
                           "speedup": round(sp, 1), "torch_min_ms": round(tt["min"], 3),
                           f"{be}_min_ms": round(tc["min"], 3), "speedup_min": round(sp_min, 1)}
        summary["ops"][r["op"]] = entry
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
