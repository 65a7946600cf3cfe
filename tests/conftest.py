"""Shared test set-up: no test may touch the network.

HF_HUB_OFFLINE is set before anything imports huggingface_hub, and an autouse fixture
makes every connection attempt to a non-loopback address (and every DNS lookup of a
non-local name) raise *and* fail the test at teardown, so code that swallows the
exception is still caught. Loopback and Unix sockets stay allowed (e.g. a one-process
torch.distributed group), since they never leave the machine.
"""
from __future__ import annotations

import os
import socket

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
# OpenMP threads that spin while waiting make torch 10-50x slower when the CPUs are shared
# (parallel test runs, CI); passive waiting costs nothing on an idle machine. Must be set
# before torch is imported, hence here.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# decoded-image caches go to a temporary folder, not the user's ~/.cache (subprocesses inherit it)
if "BRAINALIGN_IMAGE_CACHE" not in os.environ:
    import atexit
    import shutil
    import tempfile

    os.environ["BRAINALIGN_IMAGE_CACHE"] = tempfile.mkdtemp(prefix="brainalign-test-images-")
    atexit.register(shutil.rmtree, os.environ["BRAINALIGN_IMAGE_CACHE"], True)

_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0", "", None}


class NetworkAccessError(RuntimeError):
    """Raised when a test tries to open a network connection."""


def _is_local(address) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return True
    if isinstance(address, tuple) and address:
        host = address[0]
        return host in _LOCAL_HOSTS or str(host).startswith("127.")
    return False


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Fail the test if anything tries to reach another machine (connect or DNS lookup)."""
    attempts: list[str] = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_create, real_getaddrinfo = socket.create_connection, socket.getaddrinfo

    def refuse(what):
        attempts.append(what)
        raise NetworkAccessError(f"tests must not use the network (attempted: {what})")

    def connect(self, address):
        return real_connect(self, address) if _is_local(address) else refuse(f"connect {address!r}")

    def connect_ex(self, address):
        return real_connect_ex(self, address) if _is_local(address) else refuse(f"connect {address!r}")

    def create_connection(address, *args, **kwargs):
        return real_create(address, *args, **kwargs) if _is_local(address) else refuse(f"connect {address!r}")

    def getaddrinfo(host, *args, **kwargs):
        return real_getaddrinfo(host, *args, **kwargs) if _is_local((host,)) else refuse(f"DNS lookup {host!r}")

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield attempts
    if attempts:
        pytest.fail(f"test attempted {len(attempts)} network access(es), first: {attempts[0]}")


@pytest.fixture
def tiny_source(monkeypatch):
    """EEG sources replaced by 16 random 32-px images x (3 channels x 4 times), 8 concepts; returns
    the (source, subject, split) calls the CLI made."""
    import numpy as np

    import brainalign.data.registry as data_registry
    from brainalign.alignment import grid
    from brainalign.data.dataset import NeuralDataset

    calls = []

    def fake(source, subject=1, split="test", **kw):
        calls.append((source, subject, split))
        rng = np.random.default_rng(subject)
        return NeuralDataset(images=rng.random((16, 3, 32, 32), dtype=np.float32),
                             responses=rng.standard_normal((16, 3, 4)), modality="eeg", subject=subject,
                             concepts=np.repeat(list("abcdefgh"), 2))

    monkeypatch.setattr(data_registry, "load_eeg_source", fake)
    monkeypatch.setattr(grid, "_CACHE", {})  # no dataset kept from another test's grid
    return calls
