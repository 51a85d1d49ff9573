"""The test PostgreSQL cluster does not outlive a test run killed by a signal."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests._postgres import INSTALL_HINT, debian_bin_dir, postgres_cluster

_REPO = Path(__file__).resolve().parent.parent

# a stand-in for a pytest run: starts a cluster, says where, and waits to be killed
_OWNER = """
import sys, time
from pathlib import Path
from tests._postgres import postgres_cluster
with postgres_cluster(Path(sys.argv[1])) as cluster:
    print(cluster.port, cluster.data_dir.parent, flush=True)
    time.sleep(600)
"""


def _accepting(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def test_a_cluster_stops_when_its_test_process_is_killed() -> None:
    bin_dir = debian_bin_dir()
    if bin_dir is None:
        pytest.skip(f"PostgreSQL is not installed; {INSTALL_HINT}")
    with subprocess.Popen(
        [sys.executable, "-c", _OWNER, str(bin_dir)], cwd=_REPO, stdout=subprocess.PIPE, text=True
    ) as owner:
        try:
            assert owner.stdout is not None
            port_text, root_text = owner.stdout.readline().split()
            port, root = int(port_text), Path(root_text)
            assert _accepting(port)
            os.kill(owner.pid, signal.SIGKILL)  # no `finally` runs in the owner
            owner.wait()
            # PostgreSQL's immediate shutdown takes well under a second; 30 s covers a loaded box
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and (_accepting(port) or root.exists()):
                time.sleep(0.1)
            assert not _accepting(port), f"the cluster on port {port} is still running"
            assert not root.exists(), f"{root} was not deleted"
        finally:
            owner.kill()


def _children() -> set[int]:
    tasks = Path(f"/proc/{os.getpid()}/task").iterdir()
    return {int(pid) for task in tasks for pid in (task / "children").read_text().split()}


def test_a_cluster_started_inside_a_test_leaves_no_child_process() -> None:
    # a test that asks for the cluster fixture lazily (getfixturevalue) starts it inside the
    # test: its watchdog must not count as a child process left behind by that test
    bin_dir = debian_bin_dir()
    if bin_dir is None:
        pytest.skip(f"PostgreSQL is not installed; {INSTALL_HINT}")
    before = _children()
    with postgres_cluster(bin_dir) as cluster:
        assert _accepting(cluster.port)
        assert _children() == before
    assert not _accepting(cluster.port)
