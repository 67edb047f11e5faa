"""The mesh renderer against analytic shapes, a texture with known layout, real meshes."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
import trimesh
from PIL import Image

from recon.core.types import Cameras
from recon.synth import load_mesh, render_views, sphere_cameras, train_test_cameras
from recon.synth.cameras import distance_for_fill, look_at


@pytest.fixture(scope="module")
def avocado(shared_data):
    return load_mesh(shared_data / "meshes" / "avocado" / "avocado.gltf")


@pytest.fixture(scope="module")
def bunny(shared_data):
    return load_mesh(shared_data / "meshes" / "bunny" / "bunny.ply")


def _camera(eye, size: int, f: float, up=(0.0, 1.0, 0.0)) -> Cameras:
    c2w = look_at(np.asarray([eye], dtype=np.float64), np.zeros(3), np.asarray(up))
    return Cameras.create(c2w, f, f, size / 2, size / 2, size, size)


def _export(mesh: trimesh.Trimesh, path) -> str:
    mesh.export(path)
    return str(path)


def test_sphere_mask_area_depth_and_normals_match_analytic(tmp_path):
    R, D, S, f = 1.0, 3.5, 96, 110.0
    mesh = load_mesh(_export(trimesh.creation.icosphere(subdivisions=4, radius=R), tmp_path / "sphere.ply"))
    cam = _camera([0.0, 0.4, D], S, f)
    view = render_views(mesh, cam)[0]
    D = float(np.linalg.norm(cam.centers[0]))
    # silhouette: a circle of radius f * tan(asin(R / D)) around the principal point
    r_px = f * math.tan(math.asin(R / D))
    assert view["alpha"].sum() == pytest.approx(math.pi * r_px ** 2, rel=0.005)
    # depth along the ray through each pixel centre, by ray-sphere intersection
    jj, ii = np.meshgrid(np.arange(S) + 0.5, np.arange(S) + 0.5)
    d = np.stack([(jj - S / 2) / f, (ii - S / 2) / f, np.ones_like(jj)], -1)  # camera rays, z = 1
    C = np.array([0.0, 0.0, D])  # sphere centre in camera coordinates
    b, a = d @ C, (d * d).sum(-1)
    disc = b * b - a * (D * D - R * R)
    t = (b - np.sqrt(np.clip(disc, 0, None))) / a
    cos_inc = np.sqrt(np.clip(disc, 0, None)) / (np.sqrt(a) * R)  # cosine of the angle of incidence
    core = cos_inc > 0.5
    assert core.sum() > 2000
    # the icosphere's faces lie inside the sphere by at most its sagitta (~1e-3 R)
    np.testing.assert_allclose(view["depth"][core], t[core], atol=2.5e-3 * R)
    assert (view["depth"][disc < 0] == 0).all() and (view["depth"][cos_inc > 0.1] > 0).all()
    # world normals ~ (point - centre) / R
    X = (d * t[..., None])[core] @ cam.c2w[0, :3, :3].T + cam.c2w[0, :3, 3]
    n_true = X / np.linalg.norm(X, axis=1, keepdims=True)
    cosang = (view["normal"][core] * n_true).sum(-1)
    assert cosang.min() > math.cos(math.radians(4.0))


def test_cube_face_on_area_depth_normal(tmp_path):
    """A cube's front face seen head-on: a square of known area at a known depth, rotated in the image."""
    S, f, D = 64, 60.0, 4.0
    mesh = load_mesh(_export(trimesh.creation.box(extents=(2, 2, 2)), tmp_path / "cube.obj"))
    roll = math.radians(30)
    cam = _camera([0.0, 0.0, D], S, f, up=(math.sin(roll), math.cos(roll), 0.0))
    view = render_views(mesh, cam)[0]
    side = 2.0 * f / (D - 1.0)  # 40 px
    assert view["alpha"].sum() == pytest.approx(side * side, rel=0.005)
    hit = view["depth"] > 0
    assert abs(int(hit.sum()) - side * side) < 4 * side * 0.5  # pixel centres inside, up to the border
    np.testing.assert_allclose(view["depth"][hit], D - 1.0, rtol=1e-6)
    np.testing.assert_allclose(view["normal"][hit], np.broadcast_to([0.0, 0.0, 1.0], (int(hit.sum()), 3)),
                               atol=1e-6)
    assert (view["normal"][~hit] == 0).all()
    # anti-aliased: the tilted edges have fractional coverage, background stays white
    assert ((view["alpha"] > 0.1) & (view["alpha"] < 0.9)).sum() > 2 * side
    assert np.allclose(view["rgb"][view["alpha"] == 0], 1.0)


@pytest.mark.parametrize("fmt", ["obj", "glb", "glb_factor"])
def test_texture_orientation(tmp_path, fmt):
    """A quad whose texture has a coloured quadrant per corner renders upright and unmirrored."""
    tex = np.zeros((8, 8, 3), np.uint8)
    tex[:4, :4] = (255, 0, 0)  # top-left of the image: red
    tex[:4, 4:] = (0, 255, 0)  # top-right: green
    tex[4:, :4] = (0, 0, 255)  # bottom-left: blue
    tex[4:, 4:] = (255, 255, 0)  # bottom-right: yellow
    verts = np.array([[-1.0, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]])
    uv = np.array([[0.0, 0], [1, 0], [1, 1], [0, 1]])  # (0, 0) = bottom-left of the image
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    if fmt == "obj":
        Image.fromarray(tex).save(tmp_path / "tex.png")
        (tmp_path / "quad.mtl").write_text("newmtl m\nKd 0.5 0.5 0.5\nmap_Kd tex.png\n")
        lines = ["mtllib quad.mtl", "usemtl m"] + [f"v {x} {y} {z}" for x, y, z in verts] + \
                [f"vt {u} {v}" for u, v in uv] + [f"f {a + 1}/{a + 1} {b + 1}/{b + 1} {c + 1}/{c + 1}"
                                                  for a, b, c in faces]
        (tmp_path / "quad.obj").write_text("\n".join(lines) + "\n")
        path = tmp_path / "quad.obj"
    else:
        factor = [0.5, 1.0, 1.0, 1.0] if fmt == "glb_factor" else None  # linear, multiplies the texture
        material = trimesh.visual.material.PBRMaterial(baseColorTexture=Image.fromarray(tex), baseColorFactor=factor)
        visual = trimesh.visual.TextureVisuals(uv=uv, material=material)
        path = _export(trimesh.Trimesh(verts, faces, visual=visual, process=False), tmp_path / "quad.glb")
    mesh = load_mesh(path)
    assert mesh.appearance == "texture"
    S = 40
    view = render_views(mesh, _camera([0.0, 0.0, 3.0], S, 50.0))[0]
    q = 50.0 / 3.0 / 2  # a quarter of the quad's width in pixels
    c = S / 2
    at = lambda x, y: view["rgb"][int(c + y * q), int(c + x * q)]  # noqa: E731  (x right, y down)
    r = 0.7354 if fmt == "glb_factor" else 1.0  # sRGB of linear 0.5 (trimesh stores the factor as uint8)
    np.testing.assert_allclose(at(-1, -1), [r, 0, 0], atol=3e-3)
    np.testing.assert_allclose(at(1, -1), [0, 1, 0], atol=1e-3)
    np.testing.assert_allclose(at(-1, 1), [0, 0, 1], atol=1e-3)
    np.testing.assert_allclose(at(1, 1), [r, 1, 0], atol=3e-3)


def test_avocado_colours_match_its_texture(avocado):
    """Averaged over views all around, the rendered colour is the surface's mean texture colour."""
    mesh = avocado
    assert mesh.appearance == "texture" and mesh.texture.shape == (2048, 2048, 3)
    views = render_views(mesh, train_test_cameras(40, 0, mesh.center, mesh.radius, 32, seed=0))
    px = np.concatenate([v["rgb"][v["alpha"] >= 1] for v in views])
    assert px.std(0).min() > 0.05  # not a flat colour
    # the surface's area-weighted mean colour, from random points on it
    rng = np.random.default_rng(0)
    tri = mesh.vertices[mesh.faces]
    area = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    face = rng.choice(len(area), 20000, p=area / area.sum())
    b = rng.dirichlet([1, 1, 1], 20000)
    surface = mesh.albedo(torch.from_numpy(face), torch.from_numpy(b).float()).numpy()
    # (the pit's occlusion and the silhouettes left out bias it by ~0.035; a flipped texture is off by 0.08)
    np.testing.assert_allclose(px.mean(0), surface.mean(0), atol=0.05)
    assert px.mean(0)[1] > px.mean(0)[0] > px.mean(0)[2]  # green, then red, then little blue


def test_gltf_and_obj_exports_of_a_mesh_render_alike(shared_data, avocado):
    a = avocado
    b = load_mesh(shared_data / "meshes" / "avocado" / "avocado.obj")
    cams = train_test_cameras(2, 0, a.center, a.radius, 48, seed=3)
    for va, vb in zip(render_views(a, cams), render_views(b, cams)):
        assert np.abs(va["alpha"] - vb["alpha"]).mean() < 0.01
        both = (va["alpha"] >= 1) & (vb["alpha"] >= 1)
        assert np.abs(va["rgb"][both] - vb["rgb"][both]).mean() < 0.02


def test_procedural_bunny_has_many_features(bunny):
    import cv2

    from recon.core.imageio import to_uint8

    mesh = bunny
    assert mesh.appearance == "procedural"
    views = render_views(mesh, sphere_cameras(2, mesh.center, mesh.radius, 256, seed=0))
    orb = cv2.ORB_create(nfeatures=5000)
    for v in views:
        gray = cv2.cvtColor(to_uint8(v["rgb"]), cv2.COLOR_RGB2GRAY)
        kp = orb.detect(gray, None)
        assert len(kp) > 500, len(kp)
        inside = sum(v["alpha"][int(k.pt[1]), int(k.pt[0])] > 0 for k in kp)
        assert inside > 0.8 * len(kp)  # features on the subject, not on the background
    # the pattern is a function of the seed
    other = dataclasses.replace(mesh, procedural=dataclasses.replace(mesh.procedural, seed=1))
    cam = sphere_cameras(1, mesh.center, mesh.radius, 64, seed=0)
    a, b = render_views(mesh, cam)[0], render_views(other, cam)[0]
    np.testing.assert_array_equal(a["alpha"], b["alpha"])
    assert np.abs(a["rgb"] - b["rgb"])[a["alpha"] > 0].mean() > 0.1
    np.testing.assert_array_equal(a["rgb"], render_views(mesh, cam)[0]["rgb"])


def test_lambert_shading_darkens_but_keeps_coverage(avocado):
    mesh = avocado
    cam = sphere_cameras(1, mesh.center, mesh.radius, 48, seed=0)
    unlit, lit = render_views(mesh, cam)[0], render_views(mesh, cam, shading="lambert")[0]
    np.testing.assert_array_equal(unlit["alpha"], lit["alpha"])
    full = unlit["alpha"] >= 1
    assert (lit["rgb"][full] <= unlit["rgb"][full] + 1e-6).all() and lit["rgb"][full].mean() < unlit["rgb"][full].mean()


def test_cameras_frame_the_mesh_and_test_views_differ():
    center, radius, fov = np.array([1.0, -2.0, 0.5]), 0.3, 40.0
    cams = train_test_cameras(20, 5, center, radius, 128, seed=7)
    assert len(cams) == 25
    d = np.linalg.norm(cams.centers - center, axis=1)
    np.testing.assert_allclose(d, distance_for_fill(radius, fov))
    # every camera looks at the centre, with a rotation for c2w
    fwd = cams.c2w[:, :3, 2]
    np.testing.assert_allclose(fwd, (center - cams.centers) / d[:, None], atol=1e-12)
    R = cams.c2w[:, :3, :3]
    np.testing.assert_allclose(R @ R.transpose(0, 2, 1), np.broadcast_to(np.eye(3), R.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(R), 1.0)
    # the bounding sphere spans ~70% of the image width
    uv, _ = cams.project(center[None])
    np.testing.assert_allclose(uv[:, 0], 64.0, atol=1e-9)
    half = math.atan(0.7 * math.tan(math.radians(fov / 2)))
    assert math.isclose(cams.fx[0] * math.tan(half), 0.7 * 64, rel_tol=1e-9)
    # test views are none of the training views; directions are spread over the sphere
    dirs = (cams.centers - center) / d[:, None]
    cos = dirs[20:] @ dirs[:20].T
    assert cos.max() < math.cos(math.radians(1.0))
    assert np.abs(dirs[:20].mean(0)).max() < 0.2
    # seeded: the same seed gives the same cameras, another seed others
    np.testing.assert_array_equal(train_test_cameras(20, 5, center, radius, 128, seed=7).c2w, cams.c2w)
    assert np.abs(train_test_cameras(20, 5, center, radius, 128, seed=8).c2w - cams.c2w).max() > 1e-3
