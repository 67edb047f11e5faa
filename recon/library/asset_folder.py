"""Read an asset folder (what ``recon.bake`` writes to OUT/asset/) into what the catalogue records.

The folder holds ``<name>.glb``, ``<name>.obj`` + ``.mtl`` + texture images, ``<name>.ply``,
``metrics.json``, ``thumb.png``, ``turntable.mp4``, ``report.html`` and ``provenance.json``.
When ``provenance.json`` is missing, what can be derived comes from the job folder around
the asset (OUT/capture/capture.json, OUT/fit/config.yaml) and the rest is "unknown".
provenance.json's ``kind`` is the model really fitted and ``requested_subject`` what the user
asked for; metrics.json's ``material`` is "radiance" (colour from the field) or "pbr".
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..core.errors import InputError
from .catalog.models import ASSET_KINDS, MATERIALS

UNKNOWN = "unknown"
MESH_ROLES = ("glb", "obj", "ply")
_ROLE_BY_SUFFIX = {".glb": "glb", ".gltf": "glb", ".obj": "obj", ".mtl": "mtl", ".ply": "ply",
                   ".png": "texture", ".jpg": "texture", ".jpeg": "texture", ".exr": "texture",
                   ".ktx2": "texture", ".webp": "texture", ".mp4": "turntable", ".webm": "turntable",
                   ".html": "report"}
_ROLE_BY_NAME = {"thumb.png": "thumb", "metrics.json": "metrics", "provenance.json": "provenance",
                 "report.html": "report", "turntable.mp4": "turntable", "landmarks.json": "landmarks",
                 "materials.json": "materials"}


def file_role(relpath: str) -> str:
    """The role of a file of an asset folder from its name: glb, obj, mtl, texture, ply, thumb,
    turntable, report, metrics, provenance, landmarks (a head's landmark sets), materials (procedural
    material parameters), or other."""
    name = relpath.rsplit("/", 1)[-1].lower()
    if name in _ROLE_BY_NAME:
        return _ROLE_BY_NAME[name]
    return _ROLE_BY_SUFFIX.get(os.path.splitext(name)[1], "other")


@dataclass(frozen=True)
class FolderFile:
    path: str  # relative to the asset folder, "/"-separated
    role: str
    local: Path


@dataclass(frozen=True)
class AssetFolder:
    """An asset folder as read from disk, before anything is stored."""

    root: Path
    name: str
    kind: str
    files: tuple[FolderFile, ...]
    metrics: dict[str, Any]
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def source_hash(self) -> str | None:
        return _known(self.provenance.get("source_hash"))

    @property
    def config_hash(self) -> str | None:
        return _known(self.provenance.get("config_hash"))

    @property
    def requested_subject(self) -> str | None:
        return _known(self.provenance.get("requested_subject"))

    @property
    def material(self) -> str:
        return self.metrics.get("material") or "radiance"


def _known(v: Any) -> Any:
    return None if v in (None, "", UNKNOWN) else v


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(path, f"unreadable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(path, "expected a JSON object")
    return data


def config_dict_hash(cfg: dict[str, Any]) -> str:
    """The hash ``recon.core.config.config_hash`` gives the resolved config this dict dumps."""
    return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:16]


def derive_provenance(asset_dir: Path) -> dict[str, Any]:
    """Provenance from the job folder around ``asset_dir`` (capture.json, fit/config.yaml)."""
    job = asset_dir.parent
    prov: dict[str, Any] = {"derived_from": []}
    cap_json = job / "capture" / "capture.json"
    if cap_json.is_file():
        cap = _read_json(cap_json)
        src = cap.get("source") or {}
        prov.update(source_path=src.get("path"), source_kind=src.get("kind"), source_hash=src.get("hash"),
                    recon_version=cap.get("recon_version"))
        prov["derived_from"].append(str(cap_json))
    cfg_yaml = job / "fit" / "config.yaml"
    if cfg_yaml.is_file():
        try:
            cfg = yaml.safe_load(cfg_yaml.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise InputError(cfg_yaml, f"unreadable config ({exc})") from None
        if isinstance(cfg, dict):
            prov["config_hash"] = config_dict_hash(cfg)
            prov["derived_from"].append(str(cfg_yaml))
    return {k: v for k, v in prov.items() if v is not None}


def read_asset_folder(asset_dir: str | Path, name: str | None = None, kind: str | None = None,
                      **provenance_overrides: Any) -> AssetFolder:
    """Scan ``asset_dir``; ``name``/``kind`` and keyword provenance fields (licence, operator,
    notes ...) override what the folder says."""
    root = Path(asset_dir).expanduser().resolve()
    if not root.is_dir():
        raise InputError(asset_dir, "asset folder not found")
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for fn in sorted(filenames):
            if fn.startswith("."):
                continue  # temp files of interrupted writes, editor files
            local = Path(dirpath) / fn
            rel = local.relative_to(root).as_posix()
            files.append(FolderFile(rel, file_role(rel), local))
    if not any(f.role in MESH_ROLES for f in files):
        raise InputError(root, "no mesh in asset folder (expected <name>.glb, .obj or .ply)")

    metrics = _read_json(root / "metrics.json") if (root / "metrics.json").is_file() else {}
    prov_file = root / "provenance.json"
    prov = _read_json(prov_file) if prov_file.is_file() else derive_provenance(root)
    prov.update({k: v for k, v in provenance_overrides.items() if v is not None})

    if name is None:
        name = prov.get("name") or next(
            (Path(f.path).stem for r in MESH_ROLES for f in files if f.role == r and "/" not in f.path), root.name)
    where = prov_file if prov_file.is_file() else root
    fitted = prov.get("kind")
    for what, value, choices in (("asset kind", kind, ASSET_KINDS), ("asset kind", fitted, ASSET_KINDS),
                                 ("requested subject", _known(prov.get("requested_subject")),
                                  ASSET_KINDS + ("auto",))):  # auto: the pipeline picked the model
        _check_choice(where, what, value, choices)
    if kind and fitted and kind != fitted:
        raise InputError(where, f"kind '{kind}' contradicts the kind this asset was fitted as ('{fitted}'): "
                                f"an asset is filed as the model really fitted")
    kind = kind or fitted or "object"
    _check_choice(root / "metrics.json", "material", metrics.get("material"), MATERIALS)
    prov["name"], prov["kind"] = name, kind
    for key in ("source_path", "source_hash", "config_hash", "recon_version", "licence", "operator"):
        prov.setdefault(key, UNKNOWN)
    prov.setdefault("notes", None)
    return AssetFolder(root, name, kind, tuple(files), metrics, prov)


def _check_choice(where: Path, what: str, value: Any, choices: tuple[str, ...]) -> None:
    if value and value not in choices:
        raise InputError(where, f"unknown {what} '{value}' (one of {', '.join(choices)})")


def identity(folder: AssetFolder, file_hashes: dict[str, str] | None = None) -> str:
    """What makes two ingests the same asset: the capture and config hashes when both are known,
    else the asset's own content (``file_hashes``: path -> blob hash, required then)."""
    if folder.source_hash and folder.config_hash:
        key = f"{folder.source_hash}\0{folder.config_hash}".encode()
        return f"capture+config:{hashlib.sha256(key).hexdigest()}"
    if file_hashes is None:
        raise ValueError("identity of an asset without source and config hashes needs its file hashes")
    h = hashlib.sha256()
    for path in sorted(file_hashes):
        if path != "provenance.json":
            h.update(f"{path}\0{file_hashes[path]}\n".encode())
    return f"files:{h.hexdigest()}"
