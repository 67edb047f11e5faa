"""Assets say what they are: their material (radiance or pbr) and the subject the user requested
(``kind`` is the model really fitted); the indexed ``psnr`` becomes the baked mesh's PSNR on
held-out photos only, recomputed for existing rows (it was metrics "psnr", at times the field's).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""
import math
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: Union[str, Sequence[str], None] = "0001"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def _baked_psnr(metrics: dict):
    # Frozen copy of recon.library.library.baked_psnr as of this revision.
    v = metrics.get("psnr_heldout_baked", metrics.get("psnr_heldout"))
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def upgrade() -> None:
    op.add_column("assets", sa.Column("requested_subject", sa.String(32), nullable=True))
    op.add_column("assets", sa.Column("material", sa.String(32), nullable=False, server_default="radiance"))
    op.create_index("ix_assets_material", "assets", ["material"])
    assets = sa.table("assets", sa.column("id", sa.String), sa.column("metrics", sa.JSON),
                      sa.column("provenance", sa.JSON), sa.column("psnr", sa.Float),
                      sa.column("material", sa.String), sa.column("requested_subject", sa.String))
    bind = op.get_bind()
    for id_, metrics, prov in bind.execute(sa.select(assets.c.id, assets.c.metrics, assets.c.provenance)).all():
        metrics, prov = metrics or {}, prov or {}
        bind.execute(assets.update().where(assets.c.id == id_).values(
            psnr=_baked_psnr(metrics), material=metrics.get("material") or "radiance",
            requested_subject=prov.get("requested_subject")))


def downgrade() -> None:
    with op.batch_alter_table("assets") as batch:
        batch.drop_index("ix_assets_material")
        batch.drop_column("material")
        batch.drop_column("requested_subject")
