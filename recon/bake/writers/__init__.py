"""Asset file formats, one module per format, registered by extension (like trimesh's exchange/).

A writer encodes a ``TexturedMesh`` into files: ``WRITERS[fmt](mesh, stem)`` returns
``{file name: bytes}`` (the main file ``<stem>.<fmt>`` first, then sidecars such as an
OBJ's .mtl and textures), which ``write_mesh`` writes atomically beside each other.
A reader does the reverse for ``read_mesh``. A rigged mesh's glb carries its skin and animation;
OBJ and PLY get the rest pose, and ``write_posed_meshes`` writes one file per animation key.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

from ...core.errors import InputError
from ...core.fsutil import atomic_write_bytes
from ..textured_mesh import TexturedMesh
from . import glb, obj, ply

Encoder = Callable[[TexturedMesh, str], dict[str, bytes]]

WRITERS: dict[str, Encoder] = {"glb": glb.encode_glb, "obj": obj.encode_obj, "ply": ply.encode_ply}
READERS: dict[str, Callable[[Path], TexturedMesh]] = {"glb": glb.read_glb}


def format_of(path: str | Path, fmt: str | None = None) -> str:
    """The format named by ``fmt`` or by the file's extension; InputError if unknown."""
    fmt = (fmt or Path(path).suffix.lstrip(".")).lower()
    if fmt not in WRITERS:
        raise InputError(path, f"unknown mesh format '{fmt}' (known: {', '.join(sorted(WRITERS))})")
    return fmt


def write_mesh(mesh: TexturedMesh, path: str | Path, fmt: str | None = None) -> list[Path]:
    """Write ``mesh`` to ``path`` (and its sidecar files beside it); returns the paths written."""
    path = Path(path)
    fmt = format_of(path, fmt)
    files = WRITERS[fmt](mesh, path.stem)
    main = f"{path.stem}.{fmt}"
    out = []
    for name, data in files.items():
        target = path if name == main else path.with_name(name)
        atomic_write_bytes(target, data)
        out.append(target)
    return out


def write_posed_meshes(mesh: TexturedMesh, folder: str | Path, keys: Iterable[int] | None = None,
                       fmt: str = "ply") -> list[Path]:
    """Write the rigged ``mesh`` posed at each animation key in ``keys`` (default: all) to
    ``folder/frame_<key:04d>.<fmt>``; returns the main files written."""
    if mesh.rig is None:
        raise ValueError("the mesh has no rig: nothing to pose")
    folder = Path(folder)
    keys = range(mesh.rig.num_keys) if keys is None else keys
    return [write_mesh(mesh.posed(k), folder / f"frame_{k:04d}.{fmt}", fmt)[0] for k in keys]


def read_mesh(path: str | Path) -> TexturedMesh:
    """Read an asset mesh written by recon (formats with a reader: see ``READERS``)."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in READERS:
        raise InputError(path, f"cannot read '{fmt}' asset meshes (readable: {', '.join(sorted(READERS))})")
    if not path.is_file():
        raise InputError(path, "file not found")
    return READERS[fmt](path)
