"""Stops a test PostgreSQL cluster when the test process that started it is gone.

`pg_ctl start` daemonises the server, so a pytest run killed by a signal (no `finally`) left
its clusters running. `tests/_postgres.py` starts this beside each cluster:

    python tests/_pg_watchdog.py OWNER_PID DATA_DIR ROOT_DIR

It forks and the first process exits at once, so the watchdog is nobody's child: the suite's
guard against child processes left behind by a test does not see it (a cluster may be started
lazily, inside a test). It blocks on the owner's pidfd (no polling), then sends the postmaster
SIGQUIT (PostgreSQL's immediate shutdown), waits for it, and deletes ROOT_DIR; when the owner
stopped the cluster itself there is nothing left to do. Stdlib only: it must start fast.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import sys
import time
from pathlib import Path


def _wait_gone(pid: int) -> None:
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        select.select([fd], [], [])
    finally:
        os.close(fd)


def _postmaster_pid(data: Path) -> int | None:
    try:
        return int((data / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


def main(owner: int, data: Path, root: Path) -> None:
    _wait_gone(owner)
    pid = _postmaster_pid(data)
    if pid is not None:
        try:
            os.kill(pid, signal.SIGQUIT)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            time.sleep(0.1)
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    if os.fork() > 0:
        os._exit(0)
    main(int(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
