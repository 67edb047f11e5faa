"""The README demo's lego (a Blender capture: +Z up) comes out of ``recon fit`` standing upright as
glTF wants: +Y up, its base plate horizontal at y = 0, centred in x/z."""
from __future__ import annotations

import json

import numpy as np

from recon.bake import read_mesh
from recon.cli import main

# A rough lego is enough to tell which way it stands.
ROUGH = ["capture.max_size=100", "fit.iterations=250", "fit.minutes=null", "fit.batch_rays=1024", "fit.eval_every=0",
         "fit.checkpoint_every=0", "render.samples_per_ray=96", "bake.resolution=96", "bake.texture_size=128",
         "bake.target_triangles=3000", "bake.preview_size=64", "bake.turntable_frames=2", "bake.refine_steps=0",
         "bake.texture_fit_steps=0"]


def test_the_lego_stands_upright(tmp_path):
    out = tmp_path / "lego"
    argv = ["fit", "--data", "data/lego-50", "--out", str(out), "-q"]
    for o in ROUGH:
        argv += ["--set", o]
    assert main(argv) == 0
    m = json.loads((out / "asset" / "metrics.json").read_text())
    assert m["frame"]["up"] == [0, 0, 1] and "Blender" in m["frame"]["up_method"]
    pos = read_mesh(out / "asset" / "lego-50.glb").positions
    lo, hi = pos.min(0), pos.max(0)
    extent = hi - lo
    assert abs(lo[1]) < 1e-4 * extent.max()  # resting on y = 0
    assert np.allclose((lo + hi)[[0, 2]] / 2, 0, atol=1e-4 * extent.max())
    # the bulldozer is longer than it is tall: its largest extent is horizontal (it lay on its side before)
    assert extent[1] < 0.8 * max(extent[0], extent[2]), extent
    # the base plate: the lowest tenth of the asset covers most of its footprint
    base = pos[pos[:, 1] < lo[1] + 0.1 * extent[1]]
    footprint = (base.max(0) - base.min(0))[[0, 2]]
    assert np.all(footprint > 0.7 * extent[[0, 2]]), (footprint, extent)
    prov = json.loads((out / "asset" / "provenance.json").read_text())
    A = np.array(prov["frame"]["asset_from_capture"])
    assert np.allclose(A[:3, :3], [[1, 0, 0], [0, 0, 1], [0, -1, 0]], atol=1e-9)  # Blender's Z-up -> glTF's Y-up
