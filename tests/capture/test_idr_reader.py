"""IDR/NeuS/DTU reading: P = world_mat @ scale_mat decomposed; the unit sphere covers every mask."""
from __future__ import annotations

import json

import numpy as np
from scipy.spatial.transform import Rotation

from recon.capture.idr_reader import decompose_projection, read_idr
from recon.capture.transforms_reader import read_transforms
from recon.cli import main
from recon.core.config import CaptureConfig


def test_decompose_projection_recovers_k_r_t():
    rng = np.random.default_rng(0)
    for k in range(10):
        K = np.array([[900.0 + k, 0.0, 310.0], [0.0, 910.0, 250.0], [0.0, 0.0, 1.0]])
        R = Rotation.random(random_state=k).as_matrix()
        C = rng.normal(size=3) * 4
        P = K @ np.hstack([R, (-R @ C)[:, None]])
        P *= rng.uniform(0.1, 10) * (-1 if k % 2 else 1)  # any scale, either sign
        K2, c2w = decompose_projection(P)
        assert np.allclose(K2, K, rtol=1e-9, atol=1e-7)
        assert np.allclose(c2w[:3, :3], R.T, atol=1e-9) and np.allclose(c2w[:3, 3], C, atol=1e-9)


def test_dtu_scan24(shared_data, tmp_path, synth):
    src = shared_data / "dtu" / "scan24"
    out = tmp_path / "dtu"
    assert main(["capture", str(src), "--out", str(out), "--set", "capture.max_size=200", "--quiet"]) == 0
    cap = read_transforms(out, CaptureConfig())
    assert len(cap) == 49 and cap.masks is not None
    assert cap.meta["normalization_method"] == "scale_mat"
    assert cap.frames[5].name == "005" and cap.frames[5].index == 5
    # scale_mat maps the unit sphere onto the region of interest: every mask pixel's ray meets it.
    cov = synth.mask_coverage(cap.cameras, cap.masks)
    assert cov.min() > 0.995, cov.min()
    # normalization is inv(scale_mat), and the cameras project like the original world_mat.
    with np.load(src / "cameras_sphere.npz") as z:
        scale_mat, world_mat = z["scale_mat_0"], z["world_mat_7"]
    assert np.allclose(cap.normalization @ scale_mat, np.eye(4), atol=1e-9)
    X = np.array([[-20.0, 10.0, 600.0], [5.0, -30.0, 650.0]])  # points near the subject, original units
    uv = world_mat[:3] @ np.vstack([X.T, np.ones(2)])
    uv = (uv[:2] / uv[2]).T
    Xn = X @ cap.normalization[:3, :3].T + cap.normalization[:3, 3]
    uv2, _ = cap.cameras[7].project(Xn)
    # IDR pixel centres are integers, recon's are +0.5; the capture is downscaled 800 -> 200.
    assert np.allclose(uv2[0], (uv + 0.5) * 0.25, atol=1e-6)
    record = json.loads((out / "capture.json").read_text())
    assert record["counts"]["frames"] == 49 and record["source"]["kind"] == "idr"


def test_idr_without_masks_option(shared_data):
    cap = read_idr(shared_data / "dtu" / "scan24", CaptureConfig(max_size=64, masks="none", test_every=0))
    assert cap.masks is None and len(cap) == 49 and cap.images[0].shape == (48, 64, 3)
