"""glTF 2.0 binary (.glb): one mesh, one material, textures embedded.

Written by hand (the container is small): a JSON chunk and a BIN chunk holding the
vertex attributes (POSITION, NORMAL, TEXCOORD_0, TANGENT), uint32 indices and the PNG
textures. As the spec requires, ``baseColorTexture`` is sRGB-encoded and the normal and
metallic-roughness textures are linear; the ORM texture (R occlusion, G roughness,
B metallic) serves as both ``occlusionTexture`` and ``metallicRoughnessTexture``.

A ``radiance`` mesh (its base colour is captured light, not albedo) is written with
``KHR_materials_unlit``, so viewers show the colour as it is instead of lighting it a
second time; metallic 0 / roughness 0.9 is the extension's recommended fallback for
viewers without it.

A mesh with a ``rig`` also gets ``JOINTS_0`` / ``WEIGHTS_0``, one node per joint (nodes 1..J, a
hierarchy with the rest-pose local translation and rotation), a skin (inverse bind matrices) on the
mesh node, and an animation "motion" with a LINEAR translation and rotation sampler per joint.
The mesh node and the root joint are both scene roots (a skinned mesh node takes no transform).

A mesh with ``morph_positions`` gets one morph target per shape: a POSITION accessor of offsets stored
sparse (only the vertices a shape moves), default weights 0, and the names in ``extras.targetNames``
(the convention three.js / model-viewer and Blender read); with ``morph_weights`` an animation
"expressions" drives the weights (LINEAR).
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from ..rig import Rig, compose
from ..textured_mesh import TexturedMesh
from ._png import decode_png, encode_png

GLB_MAGIC = 0x46546C67  # "glTF"
CHUNK_JSON = 0x4E4F534A
CHUNK_BIN = 0x004E4942
FLOAT, UINT32, UINT16, UINT8 = 5126, 5125, 5123, 5121
ARRAY_BUFFER, ELEMENT_ARRAY_BUFFER = 34962, 34963
LINEAR, LINEAR_MIPMAP_LINEAR, CLAMP_TO_EDGE = 9729, 9987, 33071
_TYPES = {1: "SCALAR", 2: "VEC2", 3: "VEC3", 4: "VEC4", 16: "MAT4"}
_NP = {FLOAT: np.float32, UINT32: np.uint32, UINT16: np.uint16, UINT8: np.uint8}
ANIMATION = "motion"
EXPRESSIONS = "expressions"


def _pad4(b: bytes, fill: bytes = b"\0") -> bytes:
    return b + fill * (-len(b) % 4)


def encode_glb(mesh: TexturedMesh, stem: str) -> dict[str, bytes]:
    """``{"<stem>.glb": bytes}``."""
    from ... import __version__

    gltf: dict = {
        "asset": {"version": "2.0", "generator": f"recon {__version__}"},
        "scene": 0, "scenes": [{"nodes": [0]}], "nodes": [{"mesh": 0, "name": stem}],
        "bufferViews": [], "accessors": [], "images": [], "textures": [],
        "samplers": [{"magFilter": LINEAR, "minFilter": LINEAR_MIPMAP_LINEAR,
                      "wrapS": CLAMP_TO_EDGE, "wrapT": CLAMP_TO_EDGE}],
    }
    blob = bytearray()

    def view(data: bytes, target: int | None) -> int:
        bv = {"buffer": 0, "byteOffset": len(blob), "byteLength": len(data)}
        if target is not None:
            bv["target"] = target
        gltf["bufferViews"].append(bv)
        blob.extend(_pad4(data))
        return len(gltf["bufferViews"]) - 1

    def accessor(arr: np.ndarray, ctype: int, target: int | None, minmax: bool = False) -> int:
        arr = np.ascontiguousarray(arr, dtype=_NP[ctype])
        acc = {"bufferView": view(arr.tobytes(), target), "componentType": ctype, "count": int(arr.shape[0]),
               "type": _TYPES[1 if arr.ndim == 1 else arr.shape[1]]}
        if minmax:
            acc["min"] = [float(v) for v in np.atleast_1d(arr.min(0))]
            acc["max"] = [float(v) for v in np.atleast_1d(arr.max(0))]
        gltf["accessors"].append(acc)
        return len(gltf["accessors"]) - 1

    def texture(img: np.ndarray, name: str) -> int:
        gltf["images"].append({"bufferView": view(encode_png(img), None), "mimeType": "image/png", "name": name})
        gltf["textures"].append({"sampler": 0, "source": len(gltf["images"]) - 1})
        return len(gltf["textures"]) - 1

    attrs = {
        "POSITION": accessor(mesh.positions, FLOAT, ARRAY_BUFFER, minmax=True),
        "NORMAL": accessor(mesh.normals, FLOAT, ARRAY_BUFFER),
        "TEXCOORD_0": accessor(mesh.uvs, FLOAT, ARRAY_BUFFER),
    }
    if mesh.tangents is not None:
        attrs["TANGENT"] = accessor(mesh.tangents, FLOAT, ARRAY_BUFFER)
    if mesh.rig is not None:
        _add_rig(gltf, mesh.rig, attrs, accessor)
    indices = accessor(mesh.faces.reshape(-1), UINT32, ELEMENT_ARRAY_BUFFER)
    targets = None
    if mesh.morph_positions is not None:
        targets = [{"POSITION": _sparse_accessor(gltf, d, view)} for d in mesh.morph_positions]

    pbr: dict = {"baseColorTexture": {"index": texture(mesh.base_color, f"{stem}_basecolor")}}
    material: dict = {"name": f"{stem}_material", "pbrMetallicRoughness": pbr, "doubleSided": False}
    if mesh.unlit:
        pbr.update(metallicFactor=0.0, roughnessFactor=0.9)
        material["extensions"] = {"KHR_materials_unlit": {}}
        gltf["extensionsUsed"] = ["KHR_materials_unlit"]
    if mesh.normal_map is not None:
        material["normalTexture"] = {"index": texture(mesh.normal_map, f"{stem}_normal")}
    if mesh.orm is not None and not mesh.unlit:
        orm = texture(mesh.orm, f"{stem}_orm")
        pbr["metallicRoughnessTexture"] = {"index": orm}
        pbr["metallicFactor"] = 1.0
        pbr["roughnessFactor"] = 1.0
        material["occlusionTexture"] = {"index": orm}
    gltf["materials"] = [material]
    prim = {"attributes": attrs, "indices": indices, "material": 0, "mode": 4}
    gltf["meshes"] = [{"name": stem, "primitives": [prim]}]
    if targets:
        prim["targets"] = targets
        gltf["meshes"][0].update(weights=[0.0] * len(targets), extras={"targetNames": list(mesh.morph_names)})
    if mesh.morph_weights is not None:
        sampler = {"input": accessor(mesh.morph_times, FLOAT, None, minmax=True),
                   "output": accessor(mesh.morph_weights.reshape(-1), FLOAT, None), "interpolation": "LINEAR"}
        gltf.setdefault("animations", []).append({"name": EXPRESSIONS, "samplers": [sampler], "channels": [
            {"sampler": 0, "target": {"node": 0, "path": "weights"}}]})
    gltf["buffers"] = [{"byteLength": len(blob)}]

    js = _pad4(json.dumps(gltf, separators=(",", ":")).encode(), b" ")
    body = (struct.pack("<II", len(js), CHUNK_JSON) + js + struct.pack("<II", len(blob), CHUNK_BIN) + bytes(blob))
    return {f"{stem}.glb": struct.pack("<III", GLB_MAGIC, 2, 12 + len(body)) + body}


def _sparse_accessor(gltf: dict, offsets: np.ndarray, view) -> int:
    """A VEC3 float accessor of (V, 3) ``offsets``, zero except for the rows stored sparse (``view(bytes,
    target)`` stores a buffer view and returns its index). min/max cover the zeros too, as POSITION needs."""
    d = np.asarray(offsets, np.float32)
    rows = np.flatnonzero(np.abs(d).max(1) > 0).astype(np.uint32)
    acc = {"componentType": FLOAT, "count": len(d), "type": "VEC3",
           "min": [float(x) for x in np.minimum(d.min(0), 0)], "max": [float(x) for x in np.maximum(d.max(0), 0)]}
    if len(rows):
        acc["sparse"] = {"count": int(len(rows)),
                         "indices": {"bufferView": view(rows.tobytes(), None), "componentType": UINT32},
                         "values": {"bufferView": view(np.ascontiguousarray(d[rows]).tobytes(), None)}}
    gltf["accessors"].append(acc)
    return len(gltf["accessors"]) - 1


def _add_rig(gltf: dict, rig: Rig, attrs: dict, accessor) -> None:
    """Add the skin attributes to ``attrs``, and joint nodes, the skin and the animation to ``gltf``
    (``accessor(array, componentType, target, minmax)`` stores an array and returns its index)."""
    w = rig.weights.astype(np.float64)
    w = w / w.sum(1, keepdims=True)
    attrs["JOINTS_0"] = accessor(np.where(w > 0, rig.joints, 0), UINT16 if rig.num_joints > 255 else UINT8,
                                 ARRAY_BUFFER)
    attrs["WEIGHTS_0"] = accessor(w, FLOAT, ARRAY_BUFFER)
    first = len(gltf["nodes"])  # joint j is node first + j
    gltf["nodes"][0]["skin"] = 0
    t, q = rig.bind_local()
    for j, name in enumerate(rig.joint_names):
        node = {"name": name, "translation": [float(x) for x in t[j]], "rotation": [float(x) for x in q[j]]}
        children = [first + int(c) for c in np.flatnonzero(rig.parents == j)]
        if children:
            node["children"] = children
        gltf["nodes"].append(node)
    gltf["scenes"][0]["nodes"].append(first)
    ibm = np.linalg.inv(rig.bind_matrices).transpose(0, 2, 1).reshape(-1, 16)  # column-major
    gltf["skins"] = [{"joints": list(range(first, first + rig.num_joints)), "skeleton": first,
                      "inverseBindMatrices": accessor(ibm, FLOAT, None)}]
    times = accessor(rig.times, FLOAT, None, minmax=True)
    t, q = rig.local_transforms()
    samplers, channels = [], []
    for j in range(rig.num_joints):
        for path, values in (("translation", t[:, j]), ("rotation", q[:, j])):
            channels.append({"sampler": len(samplers), "target": {"node": first + j, "path": path}})
            samplers.append({"input": times, "output": accessor(values, FLOAT, None), "interpolation": "LINEAR"})
    gltf["animations"] = [{"name": ANIMATION, "samplers": samplers, "channels": channels}]
    if rig.frame_indices is not None:
        gltf["animations"][0]["extras"] = {"frame_indices": rig.frame_indices.tolist()}


def parse_glb(data: bytes) -> tuple[dict, bytes]:
    """(JSON document, BIN chunk) of a .glb file."""
    magic, version, length = struct.unpack_from("<III", data, 0)
    if magic != GLB_MAGIC or version != 2:
        raise ValueError("not a glTF 2.0 binary file")
    off, gltf, binary = 12, None, b""
    while off < min(length, len(data)):
        n, kind = struct.unpack_from("<II", data, off)
        chunk = data[off + 8: off + 8 + n]
        if kind == CHUNK_JSON:
            gltf = json.loads(chunk)
        elif kind == CHUNK_BIN:
            binary = chunk
        off += 8 + n
    if gltf is None:
        raise ValueError("glb has no JSON chunk")
    return gltf, binary


def _read_rig(gltf: dict, attrs: dict, acc) -> Rig | None:
    """The rig of a glb as ``_add_rig`` writes it (None without a skin); ``acc(i)`` reads accessor i."""
    if not gltf.get("skins"):
        return None
    skin, nodes = gltf["skins"][0], gltf["nodes"]
    ids = skin["joints"]
    slot = {n: j for j, n in enumerate(ids)}
    parents = np.full(len(ids), -1)
    for j, n in enumerate(ids):
        for c in nodes[n].get("children", []):
            parents[slot[c]] = j
    bind = np.linalg.inv(acc(skin["inverseBindMatrices"]).reshape(-1, 4, 4).astype(np.float64).transpose(0, 2, 1))
    anim = gltf["animations"][0]
    times = acc(anim["samplers"][0]["input"]).astype(np.float64)
    trs = {"translation": np.array([nodes[n].get("translation", [0, 0, 0]) for n in ids], np.float64),
           "rotation": np.array([nodes[n].get("rotation", [0, 0, 0, 1]) for n in ids], np.float64)}
    trs = {k: np.repeat(v[None], len(times), 0) for k, v in trs.items()}
    for ch in anim["channels"]:
        if ch["target"]["path"] in trs and ch["target"]["node"] in slot:
            trs[ch["target"]["path"]][:, slot[ch["target"]["node"]]] = acc(anim["samplers"][ch["sampler"]]["output"])
    return Rig(tuple(nodes[n].get("name", f"joint{j}") for j, n in enumerate(ids)), parents, bind,
               acc(attrs["JOINTS_0"]).astype(np.int64), acc(attrs["WEIGHTS_0"]).copy(), times,
               compose(parents, trs["translation"], trs["rotation"]), anim.get("extras", {}).get("frame_indices"))


def read_glb(path: Path) -> TexturedMesh:
    """Read a single-primitive textured .glb (as ``encode_glb`` writes, rig included) into a ``TexturedMesh``."""
    from ...core.errors import InputError

    try:
        gltf, binary = parse_glb(Path(path).read_bytes())
        views = gltf["bufferViews"]

        def view_bytes(i: int) -> bytes:
            bv = views[i]
            o = bv.get("byteOffset", 0)
            return binary[o: o + bv["byteLength"]]

        def acc(i: int) -> np.ndarray:
            a = gltf["accessors"][i]
            n = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}[a["type"]]
            dt = _NP[a["componentType"]]
            if "bufferView" in a:
                arr = np.frombuffer(view_bytes(a["bufferView"]), dtype=dt, offset=a.get("byteOffset", 0),
                                    count=a["count"] * n)
            else:
                arr = np.zeros(a["count"] * n, dt)
            if "sparse" in a:
                sp = a["sparse"]
                rows = np.frombuffer(view_bytes(sp["indices"]["bufferView"]), _NP[sp["indices"]["componentType"]],
                                     sp["count"], sp["indices"].get("byteOffset", 0))
                arr = arr.reshape(a["count"], n).copy()
                arr[rows] = np.frombuffer(view_bytes(sp["values"]["bufferView"]), dt, sp["count"] * n,
                                          sp["values"].get("byteOffset", 0)).reshape(-1, n)
            return arr.reshape(a["count"], n) if n > 1 else arr.reshape(-1)

        def tex(ref: dict | None) -> np.ndarray | None:
            if ref is None:
                return None
            img = gltf["images"][gltf["textures"][ref["index"]]["source"]]
            return decode_png(view_bytes(img["bufferView"]))

        prim = gltf["meshes"][0]["primitives"][0]
        at = prim["attributes"]
        targets = prim.get("targets", [])
        morphs = np.stack([acc(t["POSITION"]) for t in targets]).astype(np.float32) if targets else None
        anim = [a for a in gltf.get("animations", []) if a.get("name") == EXPRESSIONS]
        times = weights = None
        if anim and morphs is not None:
            times = acc(anim[0]["samplers"][0]["input"]).astype(np.float64)
            weights = acc(anim[0]["samplers"][0]["output"]).reshape(len(times), len(morphs)).copy()
        mat = gltf["materials"][prim["material"]] if "material" in prim else {}
        pbr = mat.get("pbrMetallicRoughness", {})
        return TexturedMesh(
            positions=acc(at["POSITION"]).copy(), normals=acc(at["NORMAL"]).copy(),
            uvs=acc(at["TEXCOORD_0"]).copy(), faces=acc(prim["indices"]).astype(np.int64).reshape(-1, 3),
            base_color=tex(pbr.get("baseColorTexture")), normal_map=tex(mat.get("normalTexture")),
            orm=tex(pbr.get("metallicRoughnessTexture")),
            tangents=acc(at["TANGENT"]).copy() if "TANGENT" in at else None,
            material="radiance" if "KHR_materials_unlit" in mat.get("extensions", {}) else "pbr",
            rig=_read_rig(gltf, at, acc), morph_positions=morphs, morph_times=times, morph_weights=weights,
            morph_names=tuple(gltf["meshes"][0].get("extras", {}).get("targetNames", ()))[:len(targets)])
    except (ValueError, KeyError, IndexError, struct.error, OSError) as exc:
        raise InputError(path, f"cannot read glb ({exc.__class__.__name__}: {exc})") from None
