"""The catalogue: SQLAlchemy models and the engine (SQLite file or PostgreSQL URL) they live in."""
