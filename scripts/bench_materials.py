"""Relighting benchmark with independent truth: the avocado (real glTF PBR textures) path traced by
Mitsuba 3 under environment light A (training and test views) and light B (test views).

    python scripts/bench_materials.py [--geometry truth|fit] [--light-a city] [--light-b sunset] [--out out/bench_materials]

1. Mitsuba renders ``--train`` views under A (the capture: photos over white, masks from coverage,
   cameras) and ``--test`` other views under A and under B, with the albedo (aov) of the test views.
2. recon makes the asset from the capture alone, never from light B:
   ``--geometry fit``: the whole pipeline, ``recon fit --data <capture> --preset object-fast
   --materials radiance`` (geometry, UVs, radiance), then the materials and light fitted on that asset
   as ``--materials pbr`` does;
   ``--geometry truth``: the avocado's own mesh and UVs, the radiance texture fitted to the photos
   (``recon.bake.refine_base_color``), then ``recon.materials.fit_materials`` (isolates the material fit).
3. The test views, figures over the object's pixels (Mitsuba coverage >= 0.99), sRGB:
   - relit: the PBR asset under B (recon's split-sum renderer) vs Mitsuba's B renders, raw and with the
     albedo's per-channel scale applied (the albedo-light scale is unobservable; NeRFactor's protocol);
   - radiance: the radiance asset (unlit, the same capture) vs the same B renders;
   - albedo: the asset's base colour vs Mitsuba's albedo, after a per-channel scale;
   - roughness: mean absolute error against the avocado's roughness map;
   - ceiling: the avocado's true materials rendered by recon under B vs Mitsuba (what the renderer
     approximation alone costs: split-sum, no shadows or inter-reflection).
Writes ``<out>/results.json`` and a picture ``<out>/relit.png``, two test views, each: Mitsuba under B |
recon's PBR asset under B | the radiance asset | Mitsuba's albedo | recon's albedo (scaled).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
ROOT = Path(__file__).resolve().parents[1]
AVOCADO = ROOT.parent / "shared" / "data" / "meshes" / "avocado"


def _truth(args, out: Path):
    """Mitsuba renders (cached in out/truth.npz) and the recon cameras they were made from."""
    import mitsuba_truth as mt

    from recon.render.environment import resolve_environment
    from recon.synth import load_mesh
    from recon.synth.cameras import train_test_cameras

    gt = load_mesh(AVOCADO / "avocado.gltf")
    cams = train_test_cameras(args.train, args.test, gt.center, gt.radius, args.size, seed=args.seed)
    cache = out / f"truth_{args.light_a}_{args.light_b}_{args.train}_{args.test}_{args.size}_{args.spp}.npz"
    if not cache.is_file():
        mesh, maps = mt.load_gltf_pbr(AVOCADO)
        t0 = time.perf_counter()
        a = mt.render(mesh, maps, cams, resolve_environment(args.light_a), out / "mitsuba", args.spp)
        b = mt.render(mesh, maps, cams[np.arange(args.train, args.train + args.test)],
                      resolve_environment(args.light_b), out / "mitsuba", args.spp, seed=10_000)
        print(f"Mitsuba: {len(a) + len(b)} views in {time.perf_counter() - t0:.0f} s")
        np.savez_compressed(cache, rgb_a=np.stack([v["rgb"] for v in a]), alpha=np.stack([v["alpha"] for v in a]),
                            rgb_b=np.stack([v["rgb"] for v in b]), albedo_b=np.stack([v["albedo"] for v in b]))
    return gt, cams, dict(np.load(cache))


def _write_capture(cams, truth, folder: Path, args):
    """The training capture: Mitsuba's A renders, sRGB over white, masks from coverage."""
    from recon.capture.capture_writer import write_capture_folder
    from recon.capture.normalize import MARGIN, similarity
    from recon.core.types import Capture, FrameInfo
    from recon.render.colorspace import linear_to_srgb
    from recon.synth import load_mesh

    gt = load_mesh(AVOCADO / "avocado.gltf")
    a = truth["alpha"][..., None]
    photos = linear_to_srgb(np.clip(truth["rgb_a"], 0, 1)) * a + (1 - a)
    n = len(photos)
    frames = [FrameInfo(name=f"r_{i:03d}", source="mitsuba", index=i, split="train" if i < args.train else "test")
              for i in range(n)]
    cap = Capture(images=[(p * 255 + 0.5).astype(np.uint8) for p in photos], cameras=cams, frames=frames,
                  masks=[np.where(x >= 0.5, 255, 0).astype(np.uint8) for x in truth["alpha"]],
                  meta={"source": "mitsuba avocado", "source_kind": "synthetic", "up": [0.0, 1.0, 0.0],
                        "up_method": "synthetic (the mesh's up axis)", "light_a": args.light_a,
                        "bench_out": str(args.out)})
    cap = cap.normalized(similarity(gt.center, gt.radius * MARGIN))
    if folder.exists():
        import shutil

        shutil.rmtree(folder)
    write_capture_folder(cap, folder)
    return cap


def _truth_geometry_asset(cap, gt_path: Path, texture_size: int, mcfg):
    """Radiance asset on the avocado's own mesh and UVs, then its fitted materials and light."""
    import trimesh

    from recon.bake.texture import vertex_tangents
    from recon.bake.texture_refine import refine_base_color
    from recon.bake.textured_mesh import TexturedMesh
    from recon.materials import fit_materials

    tm = trimesh.load(gt_path, force="mesh", process=False)
    uv = np.asarray(tm.visual.uv, np.float32) * [1, -1] + [0, 1]  # trimesh v up -> glTF v down
    pos, nrm, faces = np.asarray(tm.vertices, np.float32), np.asarray(tm.vertex_normals, np.float32), np.asarray(tm.faces)
    grey = np.full((texture_size, texture_size, 3), 128, np.uint8)
    mesh = TexturedMesh(pos, nrm, uv.astype(np.float32), faces, grey,
                        tangents=vertex_tangents(pos, nrm, uv, faces).astype(np.float32), material="radiance")
    N = np.asarray(cap.normalization, np.float64)
    mesh, stats = refine_base_color(mesh, cap, N, steps=600, lr=0.03)
    t0 = time.perf_counter()
    fit = fit_materials(mesh, cap, N, mcfg)
    pbr = mesh.with_(base_color=fit.albedo, orm=fit.orm, material="pbr", normal_map=fit.normal_map)
    _light_picture(fit.environment, cap, Path(cap.meta.get("bench_out", ".")))
    return mesh, pbr, {**fit.stats, **stats, "materials_seconds": round(time.perf_counter() - t0, 1)}


def _light_picture(env: np.ndarray, cap, out: Path) -> None:
    """light.png: the fitted light above the true one (both 16 x 32, scaled to the same mean, sRGB)."""
    import torch.nn.functional as F
    from PIL import Image

    from recon.render.colorspace import linear_to_srgb
    from recon.render.environment import downsample, load_environment, resolve_environment

    true = downsample(torch.as_tensor(load_environment(resolve_environment(cap.meta["light_a"]))), env.shape[0]).numpy()
    pics = [e / e.mean() * 0.3 for e in (env, true)]
    big = [F.interpolate(torch.as_tensor(p).permute(2, 0, 1)[None], scale_factor=8, mode="nearest")[0].permute(1, 2, 0).numpy()
           for p in pics]
    Image.fromarray((np.clip(linear_to_srgb(np.concatenate(big, 0)), 0, 1) * 255).astype(np.uint8)).save(out / "light.png")


def _fitted_asset(capture_dir: Path, cap, out: Path, args, mcfg):
    """The whole pipeline on the capture (``recon fit --materials radiance``), then the materials and light
    fitted on its baked asset as ``recon fit --materials pbr`` does (``bake_asset``), so one fit gives both
    the radiance and the PBR asset; both returned in the capture's (the avocado's) frame."""
    from recon.bake import read_mesh
    from recon.materials import fit_materials

    job = out / "fit"
    cmd = [sys.executable, "-m", "recon", "fit", "--data", str(capture_dir), "--out", str(job), "--preset",
           args.preset, "--materials", "radiance", "--overwrite", "--seed", str(args.seed)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    seconds = time.perf_counter() - t0
    metrics = json.loads((job / "asset" / "metrics.json").read_text())
    A = np.asarray(metrics["frame"]["asset_from_capture"])
    radiance = read_mesh(next((job / "asset").glob("*.glb"))).transformed(np.linalg.inv(A))
    t0 = time.perf_counter()
    fit = fit_materials(radiance, cap, np.asarray(cap.normalization), mcfg, to_light=A[:3, :3])
    pbr = radiance.with_(base_color=fit.albedo, orm=fit.orm, material="pbr",
                         normal_map=fit.normal_map if fit.normal_map is not None else radiance.normal_map)
    _light_picture(fit.environment, cap, out)
    stats = {**fit.stats, "materials_seconds": round(time.perf_counter() - t0, 1), "recon_fit_seconds": round(seconds, 1),
             **{k: metrics[k] for k in ("triangles", "psnr_heldout_baked", "mask_iou_heldout_baked", "chamfer")
                if k in metrics}}
    return radiance, pbr, stats, A


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--geometry", choices=("truth", "fit"), default="truth")
    ap.add_argument("--light-a", default="city", help="training light (an installed map name or an .exr/.hdr)")
    ap.add_argument("--light-b", default="sunset", help="held-out light")
    ap.add_argument("--train", type=int, default=40)
    ap.add_argument("--test", type=int, default=8)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--spp", type=int, default=128)
    ap.add_argument("--texture-size", type=int, default=512)
    ap.add_argument("--preset", default="object-fast")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="materials config override (e.g. steps=300), repeatable")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "bench_materials")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    from recon.bake.preview import render
    from recon.core.config import MaterialsConfig
    from recon.materials import PbrShader, per_channel_scale
    from recon.render.colorspace import linear_to_srgb, srgb_to_linear
    from recon.render.environment import LightProbe, load_environment, resolve_environment
    from recon.render.mesh_render import render_views
    from recon.bake.preview import synth_mesh

    gt, cams, truth = _truth(args, args.out)
    cap = _write_capture(cams, truth, args.out / "capture", args)
    test = np.arange(args.train, args.train + args.test)
    mcfg = MaterialsConfig(**{k: v for k, v in (o.split("=", 1) for o in args.overrides)})
    t0 = time.perf_counter()
    if args.geometry == "truth":
        radiance, pbr, stats = _truth_geometry_asset(cap, AVOCADO / "avocado.gltf", args.texture_size, mcfg)
    else:
        radiance, pbr, stats, _ = _fitted_asset(args.out / "capture", cap, args.out, args, mcfg)
    seconds = time.perf_counter() - t0

    probe_b = LightProbe.from_map(torch.as_tensor(load_environment(resolve_environment(args.light_b))), 32)
    test_cams = cams[test]
    mask = truth["alpha"][test] >= 0.99  # (T, H, W) the object's fully covered pixels
    mitsuba_b = np.clip(linear_to_srgb(np.clip(truth["rgb_b"], 0, None)), 0, 1)

    def shaded(mesh, shader_of):
        return np.stack([v["rgb"] for v in render_views(synth_mesh(mesh), test_cams, shader=shader_of(mesh))])

    def psnr(img):
        return float(-10 * np.log10(((img - mitsuba_b) ** 2)[mask].mean()))

    # albedo: the asset's base colour (unlit) vs Mitsuba's, per-channel scale in linear light
    alb = np.stack([v["rgb"] for v in render(pbr, test_cams, lit=False)])
    alb_lin, gt_alb = srgb_to_linear(alb), np.clip(truth["albedo_b"], 0, 1)
    s = per_channel_scale(alb_lin, gt_alb, mask)
    def albedo_score(lin):
        sc = per_channel_scale(lin, gt_alb, mask)
        err = (np.clip(linear_to_srgb(lin * sc), 0, 1) - linear_to_srgb(gt_alb)) ** 2
        return float(-10 * np.log10(err[mask].mean()))

    albedo_psnr = albedo_score(alb_lin)
    scaled = pbr.with_(base_color=(np.clip(linear_to_srgb(srgb_to_linear(pbr.base_color / 255.0) * s), 0, 1) * 255 + 0.5
                                   ).astype(np.uint8))
    relit = shaded(pbr, lambda m: PbrShader(m, probe_b))  # light B is in the capture's frame, as the meshes
    relit_scaled = shaded(scaled, lambda m: PbrShader(m, probe_b))
    unlit = np.stack([v["rgb"] for v in render(radiance, test_cams, lit=False)])

    # roughness: render the roughness channel of the asset and of the avocado's own map
    def channel_shader(mesh, c):
        from recon.materials.surface import SurfaceAttributes
        from recon.render.texture_lookup import lookup_texture

        surf, orm = SurfaceAttributes(mesh), torch.as_tensor(mesh.orm).float() / 255
        return lambda f, b, v: lookup_texture(orm, surf.uv(f, b))[:, c:c + 1].expand(-1, 3)

    truth_mesh = _avocado_textured()
    rough = shaded(pbr, lambda m: channel_shader(m, 1))[..., 0]
    rough_gt = shaded(truth_mesh, lambda m: channel_shader(m, 1))[..., 0]
    ceiling = shaded(truth_mesh, lambda m: PbrShader(m, probe_b))

    res = {
        "geometry": args.geometry, "light_a": args.light_a, "light_b": args.light_b, "train_views": args.train,
        "test_views": args.test, "size": args.size, "spp": args.spp, "region": "object pixels (Mitsuba coverage >= 0.99), sRGB",
        "psnr_relit_b": psnr(relit), "psnr_relit_b_albedo_scaled": psnr(relit_scaled), "psnr_radiance_b": psnr(unlit),
        "materials_config": mcfg.model_dump(),
        "albedo_psnr_scaled": albedo_psnr, "albedo_scale": s.tolist(),
        "albedo_psnr_scaled_radiance_as_albedo": albedo_score(srgb_to_linear(unlit)),
        "roughness_mae": float(np.abs(rough - rough_gt)[mask].mean()), "psnr_ceiling_true_materials": psnr(ceiling),
        "seconds": round(seconds, 1), **stats}
    (args.out / "results.json").write_text(json.dumps(res, indent=2))
    from PIL import Image

    row = np.concatenate([np.concatenate([mitsuba_b[k], relit_scaled[k], unlit[k], linear_to_srgb(gt_alb[k]),
                                          linear_to_srgb(np.clip(alb_lin[k] * s, 0, 1))], 1) for k in range(2)], 0)
    Image.fromarray((np.clip(row, 0, 1) * 255 + 0.5).astype(np.uint8)).save(args.out / "relit.png")
    print(json.dumps(res, indent=2))


def _avocado_textured():
    """The avocado with its true textures as a TexturedMesh (for the ceiling and roughness truth)."""
    import trimesh
    from PIL import Image

    from recon.bake.texture import vertex_tangents
    from recon.bake.textured_mesh import TexturedMesh

    tm = trimesh.load(AVOCADO / "avocado.gltf", force="mesh", process=False)
    uv = (np.asarray(tm.visual.uv, np.float32) * [1, -1] + [0, 1]).astype(np.float32)
    pos, nrm, faces = np.asarray(tm.vertices, np.float32), np.asarray(tm.vertex_normals, np.float32), np.asarray(tm.faces)
    tex = AVOCADO / "textures"
    rm = np.asarray(Image.open(tex / "Avocado_roughnessMetallic.png").convert("RGB")).copy()
    rm[..., 0] = 255
    return TexturedMesh(pos, nrm, uv, faces, np.asarray(Image.open(tex / "Avocado_baseColor.png").convert("RGB")),
                        normal_map=np.asarray(Image.open(tex / "Avocado_normal.png").convert("RGB")), orm=rm,
                        tangents=vertex_tangents(pos, nrm, uv, faces).astype(np.float32))


if __name__ == "__main__":
    main()
