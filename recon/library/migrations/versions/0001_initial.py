"""Initial catalogue: assets, their files and tags, library settings, ingestion jobs.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "library_meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )
    op.create_table(
        "assets",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("identity", sa.String(200), nullable=False),
        sa.Column("source_hash", sa.String(128), nullable=True),
        sa.Column("config_hash", sa.String(128), nullable=True),
        sa.Column("recon_version", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("licence", sa.String(200), nullable=False),
        sa.Column("source_path", sa.Text(), nullable=True),
        sa.Column("operator", sa.String(200), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("provenance", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("psnr", sa.Float(), nullable=True),
        sa.Column("triangles", sa.BigInteger(), nullable=True),
        sa.UniqueConstraint("name", "version", name="uq_assets_name_version"),
        sa.UniqueConstraint("identity", name="uq_assets_identity"),
    )
    op.create_index("ix_assets_name", "assets", ["name"])
    op.create_index("ix_assets_kind", "assets", ["kind"])
    op.create_index("ix_assets_source_hash", "assets", ["source_hash"])
    op.create_index("ix_assets_psnr", "assets", ["psnr"])
    op.create_table(
        "asset_files",
        sa.Column("asset_id", sa.String(36), sa.ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("path", sa.String(500), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("blob", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_asset_files_blob", "asset_files", ["blob"])
    op.create_table(
        "asset_tags",
        sa.Column("asset_id", sa.String(36), sa.ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("tag", sa.String(100), primary_key=True),
    )
    op.create_index("ix_asset_tags_tag", "asset_tags", ["tag"])
    op.create_table(
        "jobs",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("manifest", sa.Text(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("asset_id", sa.String(36), nullable=True),
        sa.Column("work_dir", sa.Text(), nullable=True),
        sa.Column("log_path", sa.Text(), nullable=True),
        sa.Column("worker", sa.String(200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_jobs_name", "jobs", ["name"])
    op.create_index("ix_jobs_status", "jobs", ["status"])


def downgrade() -> None:
    for table in ("jobs", "asset_tags", "asset_files", "assets", "library_meta"):
        op.drop_table(table)
