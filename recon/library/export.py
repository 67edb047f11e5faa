"""Write an asset out of the blob store: one format (glb, obj with its mtl and textures, ply) or
the whole folder. Files are written atomically (temp file beside, then rename).

A format the asset was not baked to is converted with trimesh from the glb (or the
first mesh there is), so ``--format ply`` works on an asset that only has a glb.
"""
from __future__ import annotations

import re
import tempfile
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from ..core.errors import InputError
from ..core.fsutil import atomic_write_bytes
from .blob_store import BlobStore

if TYPE_CHECKING:
    from .library import Asset

FORMATS = ("glb", "obj", "ply", "folder")
_MTLLIB = re.compile(rb"^mtllib[ \t]+.*$", re.MULTILINE)


def _safe_rel(path: str) -> PurePosixPath:
    p = PurePosixPath(path)
    if p.is_absolute() or ".." in p.parts:
        raise InputError(None, f"refusing to export a file outside the destination: {path}")
    return p


def export_asset(asset: "Asset", store: BlobStore, dest: str | Path, format: str | None = None,
                 texture_size: int | None = None) -> Path:
    dest = Path(dest).expanduser()
    fmt = (format or dest.suffix.lstrip(".") or "folder").lower()
    if fmt == "gltf":
        fmt = "glb"
    if fmt not in FORMATS:
        raise InputError(dest, f"unknown export format '{fmt}' (one of {', '.join(FORMATS)})")
    if texture_size is not None:
        return _resized(asset, store, dest, fmt, texture_size)
    if fmt == "folder":
        for f in asset.files:
            store.copy_to(f.hash, dest / _safe_rel(f.path))
        return dest
    if dest.is_dir():
        dest = dest / f"{asset.name}.{fmt}"
    native = asset.file(fmt)
    if native is None:
        return _convert(asset, store, dest, fmt)
    if fmt != "obj":
        store.copy_to(native.hash, dest)
        return dest
    # OBJ: the mtl is renamed after dest and the obj's mtllib line follows; textures keep the
    # relative paths the mtl names them by.
    obj = store.read_bytes(native.hash)
    mtl = asset.file("mtl")
    if mtl is not None:
        obj = _MTLLIB.sub(f"mtllib {dest.stem}.mtl".encode(), obj, count=1)
        store.copy_to(mtl.hash, dest.with_suffix(".mtl"))
        base = PurePosixPath(mtl.path).parent
        for tex in asset.files_with("texture"):
            rel = PurePosixPath(tex.path)
            rel = rel.relative_to(base) if base != PurePosixPath(".") and rel.is_relative_to(base) else rel
            store.copy_to(tex.hash, dest.parent / _safe_rel(str(rel)))
    atomic_write_bytes(dest, obj)
    return dest


def _resized(asset: "Asset", store: BlobStore, dest: Path, fmt: str, texture_size: int) -> Path:
    """The asset's mesh with textures of ``texture_size`` (its procedural materials regenerated), as ``fmt``."""
    from ..bake import export_asset as export_folder

    if fmt == "folder":
        raise InputError(dest, "--texture-size applies to a mesh export (glb, obj, ply), not a folder")
    if dest.is_dir():
        dest = dest / f"{asset.name}.{fmt}"
    with _folder_copy(asset, store) as tmp:
        export_folder(tmp, fmt, dest, texture_size)
    return dest


@contextmanager
def _folder_copy(asset: "Asset", store: BlobStore):
    """A temporary copy of the asset's whole folder (an obj finds its mtl and textures, a glb its materials.json)."""
    with tempfile.TemporaryDirectory(prefix="recon-export-") as tmp:
        for f in asset.files:
            store.copy_to(f.hash, Path(tmp) / _safe_rel(f.path))
        yield Path(tmp)


def _convert(asset: "Asset", store: BlobStore, dest: Path, fmt: str) -> Path:
    import trimesh

    src = next((asset.file(r) for r in ("glb", "obj", "ply") if asset.file(r) is not None), None)
    if src is None:
        raise InputError(None, f"{asset.name}@{asset.version} has no mesh to export")
    with _folder_copy(asset, store) as tmp:
        mesh = trimesh.load(tmp / src.path, force="mesh")
        if fmt == "obj":
            from trimesh.exchange.obj import export_obj

            text, extra = export_obj(mesh, include_texture=True, return_texture=True, mtl_name=f"{dest.stem}.mtl")
            for fname, blob in extra.items():
                atomic_write_bytes(dest.parent / _safe_rel(fname), blob)
            data = text.encode()
        else:
            data = mesh.export(file_type=fmt)
        atomic_write_bytes(dest, data)
    return dest
