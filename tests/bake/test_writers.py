"""glb / obj / ply writers: the Khronos validator accepts the glb, trimesh reads everything back."""
from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import trimesh

from recon.bake.writers import WRITERS, read_mesh, write_mesh
from recon.bake.writers.glb import parse_glb
from recon.core.errors import InputError

from .conftest import TEXTURE, validate_gltf


@pytest.fixture(scope="module")
def written(baked, tmp_path_factory):
    out = tmp_path_factory.mktemp("writers")
    files = {fmt: write_mesh(baked.asset, out / f"torus.{fmt}") for fmt in WRITERS}
    return out, files


def test_glb_passes_the_khronos_validator(written):
    out, _ = written
    report = validate_gltf(out / "torus.glb")
    assert report["numErrors"] == 0, report["messages"]
    assert report["numWarnings"] == 0, report["messages"]


def test_glb_material_and_colour_spaces(written):
    gltf, _ = parse_glb((written[0] / "torus.glb").read_bytes())
    mat = gltf["materials"][0]
    pbr = mat["pbrMetallicRoughness"]
    assert {"baseColorTexture", "metallicRoughnessTexture"} <= pbr.keys()
    assert "normalTexture" in mat and "occlusionTexture" in mat
    attrs = gltf["meshes"][0]["primitives"][0]["attributes"]
    assert {"POSITION", "NORMAL", "TEXCOORD_0", "TANGENT"} <= attrs.keys()
    assert all(img["mimeType"] == "image/png" for img in gltf["images"])


def test_trimesh_loads_the_glb_with_its_texture(written, baked):
    scene = trimesh.load(written[0] / "torus.glb")
    (mesh,) = scene.geometry.values()
    assert len(mesh.faces) == len(baked.asset.faces)
    mat = mesh.visual.material
    assert mat.baseColorTexture.size == (TEXTURE, TEXTURE)
    assert mat.normalTexture is not None and mat.metallicRoughnessTexture is not None
    assert np.array_equal(np.asarray(mat.baseColorTexture.convert("RGB")), baked.asset.base_color)
    # trimesh flips glTF uvs to OpenGL style
    assert np.allclose(mesh.visual.uv[:, 1], 1 - baked.asset.uvs[:, 1], atol=1e-6)


def test_glb_round_trip(written, baked):
    back = read_mesh(written[0] / "torus.glb")
    a = baked.asset
    for name in ("positions", "normals", "uvs", "tangents", "faces", "base_color", "normal_map", "orm"):
        assert np.array_equal(getattr(back, name), getattr(a, name)), name


def test_obj_round_trip(written, baked):
    out, files = written
    names = {p.name for p in files["obj"]}
    assert names == {"torus.obj", "torus.mtl", "torus_basecolor.png", "torus_normal.png", "torus_orm.png"}
    mesh = trimesh.load(out / "torus.obj", process=False)
    a = baked.asset
    assert len(mesh.faces) == len(a.faces)
    assert np.allclose(mesh.vertices[mesh.faces], a.positions[a.faces], atol=1e-5)
    assert np.allclose(mesh.visual.uv[mesh.faces], np.stack([a.uvs[..., 0], 1 - a.uvs[..., 1]], -1)[a.faces],
                       atol=1e-6)
    assert np.array_equal(np.asarray(mesh.visual.material.image.convert("RGB")), a.base_color)
    mtl = (out / "torus.mtl").read_text()
    assert "map_Kd torus_basecolor.png" in mtl and "norm torus_normal.png" in mtl


def test_ply_round_trip_is_welded_and_coloured(written, baked):
    mesh = trimesh.load(written[0] / "torus.ply", process=False)
    assert len(mesh.faces) == len(baked.mesh.faces)
    assert len(mesh.vertices) == len(baked.mesh.vertices)  # uv seams welded back
    assert mesh.is_watertight
    assert np.allclose(mesh.area, baked.mesh.area, rtol=1e-5)
    # each vertex's colour is the baked vertex colour of a vertex at that position
    a = baked.asset
    lookup = {tuple(p): c for p, c in zip(a.positions.tolist(), a.vertex_colors.tolist())}
    cols = np.array([lookup[tuple(p)] for p in mesh.vertices.astype(np.float32).tolist()])
    assert np.array_equal(mesh.visual.vertex_colors[:, :3], cols)


def test_unknown_formats_and_bad_files_are_input_errors(tmp_path, baked):
    with pytest.raises(InputError, match="unknown mesh format 'stl'"):
        write_mesh(baked.asset, tmp_path / "x.stl")
    bad = tmp_path / "bad.glb"
    bad.write_bytes(struct.pack("<III", 0x46546C67, 2, 12) + json.dumps({}).encode())
    with pytest.raises(InputError, match="cannot read glb"):
        read_mesh(bad)


def test_written_files_are_ordinary_files(written):
    """Atomic writes go through private temp files; the results get the umask's usual modes."""
    import os

    mask = os.umask(0o022)
    os.umask(mask)
    for paths in written[1].values():
        for p in paths:
            assert p.stat().st_mode & 0o777 == 0o666 & ~mask, p
