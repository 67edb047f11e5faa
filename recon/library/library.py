"""``Library``: the asset catalogue (SQLite or PostgreSQL) plus its content-addressed blob store.

    from recon.library import Library
    lib = Library("~/.recon/library.db")            # blobs in ~/.recon/library.blobs/
    asset = lib.add("out/cat/asset", tags=["cat"])  # -> Asset(id, name, version, files, metrics ...)
    lib.find(kind="object", material="pbr", min_psnr=25)
    lib.get(asset.id).export("cat.obj")

Safety: ``add`` stores every blob first (temp file, fsync, rename) and then writes the rows
in one transaction, holding the store's shared lock throughout; ``remove`` and ``gc`` delete
blobs under the exclusive lock and only once no row references them. A process killed at
any point leaves at most unreferenced blobs or temp files (``gc`` clears them), never a
row without its blobs.
"""
from __future__ import annotations

import math
import os
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError, OperationalError

from .. import __version__
from ..core.errors import InputError, ReconError
from ..core.log import get_logger
from . import faults
from .asset_folder import UNKNOWN, read_asset_folder, identity
from .blob_store import BlobStore, LocalBlobStore, open_store
from .catalog.engine import create_catalog_engine, normalize_url, session_factory, sqlite_path, upgrade
from .catalog.models import AssetFileRow, AssetRow, AssetTagRow, LibraryMeta, utcnow

log = get_logger(__name__)

DEFAULT_LIBRARY = "~/.recon/library.db"
_ADD_ATTEMPTS = 20


def default_library() -> str:
    """``$RECON_LIBRARY``, else ``~/.recon/library.db``."""
    return os.environ.get("RECON_LIBRARY") or DEFAULT_LIBRARY


class AssetNotFound(InputError):
    def __init__(self, ref: str):
        super().__init__(None, f"no asset '{ref}' in the library (try: recon library ls)")


@dataclass(frozen=True)
class AssetFile:
    path: str  # inside the asset folder, "/"-separated
    role: str  # glb, obj, mtl, texture, ply, thumb, turntable, report, metrics, provenance, other
    hash: str  # SHA-256 of the content: the blob's name in the store
    size: int


@dataclass(frozen=True)
class Asset:
    """One immutable asset version, as recorded in the catalogue."""

    id: str
    name: str
    version: int
    kind: str  # the model really fitted (``requested_subject``: what the user asked for)
    source_hash: str | None
    config_hash: str | None
    recon_version: str
    created: datetime
    licence: str
    metrics: dict[str, Any]
    files: tuple[AssetFile, ...]
    tags: tuple[str, ...]
    provenance: dict[str, Any]
    material: str = "radiance"  # or "pbr"
    requested_subject: str | None = None
    library: "Library | None" = field(default=None, compare=False, repr=False)

    def file(self, role: str) -> AssetFile | None:
        """The first file with ``role`` (e.g. "glb"), or None."""
        return next((f for f in self.files if f.role == role), None)

    def files_with(self, *roles: str) -> list[AssetFile]:
        return [f for f in self.files if f.role in roles]

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def psnr(self) -> float | None:
        """The library's PSNR: ``baked_psnr(self.metrics)``."""
        return baked_psnr(self.metrics)

    def export(self, dest: str | Path, format: str | None = None) -> Path:
        """``Library.export(self.id, dest, format)``."""
        if self.library is None:
            raise ReconError("this Asset record is not attached to a Library")
        return self.library.export(self.id, dest, format=format)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "version": self.version, "kind": self.kind,
                "requested_subject": self.requested_subject, "material": self.material,
                "source_hash": self.source_hash, "config_hash": self.config_hash,
                "recon_version": self.recon_version, "created": self.created.isoformat(),
                "licence": self.licence, "tags": list(self.tags), "metrics": self.metrics,
                "provenance": self.provenance,
                "files": [{"path": f.path, "role": f.role, "hash": f.hash, "size": f.size} for f in self.files]}


@dataclass
class BlobProblem:
    hash: str
    problem: str  # "missing", "corrupt" or "size"
    refs: list[str]  # "name@vN:path" of the files that use it


@dataclass
class VerifyReport:
    blobs_checked: int = 0
    bytes_checked: int = 0
    assets: int = 0
    problems: list[BlobProblem] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)  # present, unreferenced: `gc` removes them

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class GcReport:
    blobs_deleted: int = 0
    bytes_freed: int = 0
    temp_files_deleted: int = 0


def _clean_json(v: Any) -> Any:
    """JSON-safe copy: non-finite floats become None (PostgreSQL's JSON has no NaN)."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {str(k): _clean_json(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean_json(x) for x in v]
    if isinstance(v, Path):
        return str(v)
    return v


def _number(v: Any, kind=float):
    return kind(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def baked_psnr(metrics: dict[str, Any]) -> float | None:
    """The PSNR the library indexes and searches: the baked mesh's on held-out photos
    (``psnr_heldout_baked``; ``psnr_heldout`` in older folders), else None. A field's or a
    training-view PSNR (``psnr_heldout_field``, ``psnr_train_field``) is never taken for it."""
    return _number(metrics.get("psnr_heldout_baked", metrics.get("psnr_heldout")))


def _clean_tags(tags: Iterable[str] | str | None) -> list[str]:
    if tags is None:
        return []
    if isinstance(tags, str):
        tags = [tags]
    out = sorted({str(t).strip() for t in tags if str(t).strip()})
    for t in out:
        if len(t) > 100:
            raise InputError(None, f"tag too long (100 characters at most): {t[:40]}...")
    return out


class Library:
    """An asset catalogue at ``path_or_url`` with its blob ``store``.

    ``path_or_url``: a file path (SQLite; created on first use), ``sqlite:///...`` or
    ``postgresql://user@host/db``; None means ``$RECON_LIBRARY`` or ``~/.recon/library.db``.
    ``store``: a folder or fsspec URL, or a BlobStore. By default the store the catalogue
    recorded with its first asset; for a new SQLite library the folder ``<file stem>.blobs``
    beside the database file. Adding into a store other than the recorded one is refused.
    The schema is migrated to the latest revision on open. ``create=False`` (for commands that
    only read) refuses a library that does not exist yet with an InputError, creating nothing.
    """

    def __init__(self, path_or_url: str | Path | None = None, store: str | Path | BlobStore | None = None, *,
                 create: bool = True):
        self.url = normalize_url(path_or_url if path_or_url is not None else default_library())
        self.engine = create_catalog_engine(self.url, create=create)
        try:
            upgrade(self.engine, create=create)
        except BaseException:
            self.engine.dispose()
            raise
        self.sessions = session_factory(self.engine)  # transactions that write
        self.reads = session_factory(self.engine, read_only=True)
        self._store_arg, self._store = store, None

    @property
    def store(self) -> BlobStore:
        """The blob store, opened on first use: reading the catalogue (find, get, job state)
        needs none, so a library whose store is not known yet can still be browsed."""
        if self._store is None:
            self._store = self._open_store(self._store_arg)
        return self._store

    # -- set-up ---------------------------------------------------------------------------

    def _open_store(self, store) -> BlobStore:
        recorded = self._recorded_store()
        if store is None and recorded is None:
            db = sqlite_path(self.url)
            if db is None:
                raise InputError(self.display_url, "this library has no blob store yet: pass --store "
                                                   "FOLDER_OR_URL (store=...) the first time")
            store = db.with_name(f"{db.stem}.blobs")
        bs = open_store(store if store is not None else recorded)
        if recorded is not None and recorded != bs.url:
            log.warning(f"{self.display_url} keeps its blobs in {recorded}; using {bs.url} as asked "
                        f"(adding assets there is refused)")
        return bs

    def _recorded_store(self) -> str | None:
        with self.reads() as s:
            row = s.get(LibraryMeta, "store_url")
            return row.value if row else None

    def claim_store(self) -> None:
        """Before the first blob is written: record this store as the library's (first writer wins),
        and refuse to write into any other, so no asset ever has its blobs in a store the
        catalogue does not point to. Reading never records anything."""
        if self._recorded_store() is None:
            try:
                with self.sessions.begin() as s:
                    if s.get(LibraryMeta, "store_url") is None:
                        s.add(LibraryMeta(key="store_url", value=self.store.url))
            except IntegrityError:
                pass  # another process recorded one first: checked below
        recorded = self._recorded_store()
        if recorded != self.store.url:
            raise InputError(self.display_url, f"this library keeps its blobs in {recorded}, not "
                                               f"{self.store.url}: pass that store, or none")

    @property
    def display_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> "Library":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        store = self._store.url if self._store is not None else self._store_arg
        return f"Library({self.display_url!r}, store={str(store) if store is not None else None!r})"

    # -- records --------------------------------------------------------------------------

    def _record(self, row: AssetRow) -> Asset:
        return Asset(id=row.id, name=row.name, version=row.version, kind=row.kind, source_hash=row.source_hash,
                     config_hash=row.config_hash, recon_version=row.recon_version, created=row.created_at,
                     licence=row.licence, metrics=dict(row.metrics or {}),
                     files=tuple(sorted((AssetFile(f.path, f.role, f.blob, f.size) for f in row.files),
                                        key=lambda f: f.path)),
                     tags=tuple(sorted(t.tag for t in row.tags)), provenance=dict(row.provenance or {}),
                     material=row.material, requested_subject=row.requested_subject, library=self)

    # -- add ------------------------------------------------------------------------------

    def add(self, asset_dir: str | Path, name: str | None = None, tags: Iterable[str] | str | None = None,
            kind: str | None = None, licence: str | None = None, operator: str | None = None,
            notes: str | None = None) -> Asset:
        """Store the asset folder ``asset_dir`` as a new version of ``name``; return its record.

        The same capture with the same config (source and config hashes) already in the library
        returns the existing record and stores nothing; another config makes version N+1 of the
        name. ``name``, ``kind``, ``licence``, ``operator`` and ``notes`` override provenance.json,
        except that a ``kind`` contradicting the fitted kind recorded there is refused (InputError).
        """
        folder = read_asset_folder(asset_dir, name=name, kind=kind, licence=licence, operator=operator,
                                   notes=notes)
        tag_list = _clean_tags(tags)
        if folder.source_hash and folder.config_hash:
            existing = self._by_identity(identity(folder))
            if existing is not None:
                log.info(f"{folder.root}: already in the library as {existing.name} v{existing.version} "
                         f"({existing.id})")
                return existing
        self.claim_store()
        with self.store.lock():
            blobs = {f.path: self.store.put(f.local) for f in folder.files}
            faults.point("blobs_stored")
            ident = identity(folder, {p: h for p, (h, _) in blobs.items()})
            prov = _clean_json(folder.provenance)
            metrics = _clean_json(folder.metrics)
            for attempt in range(_ADD_ATTEMPTS):
                try:
                    with self.sessions.begin() as s:
                        row = s.scalar(select(AssetRow).where(AssetRow.identity == ident))
                        if row is not None:
                            log.info(f"{folder.root}: already in the library as {row.name} v{row.version}")
                            return self._record(row)
                        latest = s.scalar(select(func.max(AssetRow.version)).where(AssetRow.name == folder.name))
                        row = AssetRow(
                            id=str(uuid.uuid4()), name=folder.name, version=(latest or 0) + 1, kind=folder.kind,
                            requested_subject=folder.requested_subject, material=folder.material,
                            identity=ident, source_hash=folder.source_hash, config_hash=folder.config_hash,
                            recon_version=str(prov.get("recon_version") or UNKNOWN), created_at=utcnow(),
                            licence=str(prov.get("licence") or UNKNOWN), source_path=prov.get("source_path"),
                            operator=str(prov.get("operator") or UNKNOWN), notes=prov.get("notes"),
                            provenance={**prov, "library_recon_version": __version__}, metrics=metrics,
                            psnr=baked_psnr(metrics),
                            triangles=_number(metrics.get("triangles"), int))
                        row.files = [AssetFileRow(path=f.path, role=f.role, blob=blobs[f.path][0],
                                                  size=blobs[f.path][1]) for f in folder.files]
                        row.tags = [AssetTagRow(tag=t) for t in tag_list]
                        s.add(row)
                        s.flush()
                        faults.point("rows_flushed")
                        record = self._record(row)
                    faults.point("committed")
                    log.info(f"added {record.name} v{record.version} ({record.id}): {len(record.files)} files")
                    return record
                except (IntegrityError, OperationalError) as exc:
                    # Another writer took this version number or identity (PostgreSQL), or the
                    # database stayed locked past the busy timeout (SQLite): look again.
                    if attempt == _ADD_ATTEMPTS - 1:
                        raise ReconError(f"{self.display_url}: could not add {folder.root}: {exc.orig}") from None
                    time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))
        raise AssertionError("unreachable")

    def _by_identity(self, ident: str) -> Asset | None:
        with self.reads() as s:
            row = s.scalar(select(AssetRow).where(AssetRow.identity == ident))
            return None if row is None else self._record(row)

    # -- queries --------------------------------------------------------------------------

    def get(self, ref: str) -> Asset:
        """An asset by id, unique id prefix (4+ characters), ``name`` (latest version) or ``name@N``."""
        ref = str(ref).strip()
        with self.reads() as s:
            row = s.get(AssetRow, ref)
            if row is None:
                name, _, ver = ref.rpartition("@") if "@" in ref else (ref, "", "")
                q = select(AssetRow).where(AssetRow.name == name)
                if ver:
                    try:
                        q = q.where(AssetRow.version == int(ver.lstrip("vV")))
                    except ValueError:
                        raise InputError(None, f"bad asset version in '{ref}' (use NAME@N)") from None
                row = s.scalar(q.order_by(AssetRow.version.desc()).limit(1))
            if row is None and len(ref) >= 4 and all(c in "0123456789abcdef-" for c in ref.lower()):
                rows = s.scalars(select(AssetRow).where(AssetRow.id.startswith(ref.lower())).limit(2)).all()
                if len(rows) > 1:
                    raise InputError(None, f"asset id prefix '{ref}' is ambiguous: give more characters")
                row = rows[0] if rows else None
            if row is None:
                raise AssetNotFound(ref)
            return self._record(row)

    def find(self, kind: str | None = None, tag: str | None = None, name: str | None = None,
             min_psnr: float | None = None, material: str | None = None, latest: bool = False,
             limit: int | None = None) -> list[Asset]:
        """Assets matching every given filter, by name then version.

        ``kind`` is the model really fitted (an object fitted for a requested head is an object);
        ``name`` may hold ``*`` wildcards; ``min_psnr`` compares the baked mesh's PSNR on held-out
        photos (``baked_psnr``) and leaves out assets without one, whatever field or training-view
        PSNR they have; ``material``: "radiance" or "pbr"; ``latest`` keeps only the newest
        version of each name.
        """
        q = select(AssetRow)
        if kind:
            q = q.where(AssetRow.kind == kind)
        if material:
            q = q.where(AssetRow.material == material)
        if tag:
            q = q.where(AssetRow.id.in_(select(AssetTagRow.asset_id).where(AssetTagRow.tag == tag)))
        if name:
            if "*" in name:
                pattern = name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_").replace("*", "%")
                q = q.where(AssetRow.name.like(pattern, escape="\\"))
            else:
                q = q.where(AssetRow.name == name)
        if min_psnr is not None:
            q = q.where(AssetRow.psnr >= float(min_psnr))
        if latest:
            newest = select(AssetRow.name, func.max(AssetRow.version).label("v")).group_by(AssetRow.name).subquery()
            q = q.join(newest, (AssetRow.name == newest.c.name) & (AssetRow.version == newest.c.v))
        q = q.order_by(AssetRow.name, AssetRow.version)
        if limit:
            q = q.limit(limit)
        with self.reads() as s:
            return [self._record(r) for r in s.scalars(q).all()]

    def __len__(self) -> int:
        with self.reads() as s:
            return s.scalar(select(func.count()).select_from(AssetRow)) or 0

    # -- export ---------------------------------------------------------------------------

    def export(self, ref: str, dest: str | Path, format: str | None = None, texture_size: int | None = None) -> Path:
        """Write asset ``ref`` to ``dest`` as glb, obj (+ mtl + textures beside it), ply, or
        ``folder`` (every file); ``format`` defaults to dest's suffix. ``texture_size``: textures of that
        many texels a side, procedural materials regenerated (``recon export --texture-size``). Returns the
        main file."""
        from .export import export_asset

        return export_asset(self.get(ref), self.store, dest, format, texture_size)

    def export_landmarks(self, ref: str, dest: str | Path) -> Path:
        """Write asset ``ref``'s landmark sets (its ``landmarks.json``: a head's) beside the export ``dest``
        as ``<stem>.landmarks.json`` (into ``dest`` when it is a folder); returns the file written."""
        asset = self.get(ref)
        f = asset.file("landmarks")
        if f is None:
            raise InputError(None, f"{asset.name}@{asset.version} (kind {asset.kind}) has no landmark sets: "
                                   "only heads carry them")
        dest = Path(dest).expanduser()
        out = dest / "landmarks.json" if dest.is_dir() else dest.with_name(f"{dest.stem}.landmarks.json")
        self.store.copy_to(f.hash, out)
        return out

    # -- removal and maintenance ----------------------------------------------------------

    def remove(self, ref: str) -> Asset:
        """Delete asset ``ref`` from the catalogue, then the blobs no other asset uses."""
        asset = self.get(ref)
        hashes = {f.hash for f in asset.files}
        with self.store.lock(exclusive=True):
            with self.sessions.begin() as s:
                s.execute(delete(AssetFileRow).where(AssetFileRow.asset_id == asset.id))
                s.execute(delete(AssetTagRow).where(AssetTagRow.asset_id == asset.id))
                s.execute(delete(AssetRow).where(AssetRow.id == asset.id))
            faults.point("removed_rows")
            with self.reads() as s:
                used = set(s.scalars(select(AssetFileRow.blob).where(AssetFileRow.blob.in_(hashes))).all())
            for h in sorted(hashes - used):
                self.store.delete(h)
                faults.point("blob_deleted")
        log.info(f"removed {asset.name} v{asset.version} ({asset.id}); {len(hashes - used)} blobs deleted")
        return asset

    def gc(self) -> GcReport:
        """Delete blobs no asset references (left by interrupted adds or removes) and stale temp files."""
        report = GcReport()
        with self.store.lock(exclusive=True):
            with self.reads() as s:
                used = set(s.scalars(select(AssetFileRow.blob).distinct()).all())
            for h in list(self.store.hashes()):
                if h not in used:
                    if isinstance(self.store, LocalBlobStore):
                        report.bytes_freed += self.store.path(h).stat().st_size
                    self.store.delete(h)
                    report.blobs_deleted += 1
            report.temp_files_deleted = self.store.clean_temp()
        return report

    def verify(self) -> VerifyReport:
        """Re-hash every blob in the store: a referenced blob that is missing, corrupt (content
        does not match its hash) or of the wrong size is a problem, and so is a corrupt
        unreferenced one; unreferenced blobs are listed as orphans (``gc`` removes them)."""
        report = VerifyReport()
        with self.reads() as s:
            rows = s.execute(select(AssetFileRow.blob, AssetFileRow.size, AssetFileRow.path, AssetRow.name,
                                    AssetRow.version).join(AssetRow, AssetRow.id == AssetFileRow.asset_id)).all()
            report.assets = s.scalar(select(func.count()).select_from(AssetRow)) or 0
        refs: dict[str, list[str]] = {}
        sizes: dict[str, int] = {}
        for blob, size, path, name, version in rows:
            refs.setdefault(blob, []).append(f"{name}@{version}:{path}")
            sizes[blob] = size
        present = set(self.store.hashes())
        for h in sorted(refs):
            if h not in present:
                report.problems.append(BlobProblem(h, "missing", refs[h]))
                continue
            ok, size = self.store.check(h)
            report.blobs_checked += 1
            report.bytes_checked += size
            if not ok:
                report.problems.append(BlobProblem(h, "corrupt", refs[h]))
            elif size != sizes[h]:
                report.problems.append(BlobProblem(h, "size", refs[h]))
        report.orphans = sorted(present - set(refs))
        for h in report.orphans:  # not used by any asset, but a blob must never be half-written
            ok, size = self.store.check(h)
            report.blobs_checked += 1
            report.bytes_checked += size
            if not ok:
                report.problems.append(BlobProblem(h, "corrupt", []))
        return report
