"""moving_subject_video: a rendered mesh over a real photo, with exact masks."""
import numpy as np

from recon.synth.composite import moving_subject_video


def test_moving_subject_video(shared_data):
    v = moving_subject_video(shared_data / "meshes/avocado/avocado.gltf", n_frames=6, size=(96, 64), seed=1)
    cap = v.capture
    assert len(cap) == len(v.true_masks) == 6 and cap.masks is None
    assert [f.index for f in cap.frames] == list(range(6)) and cap.frames[0].name == "f00000"
    for img, m, a in zip(cap.images, v.true_masks, v.alpha):
        assert img.shape == (64, 96, 3) and img.dtype == np.uint8
        assert m.shape == (64, 96) and set(np.unique(m)) <= {0, 255}
        np.testing.assert_array_equal(m == 255, a >= 0.5)
        assert 0.02 < (m > 0).mean() < 0.5  # the subject is in view, not filling it
        assert img[m == 0].std() > 10  # a photographic background, not a flat colour
    # the subject moves and the background moves
    assert (v.true_masks[0] != v.true_masks[-1]).mean() > 0.01
    both_bg = (v.true_masks[0] == 0) & (v.true_masks[-1] == 0)
    assert np.abs(cap.images[0][both_bg].astype(int) - cap.images[-1][both_bg]).mean() > 5
