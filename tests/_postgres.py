"""A throwaway PostgreSQL cluster for tests: initdb in a temp dir, a free port on 127.0.0.1,
stopped and deleted at the end. Runs as the unprivileged `postgres` user when the tests run
as root (initdb refuses root), as the current user otherwise.

Binaries: Debian's `postgresql` package (/usr/lib/postgresql/N/bin). For pgvector, Debian's
`postgresql-N-pgvector` where the distribution has it (bookworm does not), else the
PostgreSQL 16 + pgvector build that the `pgserver` wheel ships (found without importing it).

    from tests._postgres import postgres_cluster   # a fixture factory, see below
    def test_x(pgvector_dsn: str): ...             # after `pytest_plugins = ["tests._postgres"]`
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

_WATCHDOG = Path(__file__).with_name("_pg_watchdog.py")
INSTALL_HINT = (
    "scripts/install-system-packages.sh installs PostgreSQL; `pip install pgserver` brings pgvector"
)


@dataclass(frozen=True)
class Cluster:
    dsn: str
    bin_dir: Path
    data_dir: Path
    port: int


def debian_bin_dir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    return found[-1].parent if found else None


def pgvector_bin_dir() -> Path | None:
    debian = debian_bin_dir()
    if debian is not None:
        version = debian.parent.name
        if Path(f"/usr/share/postgresql/{version}/extension/vector.control").exists():
            return debian
    spec = importlib.util.find_spec("pgserver")  # locates the wheel without importing it
    if spec is not None and spec.submodule_search_locations:
        bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
        if (bin_dir / "initdb").exists() and (bin_dir.parent / "lib/postgresql/vector.so").exists():
            return bin_dir
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_cluster_user(args: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return args
    runuser = shutil.which("runuser")
    if runuser is None:
        raise RuntimeError("running as root needs runuser to start PostgreSQL as the postgres user")
    return [runuser, "-u", "postgres", "--", *args]


@contextlib.contextmanager
def postgres_cluster(bin_dir: Path) -> Iterator[Cluster]:
    """Start a cluster with `trust` auth on 127.0.0.1; yield its DSN; stop and delete it."""
    root = Path(tempfile.mkdtemp(prefix="pg-test-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    data, port = root / "data", _free_port()
    # stops the cluster if this process dies without running the `finally` below
    subprocess.run(
        [sys.executable, str(_WATCHDOG), str(os.getpid()), str(data), str(root)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        check=True,
    )
    try:
        subprocess.run(
            _as_cluster_user([str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]),
            check=True,
            capture_output=True,
        )
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            _as_cluster_user(
                [
                    str(bin_dir / "pg_ctl"),
                    "-D",
                    str(data),
                    "-l",
                    str(root / "log"),
                    "-o",
                    options,
                    "-w",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
        _wait_accepting(port)
        yield Cluster(f"postgresql://postgres@127.0.0.1:{port}/postgres", bin_dir, data, port)
    finally:
        subprocess.run(
            _as_cluster_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(root, ignore_errors=True)


def _wait_accepting(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"PostgreSQL did not accept connections on port {port} within 60 s")


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """A DSN of a plain PostgreSQL (Debian's), for the gateway's database tests."""
    bin_dir = debian_bin_dir()
    if bin_dir is None:
        pytest.skip(f"PostgreSQL is not installed; {INSTALL_HINT}")
    with postgres_cluster(bin_dir) as cluster:
        yield cluster.dsn


@pytest.fixture(scope="session")
def pgvector_dsn() -> Iterator[str]:
    """A DSN of a PostgreSQL with the pgvector extension available."""
    bin_dir = pgvector_bin_dir()
    if bin_dir is None:
        pytest.skip(f"no PostgreSQL with pgvector here; {INSTALL_HINT}")
    with postgres_cluster(bin_dir) as cluster:
        yield cluster.dsn
