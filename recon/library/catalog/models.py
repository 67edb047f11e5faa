"""Catalogue tables (SQLAlchemy 2 declarative). The schema itself is created by the Alembic
migrations in ``recon/library/migrations``; these classes must match the latest revision
(``tests/library/test_migrations.py`` compares them).

An asset row is an immutable version: files and tags are written with it in one
transaction and never changed. ``identity`` makes re-ingesting the same capture with
the same config a no-op: it is ``source_hash:config_hash`` when both are known, else
the hash of the asset's files.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (JSON, BigInteger, DateTime, Float, ForeignKey, Integer, String, Text,
                        TypeDecorator, UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from ...core.types import SUBJECT_KINDS

ASSET_KINDS = SUBJECT_KINDS
MATERIALS = ("radiance", "pbr")  # colour baked from the radiance field, or fitted PBR materials
JOB_STATUSES = ("queued", "running", "done", "failed")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return None if value is None else value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, datetime: UTCDateTime}


class LibraryMeta(Base):
    """Key/value settings of a library, e.g. ``store_url``: where its blobs live."""

    __tablename__ = "library_meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class AssetRow(Base):
    __tablename__ = "assets"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_assets_name_version"),
                      UniqueConstraint("identity", name="uq_assets_identity"))

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32), index=True)  # the model really fitted
    requested_subject: Mapped[str | None] = mapped_column(String(32))  # what the user asked for
    material: Mapped[str] = mapped_column(String(32), index=True, server_default="radiance")
    identity: Mapped[str] = mapped_column(String(200))
    source_hash: Mapped[str | None] = mapped_column(String(128), index=True)
    config_hash: Mapped[str | None] = mapped_column(String(128))
    recon_version: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    licence: Mapped[str] = mapped_column(String(200))
    source_path: Mapped[str | None] = mapped_column(Text)
    operator: Mapped[str] = mapped_column(String(200))
    notes: Mapped[str | None] = mapped_column(Text)
    provenance: Mapped[dict[str, Any]] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Copied out of ``metrics`` so that searches are plain indexed SQL on every backend; psnr is
    # the baked mesh's on held-out photos only (``recon.library.library.baked_psnr``).
    psnr: Mapped[float | None] = mapped_column(Float, index=True)
    triangles: Mapped[int | None] = mapped_column(BigInteger)

    files: Mapped[list["AssetFileRow"]] = relationship(
        back_populates="asset", cascade="all, delete-orphan", order_by="AssetFileRow.path", lazy="selectin")
    tags: Mapped[list["AssetTagRow"]] = relationship(
        back_populates="asset", cascade="all, delete-orphan", order_by="AssetTagRow.tag", lazy="selectin")


class AssetFileRow(Base):
    """One file of an asset: its path inside the asset folder, role and blob."""

    __tablename__ = "asset_files"
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True)
    path: Mapped[str] = mapped_column(String(500), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    blob: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    asset: Mapped[AssetRow] = relationship(back_populates="files")


class AssetTagRow(Base):
    __tablename__ = "asset_tags"
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(100), primary_key=True, index=True)
    asset: Mapped[AssetRow] = relationship(back_populates="tags")


class JobRow(Base):
    """One ingestion job (recon.jobs): a capture to turn into an asset, keyed by its spec's hash."""

    __tablename__ = "jobs"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    source: Mapped[str] = mapped_column(Text)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    manifest: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    asset_id: Mapped[str | None] = mapped_column(String(36))
    work_dir: Mapped[str | None] = mapped_column(Text)
    log_path: Mapped[str | None] = mapped_column(Text)
    worker: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
