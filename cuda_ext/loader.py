"""Lazy build and load of the compiled kernels (the pattern of gsplat's ``_lazy_backend.py``).

Nothing is compiled on import. The first ``load(kind)`` builds the extension with
``torch.utils.cpp_extension.load`` into a cache folder keyed by a hash of the
sources, the compiler flags and the torch/Python/CUDA versions, so a later
process only loads the cached module. A failed build is remembered twice: in
the process (the next call raises at once) and by a ``FAILED`` marker beside the
build log (the next process raises at once too). Delete the marker, or set
``RECON_EXT_REBUILD=1``, to try again.

Two kinds: ``cpu`` (``ext.cpp`` + ``*_cpu.cpp``, OpenMP) and ``cuda`` (the same
plus the ``.cu`` launchers, built with ``-DRECON_WITH_CUDA``) when
``torch.cuda.is_available()`` and a CUDA toolkit (``CUDA_HOME``) exist.
The cache root is ``$TORCH_EXTENSIONS_DIR`` or ``$XDG_CACHE_HOME/recon/ext``
(``~/.cache/recon/ext``).
"""
from __future__ import annotations

import hashlib
import logging
import os
import platform
import shutil
import sys
import threading
import time
from pathlib import Path
from types import ModuleType

SRC_DIR = Path(__file__).resolve().parent / "csrc"
KINDS = ("cpu", "cuda")
_log = logging.getLogger("recon.ext")

# Portable flags: no -march=native, so a cached build runs on any x86-64 (or aarch64) CPU that
# shares the cache (the kernels are bound by memory access, not arithmetic width). No FMA
# contraction: the ray marcher reproduces the torch twin's float32 operations exactly.
CXX_FLAGS = ("-O3", "-fopenmp", "-ffp-contract=off")
LD_FLAGS = ("-fopenmp",)
CUDA_FLAGS = ("-O3", "--expt-relaxed-constexpr", "-DRECON_WITH_CUDA")


class ExtensionBuildError(RuntimeError):
    """The extension could not be built (or an earlier build failed); the message says where the log is."""


def cache_root() -> Path:
    env = os.environ.get("TORCH_EXTENSIONS_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "recon" / "ext"


def cuda_toolkit_available() -> bool:
    """True when torch sees a GPU and a CUDA toolkit to compile for it is installed."""
    import torch

    if not torch.cuda.is_available():
        return False
    from torch.utils.cpp_extension import CUDA_HOME

    return CUDA_HOME is not None and Path(CUDA_HOME).is_dir()


class ExtensionLoader:
    """Builds and loads the extension from ``src_dir``; one instance per source tree."""

    def __init__(self, src_dir: str | Path = SRC_DIR, root: str | Path | None = None, name: str = "recon_ext"):
        self.src_dir = Path(src_dir)
        self._root = None if root is None else Path(root)
        self.name = name
        self._modules: dict[str, ModuleType] = {}
        self._errors: dict[str, ExtensionBuildError] = {}
        self._lock = threading.Lock()

    @property
    def root(self) -> Path:
        return self._root if self._root is not None else cache_root()

    def sources(self, kind: str) -> list[Path]:
        """ext.cpp, every ``*_cpu.cpp``, and for ``cuda`` every ``.cu``, sorted."""
        srcs = [self.src_dir / "ext.cpp"] + sorted(self.src_dir.glob("**/*_cpu.cpp"))
        if kind == "cuda":
            srcs += sorted(self.src_dir.glob("**/*.cu"))
        return srcs

    def key(self, kind: str) -> str:
        """Hash of what the build of ``kind`` depends on: its sources and every header, the flags,
        torch, Python (and CUDA)."""
        import torch

        h = hashlib.sha256()
        headers = [q for q in self.src_dir.rglob("*") if q.suffix in (".h", ".cuh")]
        for p in sorted(set(headers + self.sources(kind))):
            h.update(p.relative_to(self.src_dir).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
        parts = [kind, torch.__version__, sys.version.split()[0], sys.platform, platform.machine(),
                 " ".join(CXX_FLAGS + LD_FLAGS)]
        if kind == "cuda":
            parts += [str(torch.version.cuda), " ".join(CUDA_FLAGS)]
        h.update("|".join(parts).encode())
        return h.hexdigest()[:16]

    def module_name(self, kind: str) -> str:
        return f"{self.name}_{kind}_{self.key(kind)}"

    def build_dir(self, kind: str) -> Path:
        return self.root / self.module_name(kind)

    def failure(self, kind: str) -> ExtensionBuildError | None:
        """The remembered build failure of ``kind`` (this process, or a marker from an earlier one)."""
        if kind in self._errors:
            return self._errors[kind]
        marker = self.build_dir(kind) / "FAILED"
        if marker.is_file() and os.environ.get("RECON_EXT_REBUILD") != "1":
            return ExtensionBuildError(
                f"an earlier build of the {kind} kernels failed (log: {marker.parent / 'build.log'}); "
                f"delete {marker} or set RECON_EXT_REBUILD=1 to try again")
        return None

    def is_loaded(self, kind: str) -> bool:
        return kind in self._modules

    def load(self, kind: str = "cpu", verbose: bool = False) -> ModuleType:
        """The compiled module of ``kind``, built on first use; raises ExtensionBuildError."""
        if kind not in KINDS:
            raise ValueError(f"unknown extension kind '{kind}' (expected one of {KINDS})")
        mod = self._modules.get(kind)
        if mod is not None:
            return mod
        with self._lock:
            if kind in self._modules:
                return self._modules[kind]
            err = self.failure(kind)
            if err is not None:
                self._errors[kind] = err
                raise err
            try:
                mod = self._build(kind, verbose)
            except ExtensionBuildError as exc:
                self._errors[kind] = exc
                raise
            self._modules[kind] = mod
            return mod

    def _build(self, kind: str, verbose: bool) -> ModuleType:
        if kind == "cuda" and not cuda_toolkit_available():
            # not a build failure: nothing to remember on disk
            raise ExtensionBuildError("the CUDA kernels need torch.cuda.is_available() and a CUDA toolkit (CUDA_HOME)")
        from torch.utils import cpp_extension

        _ensure_ninja_on_path()
        bdir = self.build_dir(kind)
        bdir.mkdir(parents=True, exist_ok=True)
        marker, log = bdir / "FAILED", bdir / "build.log"
        _clear_stale_lock(bdir / "lock")
        if not (bdir / f"{self.module_name(kind)}.so").exists():
            _log.info("compiling the %s kernels (first use, about a minute) in %s", kind, bdir)
        try:
            mod = cpp_extension.load(
                name=self.module_name(kind),
                sources=[str(s) for s in self.sources(kind)],
                extra_cflags=list(CXX_FLAGS) + (["-DRECON_WITH_CUDA"] if kind == "cuda" else []),
                extra_ldflags=list(LD_FLAGS),
                extra_cuda_cflags=list(CUDA_FLAGS),
                build_directory=str(bdir),
                with_cuda=kind == "cuda",
                verbose=verbose,
            )
        except Exception as exc:  # compiler errors arrive as RuntimeError, a missing compiler as OSError
            log.write_text(f"{type(exc).__name__}: {exc}\n")
            marker.write_text("the build failed; see build.log\n")
            raise ExtensionBuildError(f"building the {kind} kernels failed (log: {log}): "
                                      f"{_first_error_line(str(exc))}") from exc
        marker.unlink(missing_ok=True)
        return mod


# torch's build lock (a file) outlives a build that was killed; a later build would wait on it forever.
STALE_LOCK_S = 15 * 60


def _clear_stale_lock(lock: Path) -> None:
    try:
        age = time.time() - lock.stat().st_mtime
    except FileNotFoundError:
        return
    if age > STALE_LOCK_S:
        _log.warning("removing the stale build lock %s (%.0f min old)", lock, age / 60)
        lock.unlink(missing_ok=True)


def _first_error_line(text: str) -> str:
    for line in text.splitlines():
        if "error" in line.lower() and line.strip() != "":
            return line.strip()[:300]
    return text.strip().splitlines()[0][:300] if text.strip() else "unknown error"


def _ensure_ninja_on_path() -> None:
    """torch needs the ``ninja`` executable; the pip package puts it beside the interpreter."""
    if shutil.which("ninja"):
        return
    candidates = [Path(sys.executable).parent]
    try:
        import ninja  # type: ignore[import-not-found]

        candidates.insert(0, Path(ninja.BIN_DIR))
    except ImportError:
        pass
    for d in candidates:
        if (d / "ninja").is_file():
            os.environ["PATH"] = f"{d}{os.pathsep}{os.environ.get('PATH', '')}"
            return


_DEFAULT: ExtensionLoader | None = None


def default_loader() -> ExtensionLoader:
    """The loader of the kernels shipped in ``cuda_ext/csrc``."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = ExtensionLoader()
    return _DEFAULT


def load(kind: str = "cpu", verbose: bool = False) -> ModuleType:
    """Build (first use) and load the ``kind`` extension; raises ExtensionBuildError."""
    return default_loader().load(kind, verbose)


def build_status() -> dict:
    """Per kind: loaded, the remembered failure, and the build folder (diagnostics; builds nothing)."""
    ld = default_loader()
    out = {}
    for kind in KINDS:
        err = ld.failure(kind)
        out[kind] = {"loaded": ld.is_loaded(kind), "error": None if err is None else str(err),
                     "build_dir": str(ld.build_dir(kind))}
    return out
