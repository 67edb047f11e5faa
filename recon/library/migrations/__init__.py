"""Alembic migration scripts of the catalogue, shipped inside the package and run on open."""
