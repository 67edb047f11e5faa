"""The articulated model: initialisation pieces, a tiny fit against the static model, bad input."""
import numpy as np
import pytest
import torch

from recon.core.config import load_config
from recon.core.errors import InputError
from recon.core.types import Cameras
from recon.fit.trainer import Trainer
from recon.models.articulated_init import root_translations, skeleton_parents
from recon.synth import synth_articulated
from recon.synth.cameras import look_at


@pytest.fixture(scope="module")
def walking(tmp_path_factory):
    """The synthetic critter: 12 instants at 64 px, a training camera and a second camera."""
    return synth_articulated(tmp_path_factory.mktemp("critter") / "cap", frames=12, size=64, seed=0)


def test_root_translations_follow_a_moving_ball():
    """Masks of a ball moving on a line, seen by an orbiting camera: centres and radius come back."""
    K, size, f = 16, 96, 100.0
    centres = np.stack([np.linspace(-0.4, 0.4, K), np.zeros(K), np.zeros(K)], 1)
    ang = np.linspace(0, np.pi / 2, K)
    eyes = centres + 3.0 * np.stack([np.sin(ang), 0.3 * np.ones(K), np.cos(ang)], 1)
    cams = Cameras.create(np.stack([look_at(eyes[k:k + 1], centres[k], (0, 1, 0))[0] for k in range(K)]),
                          f, f, size / 2, size / 2, size, size)
    masks = []
    yy, xx = np.mgrid[:size, :size] + 0.5
    for k in range(K):  # the ball's image: a disc of radius f * r / depth about the projected centre
        d = float(np.linalg.norm(eyes[k] - centres[k]))
        r = f * 0.25 / d
        masks.append(np.where((xx - size / 2) ** 2 + (yy - size / 2) ** 2 <= r * r, 255, 0).astype(np.uint8))
    T, radius = root_translations(cams, masks, np.arange(K), K, smooth=0.1)
    assert np.abs(T - centres).max() < 0.05
    assert radius == pytest.approx(0.25, rel=0.1)


def test_skeleton_is_a_tree_rooted_near_the_middle():
    c = np.array([[0, 0, 0], [1, 0, 0], [2, 0, 0], [-1, 0, 0], [0, 1, 0.0]])
    order, parents = skeleton_parents(c)
    assert order[0] == 0 and parents[0] == -1
    assert all(0 <= p < i for i, p in enumerate(parents) if i > 0)  # parents come first
    # the chain 0-1-2 stays a chain: bone 2's parent is bone 1
    pos = {int(b): i for i, b in enumerate(order)}
    assert order[parents[pos[2]]] == 1


def _cfg(**over):
    sets = [f"{k}={v}" for k, v in over.items()]
    return load_config("object-fast", None, ["fit.minutes=null", "fit.log_every=1000", "bake.texture_size=128"] + sets)


def test_tiny_articulated_fit_beats_the_static_model(walking, tmp_path):
    """Both models fitted to the same tiny walking clip and scored on the frames they were fitted to: a
    static field cannot follow a walking subject's silhouettes, the skinned model can."""
    torch.set_num_threads(2)
    art = Trainer(_cfg(**{"fit.iterations": 200, "articulated.train_size": 64, "articulated.bones": 8,
                          "articulated.photo_geometry": False, "articulated.recarve": False}), walking,
                 tmp_path / "art", subject="articulated")
    art_eval = art.run()
    static = Trainer(_cfg(**{"fit.iterations": 400, "fit.batch_rays": 2048, "render.grid_resolution": 64}),
                     walking, tmp_path / "static", subject="object")
    static.run()
    train = walking.split_indices("train")
    a, s = art.model.evaluate(walking, train), static.model.evaluate(walking, train)
    assert art_eval["subject"] == "articulated" and art_eval["split"] == "test" and art_eval["n_views"] == 12
    assert a["mask_iou"] > s["mask_iou"] + 0.03, (a["mask_iou"], s["mask_iou"])
    assert art_eval["motion"]["moves"]


def test_a_clip_too_short_is_refused(walking, tmp_path):
    from dataclasses import replace

    short = replace(walking, images=walking.images[:5], masks=walking.masks[:5], frames=walking.frames[:5],
                    cameras=walking.cameras[:5])
    with pytest.raises(InputError, match="too short to fit a moving subject: 5 training instants.*at least 8"):
        Trainer(_cfg(), short, tmp_path / "fit", subject="articulated")


def test_without_masks_it_says_what_it_needs(walking, tmp_path):
    from dataclasses import replace

    with pytest.raises(InputError, match="needs subject masks"):
        Trainer(_cfg(), replace(walking, masks=None), tmp_path / "fit", subject="articulated")


def test_cli_refuses_a_clip_too_short_in_one_line(tmp_path, capsys):
    from recon.cli import main

    synth_articulated(tmp_path / "short", frames=5, size=48, seed=1)
    capsys.readouterr()  # the synth's own log lines
    rc = main(["fit", "--data", str(tmp_path / "short"), "--subject", "articulated", "--out", str(tmp_path / "job"),
               "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert "too short to fit a moving subject: 5 training instants" in err[0]
    assert not (tmp_path / "job" / "fit" / "eval.json").exists() and not (tmp_path / "job" / "asset").exists()


def test_a_subject_that_never_moves_is_fitted_and_called_static(tmp_path, caplog):
    """--subject articulated forced on a critter that holds still (only the camera moves): the run says the
    subject is static and fits it as a static object (recorded as such); a walking one stays articulated."""
    import logging

    from recon.models.articulated_init import still_hull_iou
    from recon.pipeline import fit

    still = synth_articulated(tmp_path / "still", frames=48, size=64, seed=2, still=True)
    walking = synth_articulated(tmp_path / "walking", frames=48, size=64, seed=2)
    train = still.split_indices("train")
    iou_still = still_hull_iou(still.cameras[train], [still.masks[i] for i in train])
    iou_walk = still_hull_iou(walking.cameras[train], [walking.masks[i] for i in train])
    assert iou_still > 0.8 and iou_walk < 0.5, (iou_still, iou_walk)
    logger = logging.getLogger("recon")  # the CLI's logging set-up stops recon's records from propagating
    logger.addHandler(caplog.handler)
    try:
        res = fit(still, out=tmp_path / "job", subject="articulated", bake=False,
                  overrides=["fit.iterations=30", "fit.minutes=null", "fit.log_every=1000"])
    finally:
        logger.removeHandler(caplog.handler)
    assert res.kind == "object" and res.requested_subject == "articulated"
    assert any("it is static" in r.getMessage() and "static object" in r.getMessage() for r in caplog.records)
