"""The front's backend supervisor, with a process whose exit the test decides: what a request
that was waiting on the backend is told when it ends."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from pathlib import Path

from serving._front import Backend, BackendSpec
from serving._supervise import RESTART_LIMIT, Supervisor


class FakeProcess:
    """A backend process that runs until `end(code)`; each launch is a new process."""

    def __init__(self) -> None:
        self.pid: int | None = 1000
        self.log_path: Path | None = None
        self._ended = threading.Event()
        self._all = [self._ended]
        self._code = 0
        self._watched = [threading.Event() for _ in range(4)]  # [k]: the k-th wait() began

    def watched(self, k: int) -> threading.Event:
        """Set once the supervisor waits for the k-th process (1: the first; 2: the first
        restart, waited for only once the supervisor counts it back up)."""
        return self._watched[k]

    def crash_message(self) -> str | None:
        return None

    def launch(self) -> None:
        self.pid = (self.pid or 1000) + 1
        self._ended = threading.Event()
        self._all.append(self._ended)

    def wait_ready(self, timeout: float) -> None:
        pass

    def wait(self, timeout: float | None) -> int | None:
        ended = self._ended  # the process being waited for, not a later one
        self._watched[len(self._all)].set()
        return self._code if ended.wait(timeout) else None

    def end(self, code: int) -> None:
        self._code = code
        self._ended.set()

    def close(self) -> None:
        """Every process ends (their watch threads return)."""
        for ended in self._all:
            ended.set()


@contextlib.asynccontextmanager
async def _supervised(
    restart_limit: int = RESTART_LIMIT,
) -> AsyncIterator[tuple[FakeProcess, Backend, Supervisor]]:
    """A backend on a fake process under a started supervisor; everything ends on exit."""
    process = FakeProcess()
    spec = BackendSpec(model="m", capabilities=["chat"], engine="llama.cpp", url="http://127.0.0.1:9/v1")
    backend = Backend(spec, process=process)
    supervisor = Supervisor([backend], restart_limit=restart_limit)
    supervisor.start()
    try:
        yield process, backend, supervisor
    finally:
        await supervisor.stop()
        process.close()


async def test_a_request_waiting_when_its_backend_dies_is_told_the_restart_that_is_coming() -> None:
    # the request's connection broke first and it waits for the exit; the exit then wakes it
    # before the restart task runs, so the restart must be counted when the exit is seen
    async with _supervised() as (process, backend, supervisor):
        lost = asyncio.create_task(backend.lost(ConnectionResetError("peer closed"), 0))
        await asyncio.sleep(0.05)
        assert not lost.done()
        process.end(-9)
        message = await asyncio.wait_for(lost, 5)
        assert message == (
            "the llama.cpp backend of m (pid 1000, http://127.0.0.1:9/v1) was killed by SIGKILL during "
            "the request; it is being restarted (restart 1 of at most 3 within 60 s): retry the request"
        )
        assert await asyncio.to_thread(process.watched(2).wait, 5)
        assert backend.health.status == "ok"
        assert backend.health.restarts == 1 and process.pid == 1001


async def test_a_request_in_the_same_loop_turn_as_the_exit_is_told_the_restart_that_is_coming() -> None:
    # found by a loaded full run: a stream's broken connection was handled in the same loop
    # turn as the exit and read the restart count before the restart task had counted it
    # ("restart 0 of at most 3")
    async with _supervised() as (process, backend, supervisor):
        seen: list[str | None] = []
        loop = asyncio.get_running_loop()
        loop.call_soon(supervisor._ended, backend, 0, -9)  # what the watch thread hands the loop
        loop.call_soon(lambda: seen.append(backend.gone()))  # a request in the same turn
        await asyncio.sleep(0)
        assert backend.health.status == "restarting"
        assert await asyncio.to_thread(process.watched(2).wait, 5)
        assert backend.gone() is None  # back
        assert seen == [
            "the llama.cpp backend of m (pid 1000, http://127.0.0.1:9/v1) was killed by SIGKILL; it is "
            "being restarted (restart 1 of at most 3 within 60 s): retry the request"
        ]


async def test_the_end_past_the_limit_is_reported_broken_at_once() -> None:
    async with _supervised(restart_limit=1) as (process, backend, supervisor):
        process.end(-9)
        assert await asyncio.to_thread(process.watched(2).wait, 5)
        lost = asyncio.create_task(backend.lost(ConnectionResetError("peer closed"), 1))
        await asyncio.sleep(0.05)
        process.end(-15)
        message = await asyncio.wait_for(lost, 5)
        assert message == (
            "the llama.cpp backend of m (http://127.0.0.1:9/v1) is broken: it ended 2 times within 60 s "
            "(last: the llama.cpp backend of m (pid 1001, http://127.0.0.1:9/v1) was killed by SIGTERM), "
            "so it is not restarted again"
        )
        assert backend.health.status == "broken" and backend.health.restarts == 1
