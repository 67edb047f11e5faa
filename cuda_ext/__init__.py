"""recon's compiled kernels: C++/OpenMP for CPU tensors, CUDA for GPU tensors.

Sources live in ``csrc/<op>/{<op>.h, <op>_cpu.cpp, <op>.cu}`` and are bound in
``csrc/ext.cpp``. Importing this package compiles nothing: ``load(kind)`` builds
on first use and caches the result (see ``loader``). Use them through
``recon.ops``, which picks the backend and falls back to the PyTorch twins.
"""
from .loader import ExtensionBuildError, ExtensionLoader, build_status, default_loader, load

__all__ = ["ExtensionBuildError", "ExtensionLoader", "build_status", "default_loader", "load"]
