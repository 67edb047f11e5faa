"""The Alembic migrations shipped in recon/library/migrations build exactly the schema the
models describe, on both backends, and opening a library migrates it once."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from recon.library import Library
from recon.library.catalog.engine import MIGRATIONS_DIR, create_catalog_engine, normalize_url, upgrade
from recon.library.catalog.models import Base, utcnow


def test_migrations_match_the_models(catalog_url, store_dir):
    with Library(catalog_url, store=store_dir) as lib, lib.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
        assert diff == []
        tables = set(inspect(conn).get_table_names())
        assert {"assets", "asset_files", "asset_tags", "jobs", "library_meta", "alembic_version"} <= tables


def test_upgrade_on_open_is_idempotent_and_ships_with_the_package(catalog_url):
    assert (MIGRATIONS_DIR / "env.py").is_file() and list((MIGRATIONS_DIR / "versions").glob("0001_*.py"))
    engine = create_catalog_engine(normalize_url(catalog_url))
    upgrade(engine)
    upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == ["0002"]
    engine.dispose()


def test_models_keep_their_unique_rules(library, make_asset):
    """The rules add() relies on under concurrency live in the database, not only in Python."""
    import pytest
    from sqlalchemy.exc import IntegrityError

    from recon.library.catalog.models import AssetRow, utcnow

    a = library.add(make_asset("u", seed=1))
    row = dict(kind="object", recon_version="x", created_at=utcnow(), licence="x", operator="x", provenance={},
               metrics={})
    with library.reads() as s:
        identity = s.get(AssetRow, a.id).identity
    for clash in ({"name": "u", "version": 1, "identity": "other"}, {"name": "v", "version": 1, "identity": identity}):
        with pytest.raises(IntegrityError), library.sessions.begin() as s:
            s.add(AssetRow(id=f"id-{clash['name']}", **clash, **row))


def test_0002_upgrades_a_0001_library(catalog_url, store_dir, make_asset):
    """Material and requested subject are filled in, and the indexed PSNR is recomputed as the
    baked mesh's held-out figure (0001 copied metrics "psnr", at times the field's)."""
    import sqlalchemy as sa
    from alembic import command
    from alembic.config import Config

    engine = create_catalog_engine(normalize_url(catalog_url))
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    assets = sa.table("assets", *(sa.column(c) for c in ("id", "name", "version", "kind", "identity",
                                                          "recon_version", "created_at", "licence", "operator")),
                      sa.column("provenance", sa.JSON), sa.column("metrics", sa.JSON), sa.column("psnr", sa.Float))
    common = dict(kind="object", recon_version="0.1.0", created_at=utcnow(), licence="x", operator="x")
    with engine.begin() as conn:
        conn.execute(sa.insert(assets), [
            dict(id="a", name="baked", version=1, identity="a", provenance={"requested_subject": "head"},
                 metrics={"psnr": 27.0, "psnr_heldout": 27.0, "material": "pbr"}, psnr=27.0, **common),
            dict(id="b", name="field", version=1, identity="b", provenance={}, metrics={"psnr": 33.0}, psnr=33.0,
                 **common)])
    engine.dispose()
    with Library(catalog_url, store=store_dir, create=False) as lib:
        got = {a.name: (a.material, a.requested_subject, a.psnr) for a in lib.find()}
        assert got == {"baked": ("pbr", "head", 27.0), "field": ("radiance", None, None)}
        assert [a.name for a in lib.find(min_psnr=20)] == ["baked"]
        assert [a.name for a in lib.find(material="pbr")] == ["baked"]
        assert lib.add(make_asset("new", seed=1)).version == 1
