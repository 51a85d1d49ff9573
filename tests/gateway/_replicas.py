"""Real gateway processes (`python -m gateway`) on 127.0.0.1 over one database, for the
cross-replica tests and the benchmark."""

from __future__ import annotations

import asyncio
import re
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from gateway._db import connect

REPO = Path(__file__).resolve().parents[2]


@contextmanager
def gateway_process(
    db_url: str, base_url: str, model: str, log: Path, *options: str, startup: float = 120
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`python -m gateway --db db_url` on a free port; yields the process and its URL once healthy.

    `startup` bounds each of the two waits (the address line, then /health); the default is
    generous because the process imports AutoGen first, slow on a loaded 2-core machine.
    """
    command = [sys.executable, "-m", "gateway", "--port", "0", "--db", db_url, "--base-url", base_url]
    command += ["--model", model, "--log-level", "warning", *options]
    with log.open("a") as errors:
        proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=errors, text=True)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], startup)
        line = proc.stdout.readline() if ready else ""
        match = re.search(r"base_url (http://\S+)/v1", line)
        assert match, f"no address from the gateway: {line!r}; log:\n{log.read_text()}"
        url = match.group(1)
        deadline = time.monotonic() + startup
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, f"gateway exited; log:\n{log.read_text()}"
            assert time.monotonic() < deadline, "gateway did not become healthy"
            time.sleep(0.05)
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(30)
        if proc.stdout is not None:
            proc.stdout.close()


def executor_pid(db_url: str, run_id: str) -> int | None:
    """The pid of the gateway process that claimed `run_id` (from the database)."""

    async def query() -> int | None:
        db = await connect(db_url)
        try:
            row = (
                await db.execute(
                    "SELECT replicas.pid FROM runs JOIN replicas ON replicas.id = runs.owner"
                    " WHERE runs.id = ?",
                    (run_id,),
                )
            ).one()
        finally:
            await db.close()
        return int(row["pid"]) if row else None

    return asyncio.run(query())


def replica_pids(db_url: str) -> list[int]:
    """The pids of the gateway processes registered in the database."""

    async def query() -> list[int]:
        db = await connect(db_url)
        try:
            return [int(r["pid"]) for r in (await db.execute("SELECT pid FROM replicas")).rows]
        finally:
            await db.close()

    return asyncio.run(query())
