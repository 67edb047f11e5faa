"""``recon synth --articulated``: a rigged, textured quadruped walking, filmed by two moving cameras.

The subject ("critter", cat-like, about 1.1 mesh units from nose to tail tip, +Y up,
facing +X at rest, standing on y = 0) is one closed triangle mesh (marching cubes of a
smooth union of tapered capsules, one per bone, plus ears) skinned to 15 bones:

  0 pelvis (root) ── 1 chest ── 2 neck ── 3 head
                 │          ├── 4/5 front-left upper/lower, 6/7 front-right upper/lower
                 ├── 8/9 hind-left upper/lower, 10/11 hind-right upper/lower
                 └── 12 ── 13 ── 14 tail

(left = -Z). Skin weights: a softmax of each vertex's distance to the bones' surfaces,
top 4 kept and renormalised. Its colour is a ``ProceduralTexture`` evaluated at the *rest*
position of the surface point, so the pattern moves with the skin.

Animation: a 1 Hz walk (legs swing about ±27°, lower legs bend, tail wags, head nods and
turns) on a root that advances along a circular arc, turning from -30° to +30° of yaw.
Pose convention: ``skinning[t, j]`` (4x4, mesh units) maps a rest point to its posed place
if it followed bone j only; posed vertices are ``sum_j w[v, j] skinning[t, j] @ rest[v]``.
Joint frames: ``rest_joints[j]`` is a translation to bone j's head (axes = world axes);
``posed_joints[t, j] = skinning[t, j] @ rest_joints[j]`` (global joint matrices).

Folder layout (the capture writer's, plus ground truth):

  frames/t_000…, masks/t_000…   training camera (split "train") at instants 0..T-1
  frames/c2_000…, masks/c2_000… second camera (split "test"), every ``test_every``-th instant
  transforms.json, capture.json normalised world (all posed vertices' bounding sphere ->
                                unit sphere, times MARGIN); FrameInfo.index = instant,
                                timestamp = instant / fps for both cameras
  gt_posed/<instant:04d>.ply    the posed mesh at each instant, mesh units
  gt_rig.npz                    mesh units: rest_vertices (V,3), faces (F,3), names, parents (J,),
                                heads/tails (J,3), weights (V,J), rest_joints (J,4,4), skinning and
                                posed_joints (T,J,4,4), normalization (4,4: mesh -> capture world), fps
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..core.errors import InputError
from ..core.fsutil import atomic_dir
from ..core.imageio import to_uint8
from ..core.log import get_logger
from ..core.progress import track
from ..core.types import Cameras, Capture, FrameInfo, concat_cameras
from .cameras import distance_for_fill, look_at
from .mesh import Mesh, _bounding_sphere
from .procedural_texture import ProceduralTexture
from ..render.mesh_render import render_views

if TYPE_CHECKING:
    import trimesh

log = get_logger(__name__)

FPS = 30.0
GAIT_HZ = 1.0  # walk cycles per second
FOV_DEG = 40.0
UP = np.array([0.0, 1.0, 0.0])

# name, parent, head, tail, radius at head, radius at tail (rest pose, mesh units)
_BONES = (
    ("pelvis", -1, (-0.24, 0.36, 0.0), (0.00, 0.37, 0.0), 0.105, 0.110),
    ("chest", 0, (0.00, 0.37, 0.0), (0.20, 0.38, 0.0), 0.110, 0.105),
    ("neck", 1, (0.20, 0.38, 0.0), (0.30, 0.49, 0.0), 0.060, 0.055),
    ("head", 2, (0.30, 0.49, 0.0), (0.45, 0.47, 0.0), 0.080, 0.040),
    ("front_l_upper", 1, (0.18, 0.32, -0.075), (0.20, 0.17, -0.075), 0.045, 0.035),
    ("front_l_lower", 4, (0.20, 0.17, -0.075), (0.20, 0.03, -0.075), 0.033, 0.028),
    ("front_r_upper", 1, (0.18, 0.32, 0.075), (0.20, 0.17, 0.075), 0.045, 0.035),
    ("front_r_lower", 6, (0.20, 0.17, 0.075), (0.20, 0.03, 0.075), 0.033, 0.028),
    ("hind_l_upper", 0, (-0.22, 0.32, -0.075), (-0.17, 0.17, -0.075), 0.055, 0.038),
    ("hind_l_lower", 8, (-0.17, 0.17, -0.075), (-0.22, 0.03, -0.075), 0.034, 0.028),
    ("hind_r_upper", 0, (-0.22, 0.32, 0.075), (-0.17, 0.17, 0.075), 0.055, 0.038),
    ("hind_r_lower", 10, (-0.17, 0.17, 0.075), (-0.22, 0.03, 0.075), 0.034, 0.028),
    ("tail_1", 0, (-0.30, 0.38, 0.0), (-0.43, 0.44, 0.0), 0.032, 0.027),
    ("tail_2", 12, (-0.43, 0.44, 0.0), (-0.54, 0.53, 0.0), 0.027, 0.023),
    ("tail_3", 13, (-0.54, 0.53, 0.0), (-0.62, 0.64, 0.0), 0.023, 0.018),
)
# extra shapes on a bone (no bone of their own): ears on the head
_EXTRAS = (
    (3, (0.33, 0.55, -0.04), (0.32, 0.62, -0.05), 0.030, 0.008),
    (3, (0.33, 0.55, 0.04), (0.32, 0.62, 0.05), 0.030, 0.008),
)
_SMOOTH = 0.025  # smooth-min blend width
_VOXEL = 0.01  # marching-cubes voxel size (about 24k faces, decimated to FACES)
FACES = 7000
_WEIGHT_TAU = 0.012  # softmax temperature of the skin weights (mesh units)


@dataclass(frozen=True, eq=False)
class Critter:
    """The rigged subject at rest.

    vertices (V, 3) float64 and faces (F, 3) int64: the rest mesh (mesh units, +Y up, facing +X).
    names (J,), parents (J,) int64 (-1 = root), heads / tails (J, 3): bones in the rest pose.
    weights (V, J) float32: skin weights, at most 4 non-zero per row, rows sum to 1.
    pattern: the colour, a function of the rest-pose surface point.
    """

    vertices: np.ndarray
    faces: np.ndarray
    names: tuple[str, ...]
    parents: np.ndarray
    heads: np.ndarray
    tails: np.ndarray
    weights: np.ndarray
    pattern: ProceduralTexture

    @property
    def rest_joints(self) -> np.ndarray:
        """(J, 4, 4) rest joint frames: translation to each bone's head, world axes."""
        m = np.tile(np.eye(4), (len(self.names), 1, 1))
        m[:, :3, 3] = self.heads
        return m


@dataclass(frozen=True, eq=False)
class PosedMesh(Mesh):
    """A ``Mesh`` at posed vertices whose colour comes from its rest mesh (``rest``)."""

    rest: Mesh | None = None

    def albedo(self, face, bary):
        return self.rest.albedo(face, bary)


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance (N,) of points p (N, 3) to segment a-b, and the position (N,) in [0, 1] along it."""
    ab = b - a
    s = np.clip((p - a) @ ab / (ab @ ab), 0.0, 1.0)
    return np.linalg.norm(p - (a + s[:, None] * ab), axis=1), s


def _capsule_sdf(p: np.ndarray, a, b, ra: float, rb: float) -> np.ndarray:
    """Approximate signed distance (N,) to a capsule whose radius goes from ra at a to rb at b."""
    d, s = _segment_distance(p, np.asarray(a, float), np.asarray(b, float))
    return d - (ra + (rb - ra) * s)


def _smooth_min(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b + (a - b) * h - k * h * (1.0 - h)


def _bone_distances(points: np.ndarray) -> np.ndarray:
    """(N, J) signed distance of points to each bone's capsule (ears count for the head)."""
    d = np.stack([_capsule_sdf(points, h, t, ra, rb) for _, _, h, t, ra, rb in _BONES], 1)
    for j, h, t, ra, rb in _EXTRAS:
        d[:, j] = np.minimum(d[:, j], _capsule_sdf(points, h, t, ra, rb))
    return d


def skin_weights(points: np.ndarray, influences: int = 4) -> np.ndarray:
    """(N, J) float32 weights: softmax of -distance to the bones' surfaces, top ``influences``, rows sum to 1."""
    d = _bone_distances(points)
    logits = -(d - d.min(1, keepdims=True)) / _WEIGHT_TAU
    w = np.exp(logits)
    top = np.argsort(-w, axis=1, kind="stable")[:, :influences]
    kept = np.zeros_like(w)
    np.put_along_axis(kept, top, np.take_along_axis(w, top, 1), 1)
    w = kept
    return (w / w.sum(1, keepdims=True)).astype(np.float32)


def build_critter(seed: int = 0) -> Critter:
    """The rest mesh (marching cubes of the smooth union of the bones' capsules), rig and skin weights."""
    import trimesh
    from skimage.measure import marching_cubes

    from ..bake.simplify import decimate

    lo = np.array([-0.75, -0.05, -0.2])
    hi = np.array([0.6, 0.75, 0.2])
    shape = np.ceil((hi - lo) / _VOXEL).astype(int) + 1
    axes = [lo[i] + _VOXEL * np.arange(shape[i]) for i in range(3)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    d = _bone_distances(grid)
    sdf = d[:, 0]
    for j in range(1, d.shape[1]):
        sdf = _smooth_min(sdf, d[:, j], _SMOOTH)
    verts, faces, _, _ = marching_cubes(sdf.reshape(shape), level=0.0, spacing=(_VOXEL,) * 3)
    mesh = decimate(trimesh.Trimesh(verts + lo, faces, process=True), FACES)
    if mesh.volume < 0:  # outward winding
        mesh.invert()
    vertices = np.asarray(mesh.vertices, np.float64)
    center, radius = _bounding_sphere(vertices)
    return Critter(
        vertices=vertices, faces=np.asarray(mesh.faces, np.int64),
        names=tuple(b[0] for b in _BONES), parents=np.array([b[1] for b in _BONES], np.int64),
        heads=np.array([b[2] for b in _BONES], float), tails=np.array([b[3] for b in _BONES], float),
        weights=skin_weights(vertices),
        pattern=ProceduralTexture(tuple(float(x) for x in center), radius, seed=seed))


def _rotation(axis, angle: float) -> np.ndarray:
    """3x3 rotation by ``angle`` radians about ``axis`` (Rodrigues)."""
    k = np.asarray(axis, float) / np.linalg.norm(axis)
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(angle) * K + (1 - math.cos(angle)) * K @ K


def _about(point: np.ndarray, R: np.ndarray) -> np.ndarray:
    """4x4 rotation R about ``point``."""
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = R, point - R @ point
    return m


def _local_rotations(names: tuple[str, ...], t: float) -> list[np.ndarray]:
    """Per-bone 3x3 rotations (about the bone's head, in the parent's posed frame) at time t (seconds)."""
    ph = 2.0 * math.pi * GAIT_HZ * t
    leg_phase = {"hind_l": 0.0, "front_l": 0.5 * math.pi, "hind_r": math.pi, "front_r": 1.5 * math.pi}
    Z, Y = (0, 0, 1), (0, 1, 0)
    rots = []
    for name in names:
        R = np.eye(3)
        leg = name.rsplit("_", 1)[0]
        if leg in leg_phase:
            p = ph + leg_phase[leg]
            if name.endswith("upper"):
                R = _rotation(Z, math.radians(27.0) * math.sin(p))  # +angle swings the foot forward
            else:  # lower legs fold back (paw lifted) while the leg swings forward
                bend = math.radians(35.0) * max(0.0, math.sin(p + 0.5 * math.pi)) ** 2
                R = _rotation(Z, -bend)
        elif name.startswith("tail"):
            R = _rotation(Y, math.radians(14.0) * math.sin(ph + 0.6 * int(name[-1]))) @ \
                _rotation(Z, math.radians(6.0) * math.sin(2 * ph))
        elif name == "neck":
            R = _rotation(Z, math.radians(-8.0) * math.sin(2 * ph))  # nod twice per cycle
        elif name == "head":
            turn = math.radians(20.0) * math.sin(0.5 * ph)  # looks left and right once per 2 cycles
            R = _rotation(Y, turn) @ _rotation(Z, math.radians(-6.0) * math.sin(2 * ph + 1.0))
        elif name == "chest":
            R = _rotation(Y, math.radians(4.0) * math.sin(ph))
        rots.append(R)
    return rots


def root_motion(frames: int) -> np.ndarray:
    """(T, 4, 4) root transforms: a circular arc of 0.6 units turning from -30° to +30° of yaw, with a bob."""
    u = np.arange(frames) / max(frames - 1, 1)
    psi0, dpsi, length = math.radians(-30.0), math.radians(60.0), 0.6
    R = length / dpsi
    psi = psi0 + dpsi * u
    out = np.tile(np.eye(4), (frames, 1, 1))
    for i, a in enumerate(psi):
        bob = 0.008 * math.sin(4.0 * math.pi * GAIT_HZ * i / FPS)
        out[i, :3, :3] = _rotation((0, 1, 0), a)
        out[i, :3, 3] = [R * (math.sin(a) - math.sin(psi0)), bob, R * (math.cos(a) - math.cos(psi0))]
    return out


def walk_animation(critter: Critter, frames: int) -> np.ndarray:
    """(T, J, 4, 4) skinning transforms (rest -> posed, mesh units) of the walk at instants 0..T-1."""
    J = len(critter.names)
    roots = root_motion(frames)
    out = np.empty((frames, J, 4, 4))
    for t in range(frames):
        rots = _local_rotations(critter.names, t / FPS)
        for j in range(J):  # parents come before their children
            parent = roots[t] if critter.parents[j] < 0 else out[t, critter.parents[j]]
            out[t, j] = parent @ _about(critter.heads[j], rots[j])
    return out


def linear_blend_skinning(vertices: np.ndarray, weights: np.ndarray, transforms: np.ndarray) -> np.ndarray:
    """Rest vertices (V, 3), weights (V, J), transforms (..., J, 4, 4) -> posed vertices (..., V, 3)."""
    blended = np.einsum("vj,...jab->...vab", weights.astype(np.float64), transforms)  # (..., V, 4, 4)
    return np.einsum("...vab,vb->...va", blended[..., :3, :3], vertices) + blended[..., :3, 3]


def orbit_cameras(centres: np.ndarray, radius: float, size: int, azimuth_deg: tuple[float, float],
                  elevation_deg: float, fill: float, seed: int) -> Cameras:
    """One camera per instant, sweeping azimuth linearly (about +Y, from +X towards -Z) at a fixed
    elevation, looking at ``centres`` (T, 3) from the distance that frames a ball of ``radius`` to
    ``fill``; small seeded jitter on angles (±1.5°) and distance (±3%)."""
    T = len(centres)
    rng = np.random.default_rng(int(seed))
    u = np.arange(T) / max(T - 1, 1)
    az = np.radians(azimuth_deg[0] + (azimuth_deg[1] - azimuth_deg[0]) * u + rng.uniform(-1.5, 1.5, T))
    el = np.radians(elevation_deg + rng.uniform(-1.5, 1.5, T))
    dist = distance_for_fill(radius, FOV_DEG, fill) * (1.0 + rng.uniform(-0.03, 0.03, T))
    dirs = np.stack([np.cos(el) * np.cos(az), np.sin(el), -np.cos(el) * np.sin(az)], 1)
    c2w = np.stack([look_at(centres[i] + dist[i] * dirs[i][None], centres[i], UP)[0] for i in range(T)])
    f = 0.5 * size / math.tan(math.radians(FOV_DEG) / 2.0)
    return Cameras.create(c2w, f, f, size / 2.0, size / 2.0, size, size)


TRAIN_PATH = {"azimuth_deg": (-100.0, 70.0), "elevation_deg": 24.0, "fill": 0.9}
TEST_PATH = {"azimuth_deg": (60.0, -110.0), "elevation_deg": 42.0, "fill": 0.85}
CAMERAS_TEXT = ("train: one camera orbiting 170° of azimuth (-100° -> 70°, about +Y from +X) at 24° "
                "elevation, looking at the subject's current centre, slight jitter; test: a second camera "
                "sweeping the same azimuth range in reverse (60° -> -110°) at 42° elevation, same instants")


def floor_points(centres: np.ndarray, reach: float, seed: int, count: int = 1500) -> np.ndarray:
    """(count, 3) points of the floor (y = 0) within 4 reaches of the path's centres (T, 3), jittered
    by 0.2% of a reach off the plane: the sparse points SfM would find on a real capture's ground."""
    rng = np.random.default_rng(int(seed) + 7)
    at = centres[rng.integers(len(centres), size=count)]
    ang, rad = rng.uniform(0, 2 * math.pi, count), 4 * reach * np.sqrt(rng.uniform(0, 1, count))
    return np.stack([at[:, 0] + rad * np.cos(ang), 0.002 * reach * rng.standard_normal(count),
                     at[:, 2] + rad * np.sin(ang)], 1)


def synth_articulated(out: str | Path, frames: int = 60, size: int = 128, seed: int = 0, test_every: int = 1,
                      overwrite: bool = False, still: bool = False) -> Capture:
    """Render the walking critter into the capture folder ``out`` with posed ground truth (see module doc).
    ``still``: the critter holds its rest pose at the path's start while the cameras move as usual
    (a subject that never moves).

    Returns the normalised Capture (train frames first, then test). The folder is written
    atomically: on any error ``out`` is left as it was.
    """
    import trimesh

    from ..capture.capture_writer import write_capture_folder
    from ..capture.normalize import MARGIN, similarity

    if frames < 2 or size < 8 or test_every < 1:
        raise InputError(None, f"need --frames >= 2, --size >= 8 and test_every >= 1 "
                               f"(got {frames}, {size}, {test_every})")
    critter = build_critter(seed)
    skinning = walk_animation(critter, frames)
    if still:
        skinning = np.broadcast_to(np.eye(4), skinning.shape).copy()
    posed = linear_blend_skinning(critter.vertices, critter.weights, skinning)  # (T, V, 3)
    center, radius = _bounding_sphere(posed.reshape(-1, 3))
    spheres = [_bounding_sphere(p) for p in posed]  # per instant: the cameras frame this ball
    centres, reach = np.stack([c for c, _ in spheres]), max(r for _, r in spheres)
    cams = {"train": orbit_cameras(centres, reach, size, seed=seed, **TRAIN_PATH),
            "test": orbit_cameras(centres, reach, size, seed=seed + 1, **TEST_PATH)}
    test_instants = list(range(0, frames, test_every))
    floor = floor_points(centres, reach, seed)

    rest = Mesh(critter.vertices, critter.faces, None, None, None, critter.pattern, center, radius, "critter")
    digits = max(3, len(str(frames - 1)))
    rendered: dict[str, list] = {"train": [], "test": []}
    for t in track(range(frames), "rendering critter", total=frames):
        mesh = PosedMesh(posed[t], critter.faces, None, None, None, critter.pattern, center, radius, "critter",
                         rest=rest)
        rendered["train"].append(render_views(mesh, cams["train"][[t]])[0])
        if t % test_every == 0:
            rendered["test"].append(render_views(mesh, cams["test"][[t]])[0])
    infos = [FrameInfo(f"t_{t:0{digits}d}", "critter", t, t / FPS, "train") for t in range(frames)] + \
            [FrameInfo(f"c2_{t:0{digits}d}", "critter", t, t / FPS, "test") for t in test_instants]
    views = rendered["train"] + rendered["test"]
    synthetic = {"subject": "critter", "articulated": True, "still": still, "frames": frames, "bones": len(critter.names),
                 "test_every": test_every, "size": size, "seed": seed, "fps": FPS, "cameras": CAMERAS_TEXT,
                 "appearance": "procedural (at the rest-pose surface point)", "vertices": len(critter.vertices),
                 "faces": len(critter.faces), "up": UP.tolist(),
                 "points": f"{len(floor)} points of the floor (y = 0) around the path, standing in for the "
                           "sparse points SfM finds on a real capture's ground",
                 "gt_posed": "gt_posed/<instant:04d>.ply in mesh units",
                 "gt_rig": "gt_rig.npz in mesh units: posed = sum_j weights[:, j] * skinning[t, j] @ rest"}
    cap = Capture(
        images=[to_uint8(r["rgb"]) for r in views],
        cameras=concat_cameras([cams["train"], cams["test"][test_instants]]),
        frames=infos,
        masks=[np.where(r["alpha"] >= 0.5, 255, 0).astype(np.uint8) for r in views],
        points=floor,
        meta={"source": "critter", "source_kind": "synthetic", "synthetic": synthetic, "up": UP.tolist(),
              "up_method": "synthetic (the subject's up axis)"},
    )
    cap = cap.normalized(similarity(center, radius * MARGIN))
    cap = replace(cap, meta={**cap.meta, "normalized": True, "normalization_method": "posed_bounding_sphere"})

    with atomic_dir(out, overwrite=overwrite) as tmp:
        write_capture_folder(cap, tmp)
        (tmp / "gt_posed").mkdir()
        for t in range(frames):
            trimesh.Trimesh(posed[t], critter.faces, process=False).export(tmp / "gt_posed" / f"{t:04d}.ply")
        np.savez_compressed(
            tmp / "gt_rig.npz", rest_vertices=critter.vertices, faces=critter.faces,
            names=np.array(critter.names), parents=critter.parents, heads=critter.heads, tails=critter.tails,
            weights=critter.weights, rest_joints=critter.rest_joints, skinning=skinning,
            posed_joints=skinning @ critter.rest_joints, normalization=cap.normalization, fps=FPS)
    log.info(f"wrote {frames} train + {len(test_instants)} test frames of the walking critter to {out}")
    return cap


def load_posed_truth(capture_dir: str | Path) -> dict[int, trimesh.Trimesh]:
    """Instant -> posed ground-truth mesh (mesh units; apply ``cap.normalization`` to compare in the
    normalised world) from a folder written by ``synth_articulated``."""
    import trimesh

    folder = Path(capture_dir) / "gt_posed"
    if not folder.is_dir():
        raise InputError(capture_dir, "no gt_posed/ folder (not written by synth_articulated)")
    return {int(p.stem): trimesh.load(p, process=False) for p in sorted(folder.glob("*.ply"))}
