"""Rigged, animated assets: Rig (linear blend skinning), the glb skin/animation, posed meshes."""
from __future__ import annotations

import numpy as np
import pytest
import trimesh
from scipy.spatial.transform import Rotation

from recon.bake.rig import Rig, sparse_influences
from recon.bake.textured_mesh import TexturedMesh
from recon.bake.writers import read_mesh, write_mesh, write_posed_meshes
from recon.bake.writers.glb import parse_glb

from .conftest import play_in_model_viewer, validate_gltf

CENTRES = np.array([-1.0, 0.0, 1.0])  # joint heights along +Y: a three-bone chain
TIMES = np.array([0.0, 0.4, 0.8, 1.2, 1.6])


def rigid(rotvec, t) -> np.ndarray:
    M = np.eye(4)
    M[:3, :3] = Rotation.from_rotvec(rotvec).as_matrix()
    M[:3, 3] = t
    return M


def make_rig(positions: np.ndarray) -> Rig:
    """A chain of three joints along a tube; the joint frames are tilted (the bind rotations are not
    identity); at each key the root turns 100 degrees about +Y (quaternion signs flip without care)
    and moves, and the two children bend about their own x axes."""
    tilt = [[0.3, 0.1, 0.0], [0.0, 0.4, -0.2], [-0.3, 0.0, 0.5]]
    bind = np.stack([rigid(tilt[j], [0, CENTRES[j] - 0.5, 0]) for j in range(3)])
    rest_local = [bind[0]] + [np.linalg.inv(bind[j - 1]) @ bind[j] for j in (1, 2)]
    poses = []
    for k in range(len(TIMES)):
        root = rigid([0, np.radians(100) * k, 0], [0.2 * k, 0.1 * k, 0]) @ rest_local[0]
        g1 = root @ rest_local[1] @ rigid([0.35 * k, 0, 0], [0, 0, 0])
        g2 = g1 @ rest_local[2] @ rigid([-0.25 * k, 0.1 * k, 0], [0, 0, 0])
        poses.append(np.stack([root, g1, g2]))
    dense = np.exp(-(((positions[:, 1:2] - CENTRES[None]) / 0.6) ** 2))
    joints, weights = sparse_influences(dense)
    return Rig(("hips", "spine", "head"), np.array([-1, 0, 1]), bind, joints, weights, TIMES.copy(),
               np.stack(poses), frame_indices=np.arange(len(TIMES)) * 3)


@pytest.fixture(scope="module")
def rigged() -> TexturedMesh:
    tube = trimesh.creation.cylinder(radius=0.3, height=3.0, sections=16, transform=rigid([-np.pi / 2, 0, 0], 0))
    tube = tube.subdivide_to_size(0.25)
    pos = tube.vertices.astype(np.float32)
    uv = np.stack([np.arctan2(pos[:, 2], pos[:, 0]) / (2 * np.pi) + 0.5, (1.5 - pos[:, 1]) / 3.0], 1)
    color = np.zeros((4, 4, 3), np.uint8)
    color[..., 0] = np.arange(4)[:, None] * 60
    color[..., 1] = 200
    return TexturedMesh(pos, tube.vertex_normals.astype(np.float32), uv.astype(np.float32),
                        tube.faces.astype(np.int64), color, rig=make_rig(pos))


@pytest.fixture(scope="module")
def glb(rigged, tmp_path_factory):
    return write_mesh(rigged, tmp_path_factory.mktemp("rig") / "tube.glb")[0]


def lbs(rig: Rig, positions: np.ndarray, k: int) -> np.ndarray:
    """Linear blend skinning from the global matrices, one influence slot at a time."""
    hom = np.concatenate([positions, np.ones((len(positions), 1))], 1).astype(np.float64)
    out = np.zeros_like(hom)
    for i in range(4):
        j = rig.joints[:, i]
        M = rig.pose_matrices[k][j] @ np.linalg.inv(rig.bind_matrices[j])
        out += rig.weights[:, i, None] * np.einsum("vab,vb->va", M, hom)
    return out[:, :3]


def test_pose_is_linear_blend_skinning(rigged):
    rig = rigged.rig
    for k in range(rig.num_keys):
        np.testing.assert_allclose(rig.pose(rigged.positions, k), lbs(rig, rigged.positions, k), atol=1e-5)
    assert np.abs(rig.pose(rigged.positions, 2) - rigged.positions).max() > 0.5  # it really moves
    # at the rest pose (pose == bind) nothing moves
    still = Rig(rig.joint_names, rig.parents, rig.bind_matrices, rig.joints, rig.weights, np.zeros(1),
                rig.bind_matrices[None])
    np.testing.assert_allclose(still.pose(rigged.positions, 0), rigged.positions, atol=1e-5)


def test_local_transforms_compose_back_and_stay_continuous(rigged):
    rig = rigged.rig
    t, q = rig.local_transforms()
    assert np.all(np.sum(q[1:] * q[:-1], -1) > 0)  # the root turns 100 degrees a key: signs were flipped
    g = np.zeros((rig.num_keys, 3, 4, 4))
    for j, p in enumerate(rig.parents):
        local = np.eye(4)[None].repeat(rig.num_keys, 0)
        local[:, :3, :3] = Rotation.from_quat(q[:, j]).as_matrix()
        local[:, :3, 3] = t[:, j]
        g[:, j] = local if p < 0 else g[:, p] @ local
    np.testing.assert_allclose(g, rig.pose_matrices, atol=1e-9)
    bt, bq = rig.bind_local()
    np.testing.assert_allclose(bt[1], (np.linalg.inv(rig.bind_matrices[0]) @ rig.bind_matrices[1])[:3, 3])


def test_transformed_moves_posed_vertices_too(rigged):
    A = rigid([0.2, -0.5, 0.9], [1.0, 2.0, -3.0])
    moved = rigged.transformed(A)
    want = rigged.rig.pose(rigged.positions, 3) @ A[:3, :3].T + A[:3, 3]
    np.testing.assert_allclose(moved.rig.pose(moved.positions, 3), want, atol=1e-4)
    S = A.copy()
    S[:3, :3] *= 2.5  # a similarity: the joints stay rigid, the skinned points still move by S
    rig = rigged.rig.transformed(S)
    np.testing.assert_allclose(rig.pose(rigged.positions @ S[:3, :3].T + S[:3, 3], 3),
                               rigged.rig.pose(rigged.positions, 3) @ S[:3, :3].T + S[:3, 3], atol=1e-4)
    sub = rigged.rig.subset_vertices(np.arange(10))
    np.testing.assert_allclose(sub.pose(rigged.positions[:10], 1), rigged.rig.pose(rigged.positions, 1)[:10])


def test_rig_validation(rigged):
    rig = rigged.rig
    args = dict(joint_names=rig.joint_names, parents=rig.parents, bind_matrices=rig.bind_matrices,
                joints=rig.joints, weights=rig.weights, times=rig.times, pose_matrices=rig.pose_matrices)
    with pytest.raises(ValueError, match="weight rows must sum to 1"):
        Rig(**{**args, "weights": rig.weights * 0.8})
    with pytest.raises(ValueError, match="parents must be -1 for joint 0"):
        Rig(**{**args, "parents": np.array([-1, 2, 0])})
    with pytest.raises(ValueError, match="bind_matrices must be rigid"):
        Rig(**{**args, "bind_matrices": rig.bind_matrices * np.array([1.1, 1, 1, 1])[:, None]})
    with pytest.raises(ValueError, match="strictly increasing"):
        Rig(**{**args, "times": rig.times[::-1].copy()})
    with pytest.raises(ValueError, match=r"pose_matrices must have shape \(5, 3, 4, 4\)"):
        Rig(**{**args, "pose_matrices": rig.pose_matrices[:, :2]})
    with pytest.raises(ValueError, match="rig has skin weights for"):
        rigged.with_(rig=rig.subset_vertices(np.arange(5)))


def test_glb_passes_the_khronos_validator(glb):
    report = validate_gltf(glb)
    assert report["numErrors"] == 0, report["messages"]
    assert report["numWarnings"] == 0, report["messages"]


def _accessor(gltf: dict, binary: bytes, i: int) -> np.ndarray:
    a = gltf["accessors"][i]
    bv = gltf["bufferViews"][a["bufferView"]]
    n = {"SCALAR": 1, "VEC3": 3, "VEC4": 4, "MAT4": 16}[a["type"]]
    dt = {5126: "<f4", 5123: "<u2", 5121: "u1"}[a["componentType"]]
    arr = np.frombuffer(binary, dt, a["count"] * n, bv.get("byteOffset", 0) + a.get("byteOffset", 0))
    return arr.reshape(a["count"], n)


def test_glb_skinning_reproduces_the_posed_mesh(rigged, glb):
    """Joint globals composed from the animation's local TRS down the node hierarchy, times the
    inverse bind matrices, blended by JOINTS_0 / WEIGHTS_0, move the glb's vertices where Rig.pose does."""
    gltf, binary = parse_glb(glb.read_bytes())
    scene_roots = gltf["scenes"][gltf["scene"]]["nodes"]
    mesh_node = next(n for n in scene_roots if "mesh" in gltf["nodes"][n])
    assert gltf["nodes"][mesh_node]["skin"] == 0
    assert not {"matrix", "translation", "rotation", "scale"} & gltf["nodes"][mesh_node].keys()
    skin, anim = gltf["skins"][0], gltf["animations"][0]
    assert anim["name"] == "motion" and skin["skeleton"] in scene_roots
    attrs = gltf["meshes"][0]["primitives"][0]["attributes"]
    pos, joints, weights = (_accessor(gltf, binary, attrs[a]) for a in ("POSITION", "JOINTS_0", "WEIGHTS_0"))
    ibm = _accessor(gltf, binary, skin["inverseBindMatrices"]).reshape(-1, 4, 4).transpose(0, 2, 1)
    for k in (0, 2, 4):
        trs = {}
        for ch in anim["channels"]:
            sampler = anim["samplers"][ch["sampler"]]
            np.testing.assert_allclose(_accessor(gltf, binary, sampler["input"])[:, 0], TIMES, atol=1e-6)
            trs[ch["target"]["node"], ch["target"]["path"]] = _accessor(gltf, binary, sampler["output"])[k]
        world = {}

        def walk(node: int, parent: np.ndarray) -> None:
            local = np.eye(4)
            local[:3, :3] = Rotation.from_quat(trs[node, "rotation"]).as_matrix()
            local[:3, 3] = trs[node, "translation"]
            world[node] = parent @ local
            for c in gltf["nodes"][node].get("children", []):
                walk(c, world[node])

        walk(skin["skeleton"], np.eye(4))
        M = np.stack([world[n] for n in skin["joints"]]) @ ibm
        blended = np.einsum("vi,viab->vab", weights, M[joints.astype(np.int64)])
        got = np.einsum("vab,vb->va", blended[:, :3, :3], pos) + blended[:, :3, 3]
        np.testing.assert_allclose(got, rigged.rig.pose(rigged.positions, k), atol=1e-4)


def test_glb_reads_back_with_its_rig(rigged, glb):
    back = read_mesh(glb)
    np.testing.assert_array_equal(back.positions, rigged.positions)
    assert back.rig is not None and back.rig.joint_names == rigged.rig.joint_names
    np.testing.assert_array_equal(back.rig.frame_indices, rigged.rig.frame_indices)
    for k in (1, 3):
        np.testing.assert_allclose(back.rig.pose(back.positions, k), rigged.rig.pose(rigged.positions, k), atol=1e-4)
    loaded = trimesh.load(glb, force="mesh", process=False)  # trimesh ignores the skin: the rest pose
    assert len(loaded.vertices) == len(rigged.positions)
    np.testing.assert_allclose(loaded.vertices, rigged.positions, atol=1e-6)


def test_unrigged_glb_has_no_skin(rigged, tmp_path):
    gltf, _ = parse_glb(write_mesh(rigged.with_(rig=None), tmp_path / "plain.glb")[0].read_bytes())
    assert "skins" not in gltf and "animations" not in gltf and len(gltf["nodes"]) == 1


def test_posed_meshes_per_key(rigged, tmp_path):
    paths = write_posed_meshes(rigged, tmp_path / "posed", keys=[0, 3])
    assert [p.name for p in paths] == ["frame_0000.ply", "frame_0003.ply"]
    ply = trimesh.load(paths[1], process=False)
    posed = rigged.rig.pose(rigged.positions, 3)
    assert np.abs(ply.vertices.mean(0) - posed.mean(0)).max() < 1e-4  # welded: compare centroids of the sets
    assert np.abs(ply.bounds - trimesh.PointCloud(posed).bounds).max() < 1e-5
    obj = write_mesh(rigged, tmp_path / "rest.obj")[0]  # OBJ gets the rest pose
    assert len(trimesh.load(obj, process=False).vertices) == len(rigged.positions)


def test_animation_plays_in_model_viewer(glb, tmp_path):
    result = play_in_model_viewer(glb, "motion", tmp_path)
    assert result["loaded"], result
    assert result["animations"] == ["motion"]
    assert not result["paused"] and result["currentTime"] > 0 and result["duration"] == pytest.approx(TIMES[-1])
    problems = [m for m in result["messages"] if m["type"] in ("error", "pageerror", "requestfailed", "timeout")]
    assert problems == [], problems
