"""The Alembic migrations shipped in recon/library/migrations build exactly the schema the
models describe, on both backends, and opening a library migrates it once."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from recon.library import Library
from recon.library.catalog.engine import MIGRATIONS_DIR, create_catalog_engine, normalize_url, upgrade
from recon.library.catalog.models import Base


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
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == ["0001"]
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
