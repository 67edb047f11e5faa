"""Re-bake a finished ``recon fit`` job with materials settings to compare (an A/B of the materials fit on
the same field and mesh), at reduced bake settings so each variant takes a few minutes.

    python scripts/rebake_materials.py out/lego_pbr '{"mode": "pbr"}' '{"mode": "pbr", "smoothness_texels": 8}'

Each variant prints the PBR asset under its recovered light and the same bake's radiance asset on the
held-out views (``psnr_heldout_baked`` / ``psnr_heldout_baked_radiance``) and the materials fit's
training-pixel PSNRs. Bake: 256^3 extraction (depth fusion of 30 views for density fields), 512^2 textures,
no mesh refinement; written to <job>/rebake_<k>/.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


def main() -> None:
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    from recon.bake import bake_asset
    from recon.bake.depth_fusion import fused_surface
    from recon.capture import load_capture
    from recon.core.config import BakeConfig, MaterialsConfig
    from recon.fit.api import load_model

    job = Path(sys.argv[1])
    cap = load_capture(job / "capture")
    model = load_model(job)
    surface = model.field if model.field.kind == "sdf" else fused_surface(model, cap, 256, 1.0, max_views=30)
    cfg = BakeConfig(resolution=256, texture_size=512, refine_steps=0, turntable_frames=4, preview_size=96)
    for k, variant in enumerate(sys.argv[2:]):
        kw = json.loads(variant)
        m = bake_asset(surface, model.field.normalization, job / f"rebake_{k}", "rebake", capture=cap, cfg=cfg,
                       materials=MaterialsConfig(**kw), overwrite=True)
        print(json.dumps({"variant": kw, "psnr_heldout_baked": m.get("psnr_heldout_baked"),
                          "psnr_heldout_baked_radiance": m.get("psnr_heldout_baked_radiance"),
                          "materials_psnr_pbr": m.get("materials_psnr_pbr"),
                          "materials_psnr_radiance": m.get("materials_psnr_radiance")}), flush=True)


if __name__ == "__main__":
    main()
