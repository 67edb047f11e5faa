"""The kernel sources: unique file stems, and the CUDA code compiles (nvcc) without a GPU."""
from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig
from collections import Counter
from pathlib import Path

import pytest

from cuda_ext.loader import SRC_DIR, ExtensionLoader

NVCC = shutil.which("nvcc")
needs_nvcc = pytest.mark.skipif(NVCC is None, reason="nvcc not found")


def test_kernel_file_stems_are_unique():
    """torch's build names objects by file stem (foo.cpp -> foo.o, foo.cu -> foo.cuda.o)."""
    files = [p for p in SRC_DIR.rglob("*") if p.suffix in (".cpp", ".cu", ".h", ".cuh")]
    stems = Counter(p.stem for p in files if p.suffix in (".cpp", ".cu"))
    assert [s for s, n in stems.items() if n > 1] == []
    names = Counter(p.name for p in files)
    assert [s for s, n in names.items() if n > 1] == []


def test_every_op_has_its_three_files():
    ops = [d for d in SRC_DIR.iterdir() if d.is_dir()]
    assert {d.name for d in ops} >= {"hash_grid", "ray_march", "composite", "rasterize"}
    for d in ops:
        for f in (f"{d.name}.h", f"{d.name}_cpu.cpp", f"{d.name}.cu"):
            assert (d / f).is_file(), f"missing {d.name}/{f}"
    srcs = ExtensionLoader().sources("cuda")
    assert {p.name for p in srcs} == {"ext.cpp"} | {f"{d.name}_cpu.cpp" for d in ops} | {f"{d.name}.cu" for d in ops}


@needs_nvcc
@pytest.mark.parametrize("op", ["hash_grid", "ray_march", "composite", "rasterize"])
def test_cuda_kernels_compile(op, tmp_path):
    """Each .cu is plain CUDA C++ (raw pointers, no torch headers): nvcc compiles it on its own."""
    src = SRC_DIR / op / f"{op}.cu"
    res = subprocess.run([NVCC, "-c", "-std=c++17", "--expt-relaxed-constexpr", "-O3", str(src),
                          "-o", str(tmp_path / f"{op}.o")], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]


@needs_nvcc
def test_cuda_bindings_compile(tmp_path):
    """ext.cpp with RECON_WITH_CUDA (the CUDA extension's bindings) passes the C++ compiler.

    The CPU torch wheel lacks one generated CUDA header (c10/cuda/impl/cuda_cmake_macros.h);
    a stand-in defines its one macro.
    """
    from torch.utils.cpp_extension import CUDA_HOME, include_paths

    homes = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), CUDA_HOME, "/usr/local/cuda",
             str(Path(NVCC).resolve().parent.parent)]
    cuda_home = next((Path(h) for h in homes if h and (Path(h) / "include" / "cuda_runtime.h").is_file()), None)
    if cuda_home is None:
        pytest.skip("CUDA headers (cuda_runtime.h) not found")
    shim = tmp_path / "shim" / "c10" / "cuda" / "impl"
    shim.mkdir(parents=True)
    (shim / "cuda_cmake_macros.h").write_text("#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n")
    cmd = ["c++", "-std=c++20", "-fsyntax-only", "-DRECON_WITH_CUDA", "-DTORCH_EXTENSION_NAME=recon_check",
           f"-I{tmp_path / 'shim'}", f"-I{cuda_home / 'include'}", f"-I{sysconfig.get_paths()['include']}"]
    cmd += [f"-I{p}" for p in include_paths()] + [str(SRC_DIR / "ext.cpp")]
    res = subprocess.run(cmd, capture_output=True, text=True)
    errors = [line for line in res.stderr.splitlines() if "error" in line]
    assert res.returncode == 0, "\n".join(errors[:20]) or res.stderr[-3000:]


def test_cpu_kernels_need_no_torch(tmp_path):
    """The *_cpu.cpp files compile with a plain C++17 compiler and OpenMP, without torch."""
    for src in sorted(SRC_DIR.glob("*/*_cpu.cpp")):
        res = subprocess.run(["c++", "-std=c++17", "-fopenmp", "-Wall", "-Werror", "-c", str(src),
                              "-o", str(tmp_path / f"{src.stem}.o")], capture_output=True, text=True)
        assert res.returncode == 0, res.stderr[-3000:]
