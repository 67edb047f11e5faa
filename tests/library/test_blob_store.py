"""The content-addressed blob store: folder and fsspec URL."""
from __future__ import annotations

import hashlib
import os

import pytest

from recon.library import Library
from recon.library.blob_store import FsspecBlobStore, LocalBlobStore, open_store


def test_local_store_put_is_content_addressed_and_leaves_no_temp(tmp_path):
    store = open_store(tmp_path / "blobs")
    assert isinstance(store, LocalBlobStore)
    src = tmp_path / "a.bin"
    src.write_bytes(b"hello" * 1000)
    digest, size = store.put(src)
    assert digest == hashlib.sha256(src.read_bytes()).hexdigest() and size == 5000
    assert store.path(digest) == tmp_path / "blobs" / digest[:2] / digest
    assert store.put(src) == (digest, size)  # idempotent
    assert list(store.hashes()) == [digest] and os.listdir(tmp_path / "blobs" / "tmp") == []
    assert store.check(digest) == (True, 5000)
    store.path(digest).write_bytes(b"x")
    assert store.check(digest) == (False, 1)
    with pytest.raises(ValueError):
        store.path("../../etc/passwd")


def test_fsspec_store_and_a_library_on_it(catalog_url, make_asset, tmp_path):
    url = f"memory://recon-test-{os.getpid()}-{tmp_path.name}"
    store = open_store(url)
    assert isinstance(store, FsspecBlobStore)
    with Library(catalog_url, store=url) as lib:
        folder = make_asset("m", seed=1)
        a = lib.add(folder)
        assert {f.hash for f in a.files} == set(store.hashes())
        assert lib.verify().ok
        out = lib.export(a.id, tmp_path / "m.glb")
        assert out.read_bytes() == (folder / "m.glb").read_bytes()
        lib.remove(a.id)
        assert list(store.hashes()) == []
