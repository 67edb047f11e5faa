"""Backend selection, dispatch of the public ops, and the failed-build path (one warning, then twins)."""
from __future__ import annotations

import subprocess
import sys
import warnings

import pytest
import torch

import cuda_ext.loader as loader_mod
from recon.core.errors import BackendError
from recon.ops import HashGridSpec, composite, composite_torch, hash_grid_encode, hash_grid_encode_torch, march_rays
from recon.ops import backend


@pytest.fixture
def fresh_backend(monkeypatch):
    """A backend with no kernels loaded or warnings given yet; restored afterwards."""
    monkeypatch.setattr(backend, "_BACKEND", "auto")
    monkeypatch.setattr(backend, "_KERNELS", {})
    monkeypatch.setattr(backend, "_WARNED", set())
    return backend


@pytest.fixture
def broken_loader(tmp_path, monkeypatch, fresh_backend):
    """Point the default loader at sources that do not compile (fails in well under a second)."""
    src = tmp_path / "csrc"
    src.mkdir()
    (src / "ext.cpp").write_text('#error "broken on purpose"\n')
    ld = loader_mod.ExtensionLoader(src_dir=src, root=tmp_path / "cache", name="recon_broken")
    monkeypatch.setattr(loader_mod, "_DEFAULT", ld)
    return ld


def test_set_backend_validates():
    with pytest.raises(ValueError, match="unknown backend"):
        backend.set_backend("metal")


def test_use_backend_is_scoped(fresh_backend):
    """use_backend forces a backend inside its block only (nested, and on exceptions too)."""
    with backend.use_backend("torch") as name:
        assert name == backend.get_backend() == "torch" and backend.active_backend("cpu") == "torch"
        with pytest.raises(ZeroDivisionError), backend.use_backend("cpp"):
            assert backend.get_backend() == "cpp"
            1 / 0
        assert backend.get_backend() == "torch"
    assert backend.get_backend() == "auto"
    backend.set_backend("cpp")  # the process default, for scripts
    with backend.use_backend("torch"):
        assert backend.get_backend() == "torch"
    assert backend.get_backend() == "cpp"
    with pytest.raises(ValueError, match="unknown backend"), backend.use_backend("metal"):
        pass
    assert backend.get_backend() == "cpp"


def test_auto_uses_cpp_on_cpu(cpu_ext, fresh_backend):
    assert backend.active_backend("cpu") == "cpp"
    assert backend.active_backend(torch.device("cpu")) == "cpp"
    assert callable(backend.get_kernel("composite", torch.device("cpu")))
    with pytest.raises(ValueError, match="unknown op"):
        backend.get_kernel("no_such_op", "cpu")


def test_forced_torch_returns_no_kernel(fresh_backend):
    backend.set_backend("torch")
    assert backend.active_backend("cpu") == "torch"
    assert backend.get_kernel("hash_grid_encode", "cpu") is None


def test_public_ops_dispatch_to_the_kernel(cpu_ext, fresh_backend, monkeypatch):
    """The public op calls the kernel get_kernel returns (and the twin when it returns None)."""
    spec = HashGridSpec(n_levels=3, n_features=2, log2_hashmap_size=10, base_resolution=4, max_resolution=32)
    x, table = torch.rand(100, 3), torch.rand(spec.n_params, 2)
    backend.set_backend("cpp")
    calls = []
    real = backend.get_kernel

    def spy(op, device):
        k = real(op, device)
        calls.append((op, k is not None))
        return k

    monkeypatch.setattr(backend, "get_kernel", spy)
    torch.testing.assert_close(hash_grid_encode(x, table, spec), hash_grid_encode_torch(x, table, spec))
    alphas, values, packed = torch.rand(6) * 0.5, torch.rand(6, 3), torch.tensor([[0, 4], [4, 2]])
    for a, b in zip(composite(alphas, values, packed), composite_torch(alphas, values, packed)):
        torch.testing.assert_close(a, b)
    march_rays(torch.zeros(2, 3) - 2, torch.ones(2, 3), torch.zeros(2), torch.full((2,), 6.0),
               torch.ones(4, 4, 4, dtype=torch.bool), 1.0, 0.1, 64)
    assert calls == [("hash_grid_encode", True), ("composite", True), ("march_rays", True)]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without CUDA")
def test_forced_cuda_without_cuda_raises(fresh_backend):
    backend.set_backend("cuda")
    with pytest.raises(BackendError, match="backend 'cuda' requested but CUDA is not available"):
        backend.active_backend("cpu")
    with pytest.raises(BackendError, match="CUDA is not available"):
        composite(torch.rand(2), torch.rand(2, 3), torch.tensor([[0, 2]]))


def test_forced_cpp_on_another_device_raises(fresh_backend):
    backend.set_backend("cpp")
    with pytest.raises(BackendError, match="CPU tensors"):
        backend.active_backend("meta")


def test_failed_build_warns_once_and_uses_the_twins(broken_loader):
    spec = HashGridSpec(n_levels=2, n_features=2, log2_hashmap_size=8, base_resolution=4, max_resolution=8)
    x, table = torch.rand(10, 3), torch.rand(spec.n_params, 2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            assert backend.active_backend("cpu") == "torch"
            out = hash_grid_encode(x, table, spec)
    ours = [w for w in caught if "kernels unavailable" in str(w.message)]
    assert len(ours) == 1, [str(w.message) for w in caught]
    assert "broken on purpose" in str(ours[0].message) or "build.log" in str(ours[0].message)
    assert torch.equal(out, hash_grid_encode_torch(x, table, spec))
    # the failure is on disk: the log and the marker
    bdir = broken_loader.build_dir("cpu")
    assert (bdir / "FAILED").is_file() and "broken on purpose" in (bdir / "build.log").read_text()


def test_failed_build_is_remembered_across_processes(broken_loader, monkeypatch):
    with pytest.raises(loader_mod.ExtensionBuildError):
        broken_loader.load("cpu")
    # a new process = a new loader on the same cache: it fails fast, without compiling
    again = loader_mod.ExtensionLoader(src_dir=broken_loader.src_dir, root=broken_loader.root, name="recon_broken")
    from torch.utils import cpp_extension

    def no_compile(*a, **k):
        raise AssertionError("a remembered failure must not rebuild")

    monkeypatch.setattr(cpp_extension, "load", no_compile)
    with pytest.raises(loader_mod.ExtensionBuildError, match="earlier build .* failed"):
        again.load("cpu")
    # forcing the cpp backend turns it into a BackendError naming the backend
    monkeypatch.setattr(loader_mod, "_DEFAULT", again)
    backend.set_backend("cpp")
    with pytest.raises(BackendError, match="backend 'cpp' requested"):
        backend.get_kernel("composite", "cpu")
    # RECON_EXT_REBUILD=1 tries again (and reaches the compiler)
    monkeypatch.setenv("RECON_EXT_REBUILD", "1")
    fresh = loader_mod.ExtensionLoader(src_dir=broken_loader.src_dir, root=broken_loader.root, name="recon_broken")
    with pytest.raises(loader_mod.ExtensionBuildError, match="building the cpu kernels failed"):
        fresh.load("cpu")


def test_cache_key_follows_the_sources(tmp_path):
    src = tmp_path / "csrc"
    src.mkdir()
    (src / "ext.cpp").write_text("int a;\n")
    ld = loader_mod.ExtensionLoader(src_dir=src, root=tmp_path)
    k1 = ld.key("cpu")
    (src / "ext.cpp").write_text("int b;\n")
    k2, c2 = ld.key("cpu"), ld.key("cuda")
    assert k2 != k1 and k2 != c2
    (src / "op").mkdir()
    (src / "op" / "op.cu").write_text("int c;\n")  # CUDA-only source: the CPU build stays valid
    assert ld.key("cpu") == k2 and ld.key("cuda") != c2
    (src / "op" / "op.h").write_text("int d;\n")  # headers count for both
    assert ld.key("cpu") != k2


def test_build_status_reports_without_building(cpu_ext):
    st = backend.build_status()
    assert st["extensions"]["cpu"]["loaded"] is True and st["extensions"]["cpu"]["error"] is None
    assert set(st) >= {"backend", "extensions", "cuda_available", "tinycudann", "cpu_threads"}


def test_imports_compile_nothing(tmp_path):
    code = ("import sys, recon, cuda_ext, recon.ops, recon.ops.backend; "
            "assert 'torch.utils.cpp_extension' not in sys.modules, 'cpp_extension imported'")
    env = {"TORCH_EXTENSIONS_DIR": str(tmp_path / "ext"), "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=str(tmp_path.parent))
    assert not (tmp_path / "ext").exists()


def test_a_stale_build_lock_is_removed(tmp_path):
    import os
    import time

    lock = tmp_path / "lock"
    lock.write_text("")
    loader_mod._clear_stale_lock(lock)
    assert lock.exists()  # a build may be running
    old = time.time() - loader_mod.STALE_LOCK_S - 60
    os.utime(lock, (old, old))
    loader_mod._clear_stale_lock(lock)
    assert not lock.exists()
