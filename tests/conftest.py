"""Test-wide guards: no network but loopback, and nothing left behind by a test."""

from __future__ import annotations

import gc
import ipaddress
import os
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _is_loopback(address: Any) -> bool:
    if not isinstance(address, tuple):  # AF_UNIX paths
        return True
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _guarded_connect(self: socket.socket, address: Any) -> None:
    if not _is_loopback(address):
        raise ConnectionRefusedError(f"test network guard: connection to {address!r} is not loopback")
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    if not _is_loopback(address):
        raise ConnectionRefusedError(f"test network guard: connection to {address!r} is not loopback")
    return _real_connect_ex(self, address)


@pytest.fixture(autouse=True, scope="session")
def _loopback_only() -> Iterator[None]:
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign,assignment]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign,assignment]
    yield
    socket.socket.connect = _real_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _real_connect_ex  # type: ignore[method-assign]


def _live_children() -> dict[int, str]:
    """This process's child processes that are still running (zombies excluded), with their commands."""
    found = {}
    me = os.getpid()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) != me or fields[0] == "Z":
                continue
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
            found[int(proc.name)] = command.decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue
    return found


LEFTOVER_GRACE = 5.0
"""Seconds a test's child process may take to finish exiting after the test (a killed process
is reaped asynchronously); generous because the machine may be busy."""


@pytest.fixture(autouse=True)
def _nothing_left_behind() -> Iterator[None]:
    """Fail the test that leaves a socket, file or child process behind, not the session's end.

    gc.collect() here makes an unclosed socket's ResourceWarning (an error under
    filterwarnings=error) surface in this test's teardown instead of at interpreter exit,
    where pytest can only blame "the session".
    """
    before = set(_live_children())
    yield
    gc.collect()
    deadline = time.monotonic() + LEFTOVER_GRACE
    while leftovers := {p: c for p, c in _live_children().items() if p not in before}:
        if time.monotonic() > deadline:
            pytest.fail(f"child processes left running after the test: {leftovers}", pytrace=False)
        time.sleep(0.05)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if shutil.which("nvidia-smi"):
        return
    skip = pytest.mark.skip(reason="no GPU on this machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
