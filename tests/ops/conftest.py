"""The compiled CPU kernels, built once per test session (the first build takes a minute or two)."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session")
def cpu_ext():
    """The loaded CPU extension; a build failure fails the tests that need it (never a skip)."""
    import cuda_ext

    return cuda_ext.load("cpu")


@pytest.fixture(scope="session")
def cpp(cpu_ext):
    """op name -> compiled callable with the public op's signature (CPU tensors)."""
    from recon.ops.compiled import make_kernels

    return make_kernels(cpu_ext)


@pytest.fixture
def n_threads():
    """Set torch's (and so the kernels' OpenMP) thread count for one test, then restore it."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def default_backend_at_start():
    """Each ops test starts on the process default: nothing run before it (a fit, say) left a backend forced."""
    from recon.ops.backend import get_backend

    assert get_backend() == "auto", f"an earlier test left the backend forced to '{get_backend()}'"
