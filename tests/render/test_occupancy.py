import torch

from recon.render.occupancy import OccupancyGrid
from recon.render.rays import CameraTensors, RayBundle
from recon.render.sampler import march_step, sample_rays


def _ball_opacity(x, radius=0.4 + 2 / 32 * 3 ** 0.5):
    """1 in a ball of radius 0.4 grown by one cell diagonal (of a 32^3 grid over [-1, 1]^3), so any cell
    that touches the 0.4-ball is marked whatever jittered point inside it is evaluated."""
    return (x.norm(dim=-1) < radius).float()


def _rays(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    o = torch.randn(n, 3, generator=g)
    o = 3.0 * o / o.norm(dim=-1, keepdim=True)
    target = 0.5 * (torch.rand(n, 3, generator=g) - 0.5)
    d = target - o
    return RayBundle(o, d / d.norm(dim=-1, keepdim=True))


def test_update_prunes_empty_space_and_keeps_occupied_samples():
    grid = OccupancyGrid(resolution=32, bound=1.0, threshold=0.01)
    grid.update(_ball_opacity)  # every cell
    frac = grid.binary.float().mean().item()
    assert 0.03 < frac < 0.12  # roughly the grown ball's volume (4/3 pi 0.51^3 / 8 = 0.07)
    rays = _rays()
    step = march_step(1.0, 256)
    full = OccupancyGrid(resolution=32, bound=1.0)  # all occupied
    dense = sample_rays(rays, full, step, 256, jitter=False)
    sparse = sample_rays(rays, grid, step, 256, jitter=False)
    assert len(sparse) < 0.5 * len(dense)
    # every dense sample inside the ball is still there after skipping
    in_ball = dense.positions.norm(dim=-1) < 0.4
    key = lambda s, m: set(zip(s.ray_idx[m].tolist(), (s.t_starts[m] / step).round().long().tolist()))  # noqa: E731
    kept = key(sparse, torch.ones(len(sparse), dtype=torch.bool))
    assert key(dense, in_ball) <= kept
    assert in_ball.sum() > 100


def test_warmup_update_does_not_prune_and_ema_decays():
    grid = OccupancyGrid(resolution=16, bound=1.0, threshold=0.01, ema=0.5)
    grid.update(_ball_opacity, prune=False)
    assert grid.binary.all()
    grid.update(lambda x: torch.zeros(len(x)))
    # decayed max: the ball cells still hold 0.5 > threshold
    assert 0 < grid.binary.float().mean() < 0.2
    for _ in range(8):
        grid.update(lambda x: torch.zeros(len(x)))
    assert not grid.binary.any()


def test_visual_hull_keeps_the_subject(sphere_capture):
    cap = sphere_capture(n_train=12, n_test=0, size=32, radius=0.5)
    grid = OccupancyGrid(resolution=32, bound=1.0)
    kept = grid.carve_visual_hull(CameraTensors.from_cameras(cap.cameras), cap.masks)
    assert kept < 0.3
    centres = grid.cell_centers(torch.arange(32 ** 3))
    inside = centres.norm(dim=-1) < 0.5
    assert grid.hull.view(-1)[inside].all()  # conservative: nothing of the sphere is carved
    assert not grid.hull.view(-1)[centres.norm(dim=-1) > 1.0].any()
