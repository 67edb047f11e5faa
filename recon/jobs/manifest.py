"""Ingestion manifests: the captures a batch turns into library assets, as YAML or CSV.

YAML, a list, or a mapping with optional ``defaults`` and a ``captures`` list::

    defaults: {kind: object, preset: object-fast, tags: [batch-7]}
    captures:
      - source: videos/mug.mp4          # video file or capture folder, relative to the manifest
        name: mug
        tags: [kitchen]
      - {source: scans/shoe, name: shoe, set: ["fit.minutes=5"]}

CSV, one capture per row, with a header naming any of the same fields (``tags`` and
``set`` are ';'-separated)::

    source,kind,preset,name,tags
    videos/mug.mp4,object,object-fast,mug,kitchen;batch-7

Fields: source (required; also spelt video/folder/path: a video, a capture folder, or a face photo
with kind head), name (default: the source's stem),
kind (object, articulated, head, body, garment), preset (default ``<kind>-fast`` if it
exists, else object-fast), config (a YAML file), set (config overrides ``key=value``),
tags, licence, operator, notes. An entry's tags and overrides add to the defaults'; its other
fields replace them.

A job's key hashes what decides its output (source, name, kind, preset, config,
overrides), so rerunning a manifest finds its jobs again; tags and notes can change freely.
"""
from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..core.errors import ConfigError, InputError
from ..library.catalog.models import ASSET_KINDS

_FIELDS = {"source", "name", "kind", "preset", "config", "set", "tags", "licence", "operator", "notes"}
_ALIASES = {"video": "source", "folder": "source", "path": "source", "overrides": "set", "license": "licence",
            "tag": "tags"}


@dataclass(frozen=True)
class JobSpec:
    """One capture to ingest: everything a worker needs, JSON-serialisable (``to_dict``)."""

    source: str  # absolute path of the video or capture folder
    name: str
    kind: str = "object"
    preset: str = "object-fast"
    config: str | None = None  # absolute path of a YAML config applied after the preset
    overrides: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    licence: str | None = None
    operator: str | None = None
    notes: str | None = None
    key: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        ident = {"source": self.source, "name": self.name, "kind": self.kind, "preset": self.preset,
                 "config": self.config, "overrides": list(self.overrides)}
        key = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]
        object.__setattr__(self, "key", key)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("key")
        d["overrides"], d["tags"] = list(self.overrides), list(self.tags)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "JobSpec":
        d = {k: v for k, v in d.items() if k != "key"}
        d["overrides"], d["tags"] = tuple(d.get("overrides") or ()), tuple(d.get("tags") or ())
        return cls(**d)


def _split(v: Any) -> list[str]:
    if v is None or v == "":
        return []
    if isinstance(v, str):
        return [x.strip() for x in v.split(";") if x.strip()]
    if isinstance(v, dict):  # set: {fit.minutes: 5}
        return [f"{k}={json.dumps(x) if not isinstance(x, str) else x}" for k, x in v.items()]
    if isinstance(v, (list, tuple)):
        return [str(x).strip() for x in v if str(x).strip()]
    return [str(v)]


def _default_preset(kind: str) -> str:
    from ..core.config import list_presets

    return f"{kind}-fast" if f"{kind}-fast" in list_presets() else "object-fast"


def _entry(raw: Any, defaults: dict[str, Any], base: Path, where: str) -> JobSpec:
    from ..core.config import load_config

    if not isinstance(raw, dict):
        raise InputError(where, "each capture must be a mapping with at least 'source'")
    data: dict[str, Any] = {}
    for layer in (defaults, raw):
        for k, v in layer.items():
            k = _ALIASES.get(str(k).strip().lower(), str(k).strip().lower())
            if k not in _FIELDS:
                raise InputError(where, f"unknown field '{k}' (known: {', '.join(sorted(_FIELDS))})")
            if v is None or v == "":
                continue
            # tags and overrides add up (defaults first); other fields: the entry wins.
            data[k] = _split(data.get(k)) + _split(v) if k in ("tags", "set") else v
    if "source" not in data:
        raise InputError(where, "missing 'source' (a video file or capture folder)")
    source = (base / str(data["source"])).expanduser().resolve()
    if not source.exists():
        raise InputError(where, f"source not found: {source}")
    kind = str(data.get("kind", "object")).lower()
    if kind not in ASSET_KINDS:
        raise InputError(where, f"unknown kind '{kind}' (one of {', '.join(ASSET_KINDS)})")
    config = str((base / str(data["config"])).resolve()) if data.get("config") else None
    spec = JobSpec(source=str(source), name=str(data.get("name") or source.stem), kind=kind,
                   preset=str(data.get("preset") or _default_preset(kind)), config=config,
                   overrides=tuple(_split(data.get("set"))), tags=tuple(sorted(set(_split(data.get("tags"))))),
                   licence=data.get("licence"), operator=data.get("operator"), notes=data.get("notes"))
    try:
        load_config(spec.preset, spec.config, list(spec.overrides))
    except ConfigError as exc:
        raise InputError(where, str(exc)) from None
    return spec


def load_manifest(path: str | Path) -> list[JobSpec]:
    """Parse and check a manifest; errors name the file and the entry."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(path, "manifest not found")
    base = path.resolve().parent
    text = path.read_text()
    defaults: dict[str, Any] = {}
    if path.suffix.lower() == ".csv":
        rows = list(csv.DictReader(text.splitlines()))
        entries = [{k: v for k, v in r.items() if k is not None} for r in rows]
        first_line = 2  # after the header
    else:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InputError(path, f"invalid YAML ({str(exc).splitlines()[0]})") from None
        if isinstance(data, dict):
            defaults = data.get("defaults") or {}
            entries = data.get("captures", data.get("jobs"))
            if not isinstance(defaults, dict):
                raise InputError(path, "'defaults' must be a mapping")
        else:
            entries = data
        if not isinstance(entries, list):
            raise InputError(path, "expected a list of captures (or a mapping with 'captures:')")
        first_line = 1
    if not entries:
        raise InputError(path, "no captures listed")
    label = "row" if path.suffix.lower() == ".csv" else "capture"
    specs = [_entry(e, defaults, base, f"{path} ({label} {i + first_line})") for i, e in enumerate(entries)]
    seen: dict[str, int] = {}
    for i, s in enumerate(specs):
        if s.key in seen:
            raise InputError(path, f"{label}s {seen[s.key] + first_line} and {i + first_line} are the same job "
                                   f"({s.name}: same source, kind, preset and config)")
        seen[s.key] = i
    return specs
