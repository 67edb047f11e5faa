"""Alembic environment: runs on the connection ``recon.library.catalog.engine.upgrade`` passes in
``config.attributes["connection"]`` (inside its locked transaction), or on the URL in
``sqlalchemy.url`` when run by the ``alembic`` command (for writing new revisions)."""
from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from recon.library.catalog.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
elif context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.begin() as conn:
        _run(conn)
