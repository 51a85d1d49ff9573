"""`auto` endpoints: the bundled server running for this user, or one started for a context."""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import httpx

from serving._bundle import bundled_server, embedded_plan, embedding_model_or_none
from serving._embedded import SERVER_NAME, EmbeddedServer, free_port
from serving._models import prepare_model_file
from serving._state import ServerState, pid_alive, read_state, state_dir

log = logging.getLogger(__name__)


class ServerHandle(Protocol):
    """What open_endpoint needs from a bundled server it found or started."""

    @property
    def base_url(self) -> str: ...

    @property
    def started(self) -> bool:
        """True when this context started the server (and stops it on exit)."""
        ...

    def crash_message(self) -> str | None:
        """A one-line message naming the server if it died, else None."""
        ...


@dataclass
class RunningServer:
    """A server started by `python -m serving up`, found through the state file."""

    state: ServerState
    started: bool = False

    @property
    def base_url(self) -> str:
        return self.state.url

    def crash_message(self) -> str | None:
        if pid_alive(self.state.pid):
            return None
        return (
            f"the bundled model server ({self.state.engine}, pid {self.state.pid}, model {self.state.model}) "
            f"at {self.state.url} stopped during the run"
        )


@dataclass
class StartedServer:
    """An embedded server this context started; stopped when the context exits."""

    server: EmbeddedServer
    started: bool = True

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def crash_message(self) -> str | None:
        return self.server.crash_message()


async def healthy(url: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2.0, trust_env=False) as client:
            return (await client.get(url.removesuffix("/v1") + "/health")).status_code == 200
    except httpx.HTTPError:
        return False


class _ProgressLog:
    """Assembly progress as log lines every 10 %, so a first run is not silent for seconds."""

    def __init__(self) -> None:
        self._next = 0

    def __call__(self, stage: str, done: int, total: int) -> None:
        percent = done * 100 // max(total, 1)
        if percent >= self._next:
            log.info("%s the packaged model: %d%% of %.2f GB", stage, percent, total / 1e9)
            self._next = percent + 10


def find_running() -> ServerState | None:
    return read_state()


@asynccontextmanager
async def auto_server() -> AsyncIterator[ServerHandle]:
    state = find_running()
    if state is not None and await healthy(state.url):
        log.info("using the bundled server at %s (pid %d, %s)", state.url, state.pid, state.model)
        yield RunningServer(state)
        return
    choice = await asyncio.to_thread(prepare_model_file, None, _ProgressLog())
    embedding = await asyncio.to_thread(embedding_model_or_none, _ProgressLog())
    logs = state_dir() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = Path(tempfile.mkstemp(prefix="embedded-", suffix=".log", dir=logs)[1])
    plan = embedded_plan(choice.path, choice.alias, embedding, port=free_port(), log_dir=None)
    server = bundled_server(plan, alias=choice.alias, log_path=log_path)
    log.info("starting the %s for this run", SERVER_NAME)
    try:
        await asyncio.to_thread(server.start, status=lambda line: log.info("%s", line))
        yield StartedServer(server)
    finally:
        # shielded: a cancelled run must still not leave the server behind
        await asyncio.shield(asyncio.to_thread(server.stop))
        if server.exit_code() in (0, None):
            await asyncio.to_thread(log_path.unlink, missing_ok=True)
            await asyncio.to_thread(log_path.with_suffix(".plan.json").unlink, missing_ok=True)
