"""Time recon.synth: mesh loading, rasterization and full view rendering, per view.

    .venv/bin/python scripts/bench_synth.py ../shared/data/meshes/bunny/bunny.ply --size 256 --threads 1
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from recon.ops.rasterize import rasterize
from recon.synth import load_mesh, render_views, train_test_cameras
from recon.render.mesh_raster import screen_vertices


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("meshes", nargs="+")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--views", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    for path in args.meshes:
        t = time.perf_counter()
        mesh = load_mesh(path)
        t_load = time.perf_counter() - t
        cams = train_test_cameras(args.views, 0, mesh.center, mesh.radius, args.size, seed=0)
        render_views(mesh, cams[:1])  # warm-up
        per_view, per_rast = [], []
        verts, faces = torch.as_tensor(mesh.vertices), torch.as_tensor(mesh.faces)
        big = cams.scaled(2)
        for i in range(len(cams)):
            t = time.perf_counter()
            render_views(mesh, cams[i])
            per_view.append(time.perf_counter() - t)
            scr = screen_vertices(verts, big, i)
            t = time.perf_counter()
            rasterize(scr, faces, 2 * args.size, 2 * args.size)
            per_rast.append(time.perf_counter() - t)
        ms = lambda xs: f"median {1e3 * statistics.median(xs):.0f} ms, min {1e3 * min(xs):.0f} ms"  # noqa: E731
        print(f"{path}: {len(mesh.faces)} faces, {mesh.appearance}; load {t_load:.2f} s; "
              f"{args.size}x{args.size}, {args.threads} thread(s): render per view {ms(per_view)}; "
              f"rasterize {2 * args.size}^2 {ms(per_rast)}")


if __name__ == "__main__":
    main()
