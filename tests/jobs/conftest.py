"""Fixtures of tests/catalog_support.py: ``catalog_url`` (SQLite and PostgreSQL), ``library``,
``store_dir``, ``make_asset``."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def _support():
    name = "recon_tests_catalog_support"
    if name not in sys.modules:  # one module (one PostgreSQL server) for every conftest loading it
        spec = importlib.util.spec_from_file_location(name, Path(__file__).parents[1] / "catalog_support.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


support = _support()
catalog_url = support.catalog_url
store_dir = support.store_dir
library = support.library
make_asset = support.make_asset
