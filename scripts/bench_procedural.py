#!/usr/bin/env python
"""How close procedural materials come to real textures (recon.materials.procedural).

    python scripts/bench_procedural.py --avocado             # the avocado sample's own albedo / roughness maps
    python scripts/bench_procedural.py --asset out/lego/asset  # a PBR asset folder fitted by recon

For each region: its family, share of the area, the albedo PSNR (sRGB) of the procedural material against
the texture over the region's texels beside that of the region's mean colour, and for the stochastic families
the statistics error (variogram + histogram, 0 = same), and whether export regenerates it (close enough to
the texture: recon.materials.procedural.ACCEPT_PSNR / ACCEPT_STATS). Also the fit time and the time to
regenerate the textures at twice the size. `--out DIR` writes the region map and every region's procedural
albedo as PNGs.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def avocado_mesh(folder: Path):
    """The avocado glTF as a TexturedMesh: its own base colour, roughness/metallic (as ORM) and normal maps."""
    import trimesh
    from PIL import Image

    from recon.bake.textured_mesh import TexturedMesh

    mesh = trimesh.load(next(folder.glob("*.gltf")), force="mesh", process=False)
    tex = folder / "textures"
    maps = {k: np.asarray(Image.open(next(tex.glob(f"*_{k}.png"))).convert("RGB"))
            for k in ("baseColor", "roughnessMetallic")}
    uv = np.asarray(mesh.visual.uv, np.float32) * [1, -1] + [0, 1]  # trimesh's v up -> glTF's v down
    orm = maps["roughnessMetallic"].copy()
    orm[..., 0] = 255
    return TexturedMesh(np.asarray(mesh.vertices, np.float32), np.asarray(mesh.vertex_normals, np.float32),
                        uv.astype(np.float32), np.asarray(mesh.faces, np.int64), maps["baseColor"], orm=orm)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--avocado", action="store_true", help="../shared/data/meshes/avocado's own textures")
    src.add_argument("--asset", type=Path, help="a PBR asset folder (its .glb)")
    ap.add_argument("--regions", type=int, default=4)
    ap.add_argument("--out", type=Path, help="write regions.png and procedural_albedo.png here")
    args = ap.parse_args()

    from recon.bake import read_mesh
    from recon.materials.procedural import fit_procedural, regenerate, region_map

    if args.avocado:
        mesh, name = avocado_mesh(ROOT.parent / "shared/data/meshes/avocado"), "avocado (its own maps)"
    else:
        mesh, name = read_mesh(next(args.asset.glob("*.glb"))), str(args.asset)
        if mesh.material != "pbr":
            sys.exit(f"{args.asset}: a radiance asset (fit it with --materials pbr)")
    t0 = time.perf_counter()
    fit = fit_procedural(mesh, args.regions)
    fit_s = time.perf_counter() - t0
    size = mesh.base_color.shape[0]
    t0 = time.perf_counter()
    regenerate(mesh, fit, 2 * size)  # what `recon export --texture-size` does
    regen = {2 * size: round(time.perf_counter() - t0, 2)}
    print(f"{name}: {len(mesh.faces)} triangles, {size}² textures, {len(fit.materials)} regions, "
          f"fit {fit_s:.1f} s; regenerated at " + ", ".join(f"{s}² in {t} s" for s, t in regen.items()))
    print(f"{'region':>6} {'family':>8} {'area':>6} {'PSNR':>7} {'mean-colour PSNR':>17} {'stats error':>12} "
          f"{'used on export':>15}")
    for r in fit.summary():
        stats = f"{r['stats_error']:.3f}" if "stats_error" in r else "-"
        print(f"{r['region']:>6} {r['family']:>8} {100 * r['area_fraction']:5.1f}% {r['psnr']:6.2f} "
              f"{r['psnr_uniform']:17.2f} {stats:>12} {'yes' if r['accepted'] else 'no':>15}")
    if args.out:
        from PIL import Image

        args.out.mkdir(parents=True, exist_ok=True)
        Image.fromarray(region_map(mesh, fit, min(size, 1024))).save(args.out / "regions.png")
        every = regenerate(mesh, fit, size, accepted_only=False).base_color
        Image.fromarray(every).save(args.out / "procedural_albedo.png")
        Image.fromarray(mesh.base_color).save(args.out / "albedo.png")
        (args.out / "materials.json").write_text(json.dumps(fit.to_json(), indent=1))


if __name__ == "__main__":
    main()
