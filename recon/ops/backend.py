"""Backend selection: cuda > cpp > torch, forced by ``use_backend`` (config ``backend``).

``with use_backend("torch"): ...`` forces a backend for the code it wraps (a
``contextvars`` setting, restored on exit, exceptions included); outside any such
block the process default applies: "auto", or what a script set with ``set_backend``.

``auto`` runs CUDA tensors on the CUDA kernels and CPU tensors on the C++/OpenMP
kernels when the extension builds (on first use, cached; see ``cuda_ext.loader``),
and on the PyTorch twins otherwise, after ONE warning per process and kind. A
forced ``cuda`` or ``cpp`` backend that cannot run raises ``BackendError``.

``get_kernel(op, device)`` returns the compiled op (a differentiable callable
with the public op's signature, see ``recon.ops.compiled``), or None to use the
torch twin.

tinycudann, when installed on a CUDA machine, is offered by ``tinycudann()`` for
fields that want its fused hash grid + MLP; it is not a kernel of
``hash_grid_encode``, whose contract (level resolutions, vertex positions,
table layout) differs from tinycudann's grid.
"""
from __future__ import annotations

import contextlib
import contextvars
import warnings
from typing import Callable, Iterator

import torch

from ..core.errors import BackendError
from ..core.log import get_logger

BACKENDS = ("auto", "cuda", "cpp", "torch")
OPS = ("hash_grid_encode", "march_rays", "composite", "rasterize")  # ops with compiled kernels

_BACKEND = "auto"  # the process default (set_backend); use_backend overrides it in a scope
_SCOPED: contextvars.ContextVar[str | None] = contextvars.ContextVar("recon_backend", default=None)
_KERNELS: dict[str, dict[str, Callable]] = {}  # extension kind -> op -> callable
_WARNED: set[str] = set()  # kinds whose failed build was reported
_log = get_logger(__name__)


def _check(name: str) -> str:
    if name not in BACKENDS:
        raise ValueError(f"unknown backend '{name}' (expected one of {', '.join(BACKENDS)})")
    return name


def set_backend(name: str) -> None:
    """Set the process default backend: for scripts; library code uses ``use_backend``."""
    global _BACKEND
    _BACKEND = _check(name)


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[str]:
    """Force backend ``name`` ('auto', 'cuda', 'cpp', 'torch') inside the ``with`` block (this thread/task)."""
    token = _SCOPED.set(_check(name))
    try:
        yield name
    finally:
        _SCOPED.reset(token)


def get_backend() -> str:
    """The backend in force here: the innermost ``use_backend``, else the process default."""
    return _SCOPED.get() or _BACKEND


def _loader():
    from cuda_ext.loader import default_loader

    return default_loader()


def _kernels(kind: str) -> dict[str, Callable]:
    """The compiled ops of extension ``kind`` ('cpu' | 'cuda'); raises cuda_ext.ExtensionBuildError."""
    kernels = _KERNELS.get(kind)
    if kernels is None:
        from .compiled import make_kernels

        kernels = _KERNELS[kind] = make_kernels(_loader().load(kind))
    return kernels


def _try_kernels(kind: str) -> dict[str, Callable] | None:
    """``_kernels(kind)``, or None after one warning when the extension cannot be built."""
    from cuda_ext.loader import ExtensionBuildError

    try:
        return _kernels(kind)
    except ExtensionBuildError as exc:
        if kind not in _WARNED:
            _WARNED.add(kind)
            msg = f"compiled {kind} kernels unavailable, using the PyTorch twins (slower): {exc}"
            warnings.warn(msg, RuntimeWarning, stacklevel=4)
            _log.warning(msg)
        return None


def _require_kernels(name: str, kind: str) -> dict[str, Callable]:
    from cuda_ext.loader import ExtensionBuildError

    try:
        return _kernels(kind)
    except ExtensionBuildError as exc:
        raise BackendError(f"backend '{name}' requested but its kernels are unavailable: {exc}") from exc


def _resolve(device: torch.device | str) -> tuple[str, dict[str, Callable] | None]:
    """(backend name, its kernels or None for torch) for tensors on ``device``."""
    dev = torch.device(device).type
    name = get_backend()
    if name == "torch":
        return "torch", None
    if name == "cuda":
        if not torch.cuda.is_available():
            raise BackendError("backend 'cuda' requested but CUDA is not available "
                               "(torch.cuda.is_available() is False)")
        if dev != "cuda":
            raise BackendError(f"backend 'cuda' requested but the tensors are on {dev}; "
                               "move them to the GPU or use backend 'auto'")
        return "cuda", _require_kernels(name, "cuda")
    if name == "cpp":
        if dev != "cpu":
            raise BackendError(f"backend 'cpp' requested but the tensors are on {dev}; "
                               "the C++ kernels run on CPU tensors (use 'cuda' or 'auto')")
        return "cpp", _require_kernels(name, "cpu")
    # auto
    if dev == "cuda":
        kernels = _try_kernels("cuda")
        return ("cuda", kernels) if kernels is not None else ("torch", None)
    if dev == "cpu":
        kernels = _try_kernels("cpu")
        return ("cpp", kernels) if kernels is not None else ("torch", None)
    return "torch", None  # other devices (mps, …) have only the twins


def active_backend(device: torch.device | str = "cpu") -> str:
    """The backend ops will actually use on ``device``: 'cuda', 'cpp' or 'torch'.

    May build the extension (first use); raises BackendError for a forced backend that cannot run.
    """
    return _resolve(device)[0]


def get_kernel(op: str, device: torch.device | str):
    """The compiled ``op`` for tensors on ``device``, or None to use its torch twin."""
    if op not in OPS:
        raise ValueError(f"unknown op '{op}' (expected one of {', '.join(OPS)})")
    _, kernels = _resolve(device)
    return None if kernels is None else kernels[op]


def tinycudann():
    """The ``tinycudann`` module when installed and CUDA is available, else None (guarded import)."""
    if not torch.cuda.is_available():
        return None
    try:
        import tinycudann as tcnn  # type: ignore[import-not-found]
    except Exception:  # ImportError, or a build of it that does not match this GPU/torch
        return None
    return tcnn


def build_status() -> dict:
    """Diagnostics: the chosen backend, each extension kind's state, tinycudann, threads. Builds nothing."""
    from cuda_ext.loader import build_status as ext_status, cuda_toolkit_available

    return {
        "backend": get_backend(),
        "extensions": ext_status(),
        "cuda_available": torch.cuda.is_available(),
        "cuda_toolkit": cuda_toolkit_available(),
        "tinycudann": tinycudann() is not None,
        "cpu_threads": torch.get_num_threads(),
    }
