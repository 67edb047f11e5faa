"""Content-addressed blob store: each file is stored once under its SHA-256.

Layout of a store rooted at ROOT (a folder, or any fsspec URL)::

    ROOT/ab/abcdef...   the blob whose SHA-256 is abcdef... (first two hex digits fan out)
    ROOT/tmp/           blobs being written; never visible under their hash until complete
    ROOT/.lock          (folders only) shared by writers, exclusive for garbage collection

A blob is written to ``tmp/``, flushed and fsynced, then renamed to its hash path, so a
process killed at any point leaves at most an unreferenced temp file, never a visible
half-written blob. Writers (``Library.add``) hold the shared lock from their first blob
until their catalogue rows are committed; deleting (``remove``, ``gc``) holds the exclusive
lock, so a blob cannot be collected between being written and being referenced. fsspec
stores have no such lock: run ``gc`` there only while nothing is being added.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import uuid
from pathlib import Path
from typing import BinaryIO, Iterator

from ..core.errors import InputError

CHUNK = 1 << 20
HASH_NAME = "sha256"


def _is_hash(name: str) -> bool:
    return len(name) == 64 and all(c in "0123456789abcdef" for c in name)


def hash_file(path: str | Path) -> tuple[str, int]:
    """(SHA-256 hex digest, size in bytes) of a local file."""
    h, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
            size += len(block)
    return h.hexdigest(), size


class BlobStore:
    """Interface of a blob store; see ``LocalBlobStore`` and ``FsspecBlobStore``."""

    url: str

    def put(self, path: str | Path) -> tuple[str, int]:
        """Store the local file ``path``; return (hash, size). Storing an existing blob is a no-op."""
        raise NotImplementedError

    def exists(self, digest: str) -> bool:
        raise NotImplementedError

    def open(self, digest: str) -> BinaryIO:
        raise NotImplementedError

    def delete(self, digest: str) -> None:
        raise NotImplementedError

    def hashes(self) -> Iterator[str]:
        """Every blob present in the store."""
        raise NotImplementedError

    def clean_temp(self) -> int:
        """Remove leftover temp files of interrupted writes; call only under the exclusive lock."""
        raise NotImplementedError

    @contextlib.contextmanager
    def lock(self, exclusive: bool = False) -> Iterator[None]:
        yield

    def check(self, digest: str) -> tuple[bool, int]:
        """Re-hash a blob: (content matches its name, size)."""
        h, size = hashlib.sha256(), 0
        with self.open(digest) as f:
            while block := f.read(CHUNK):
                h.update(block)
                size += len(block)
        return h.hexdigest() == digest, size

    def copy_to(self, digest: str, dest: str | Path) -> None:
        """Copy a blob to the local file ``dest`` atomically (temp file beside it, then rename)."""
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            with self.open(digest) as src, open(tmp, "wb") as out:
                shutil.copyfileobj(src, out, CHUNK)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise

    def read_bytes(self, digest: str) -> bytes:
        with self.open(digest) as f:
            return f.read()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


class LocalBlobStore(BlobStore):
    """A folder on a local (or mounted) file system, with fsync and a lock file."""

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().resolve()
        self.url = str(self.root)
        (self.root / "tmp").mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        if not _is_hash(digest):
            raise ValueError(f"not a blob hash: {digest!r}")
        return self.root / digest[:2] / digest

    def put(self, path: str | Path) -> tuple[str, int]:
        from . import faults

        tmp = self.root / "tmp" / f"{uuid.uuid4().hex}.part"
        h, size = hashlib.sha256(), 0
        try:
            with open(path, "rb") as src, open(tmp, "wb") as out:
                while block := src.read(CHUNK):
                    h.update(block)
                    size += len(block)
                    out.write(block)
                faults.point("blob_written")
                out.flush()
                os.fsync(out.fileno())
            digest = h.hexdigest()
            final = self.path(digest)
            if final.exists() and final.stat().st_size == size:
                tmp.unlink()
                return digest, size
            final.parent.mkdir(exist_ok=True)
            faults.point("blob_fsynced")
            os.replace(tmp, final)
            _fsync_dir(final.parent)
            faults.point("blob_renamed")
            return digest, size
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def open(self, digest: str) -> BinaryIO:
        return open(self.path(digest), "rb")

    def delete(self, digest: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(digest).unlink()

    def hashes(self) -> Iterator[str]:
        for sub in sorted(self.root.iterdir()):
            if len(sub.name) == 2 and sub.is_dir():
                for f in sorted(sub.iterdir()):
                    if _is_hash(f.name) and f.name.startswith(sub.name):
                        yield f.name

    def clean_temp(self) -> int:
        n = 0
        for f in (self.root / "tmp").iterdir():
            with contextlib.suppress(FileNotFoundError):
                f.unlink()
                n += 1
        return n

    @contextlib.contextmanager
    def lock(self, exclusive: bool = False) -> Iterator[None]:
        import fcntl

        with open(self.root / ".lock", "a+b") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            try:
                yield
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)


class FsspecBlobStore(BlobStore):
    """Any fsspec file system (``s3://bucket/blobs``, ``memory://x`` ...). Same layout as a folder."""

    def __init__(self, url: str):
        from ..core.errors import optional_import

        fsspec = optional_import("fsspec", "a blob store at a URL")
        self.url = url
        self.fs, self.root = fsspec.core.url_to_fs(url)
        self.root = self.root.rstrip("/")
        self.fs.makedirs(f"{self.root}/tmp", exist_ok=True)

    def _path(self, digest: str) -> str:
        if not _is_hash(digest):
            raise ValueError(f"not a blob hash: {digest!r}")
        return f"{self.root}/{digest[:2]}/{digest}"

    def put(self, path: str | Path) -> tuple[str, int]:
        digest, size = hash_file(path)
        final = self._path(digest)
        if self.fs.exists(final) and self.fs.size(final) == size:
            return digest, size
        tmp = f"{self.root}/tmp/{uuid.uuid4().hex}.part"
        try:
            self.fs.put_file(str(path), tmp)
            self.fs.makedirs(f"{self.root}/{digest[:2]}", exist_ok=True)
            self.fs.mv(tmp, final)
        except BaseException:
            with contextlib.suppress(Exception):
                self.fs.rm(tmp)
            raise
        return digest, size

    def exists(self, digest: str) -> bool:
        return self.fs.exists(self._path(digest))

    def open(self, digest: str) -> BinaryIO:
        return self.fs.open(self._path(digest), "rb")

    def delete(self, digest: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(self._path(digest))

    def hashes(self) -> Iterator[str]:
        for sub in sorted(self.fs.ls(self.root, detail=False)):
            name = sub.rstrip("/").rsplit("/", 1)[-1]
            if len(name) == 2 and self.fs.isdir(sub):
                for f in sorted(self.fs.ls(sub, detail=False)):
                    fname = f.rstrip("/").rsplit("/", 1)[-1]
                    if _is_hash(fname) and fname.startswith(name):
                        yield fname

    def clean_temp(self) -> int:
        files = self.fs.ls(f"{self.root}/tmp", detail=False)
        for f in files:
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm(f)
        return len(files)


def open_store(store: str | Path | BlobStore) -> BlobStore:
    """A BlobStore for a folder path, a ``file://`` URL, or another fsspec URL."""
    if isinstance(store, BlobStore):
        return store
    s = str(store)
    if s.startswith("file://"):
        s = s[len("file://"):]
    if "://" not in s:
        p = Path(s).expanduser()
        if p.exists() and not p.is_dir():
            raise InputError(p, "blob store path exists and is not a folder")
        return LocalBlobStore(p)
    return FsspecBlobStore(s)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
