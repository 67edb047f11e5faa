"""A real Ray cluster for the module (``ray_cluster``); the catalogue fixtures come from
tests/catalog_support.py through tests/conftest.py."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import NamedTuple

import pytest
import catalog_support as support


# -- a real Ray cluster for the module (ray start --head on loopback) ---------------------------


# Single-node Ray on Linux still advertises the machine's address; RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0
# keeps the head, the workers and the driver on 127.0.0.1 (multi-node joining is what it turns
# off). Ray >= 2.5x turns token auth on for `ray start` when ~/.ray/auth_token exists (any local
# ray.init() writes one), and the driver must then agree: the test cluster says "disabled" to both.
RAY_LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0",
                    "RAY_AUTH_MODE": "disabled"}


class RayCluster(NamedTuple):
    address: str  # host:port of the head (GCS)
    client_address: str  # ray://host:port of its Ray Client server
    env: dict  # environment a driver process needs to stay on loopback


@pytest.fixture(scope="module")
def ray_cluster():
    """``ray start --head --block`` (2 CPUs) in its own process group; this process connects as a
    driver once (Ray start-up is slow) and in-process ingest runs reuse the connection."""
    ray_bin = shutil.which("ray", path=os.path.dirname(sys.executable)) or shutil.which("ray")
    if ray_bin is None:
        pytest.fail("ray is not installed: run scripts/setup.sh (pip package ray[client])")
    saved = {k: os.environ.get(k) for k in RAY_LOOPBACK_ENV}
    os.environ.update(RAY_LOOPBACK_ENV)
    tmp = tempfile.mkdtemp(prefix="ray")  # short: Ray's socket paths must fit in 107 bytes
    port, client_port = support.free_port(), support.free_port()
    cmd = [ray_bin, "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={port}",
           f"--ray-client-server-port={client_port}", "--num-cpus=2", "--num-gpus=0",
           "--object-store-memory=78643200", "--include-dashboard=false", "--disable-usage-stats",
           f"--temp-dir={tmp}"]
    log = open(os.path.join(tmp, "ray-start.log"), "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, **RAY_LOOPBACK_ENV})
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            if proc.poll() is not None or time.time() > deadline:
                pytest.fail(f"ray start failed:\n{open(os.path.join(tmp, 'ray-start.log')).read()[-3000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.2)
        import ray

        ray.init(address=address, log_to_driver=False, logging_level="WARNING")
        yield RayCluster(address, f"ray://127.0.0.1:{client_port}", dict(RAY_LOOPBACK_ENV))
    finally:
        try:
            import ray

            ray.shutdown()
        except ImportError:
            pass
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(1)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
        if os.environ.get("RECON_TEST_KEEP_RAY_LOGS") != "1":  # =1 keeps Ray's logs for debugging
            shutil.rmtree(tmp, ignore_errors=True)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
