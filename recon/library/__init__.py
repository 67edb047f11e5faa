"""recon.library: the asset catalogue (SQLite or PostgreSQL), its content-addressed blob store,
search and export.

    from recon.library import Library
    Library("~/.recon/library.db").get("cat").export("cat.obj")
"""
from __future__ import annotations

__all__ = ["Library", "Asset", "AssetFile", "AssetNotFound", "VerifyReport", "GcReport", "default_library"]


def __getattr__(name: str):
    # Lazy: `import recon.library` stays cheap (no SQLAlchemy) until a Library is needed.
    if name in __all__:
        from . import library

        return getattr(library, name)
    raise AttributeError(f"module 'recon.library' has no attribute '{name}'")
