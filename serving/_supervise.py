"""Keeps the bundled front's backends running: a backend process that ends is seen at once and
restarted, within a bound.

One thread per backend process blocks in `wait()` and reports the exit to the front's event
loop the moment it happens, so a request in flight fails at once with the reason (not when a
timeout expires) and new requests get a 503 that says the backend is restarting. The process
is started again with its own command; past RESTART_LIMIT restarts within RESTART_WINDOW
seconds (the MCP pool's bound) it is reported broken, with the last lines of its log, and
left down: a backend that dies at once every time is not restarted forever.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from serving._embedded import log_tail
from serving._errors import ServingError

log = logging.getLogger(__name__)

RESTART_LIMIT = 3
"""Restarts allowed within RESTART_WINDOW seconds; one more end and the backend is broken."""
RESTART_WINDOW = 60.0
EXIT_NOTICE = 2.0
"""How long a request whose connection broke waits for the process exit that explains it."""

Status = Literal["ok", "restarting", "broken"]


class Restartable(Protocol):
    """What the supervisor needs of a backend process (serving._embedded.EmbeddedServer)."""

    @property
    def pid(self) -> int | None: ...

    @property
    def log_path(self) -> Path | None: ...

    def launch(self) -> None: ...

    def wait_ready(self, timeout: float) -> None: ...

    def wait(self, timeout: float | None) -> int | None: ...


class Backend(Protocol):
    """What the supervisor needs of the front's backend (serving._front.Backend)."""

    health: Health

    @property
    def model(self) -> str: ...

    @property
    def process(self) -> object | None: ...

    @property
    def start_timeout(self) -> float: ...

    def describe(self, pid: bool = True) -> str: ...


def how_it_ended(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


@dataclass
class Health:
    """One backend's state as the front sees it."""

    status: Status = "ok"
    problem: str | None = None  # why it is not ok, for error messages
    last_end: str | None = None  # how its last process ended (kept after a restart)
    restarts: int = 0
    generation: int = 0  # bumped at each (re)start: an old process's exit is not news
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    ended_at: deque[float] = field(default_factory=deque)
    restart_limit: int = RESTART_LIMIT
    restart_window: float = RESTART_WINDOW

    def unavailable(self, during_request: bool = False) -> str | None:
        """Why requests cannot be served now, with what happens next; None when ok."""
        if self.status == "ok" or self.problem is None:
            return None
        if self.status == "broken":
            return self.problem
        during = " during the request" if during_request else ""
        return (
            f"{self.problem}{during}; it is being restarted (restart {self.restarts} of at most "
            f"{self.restart_limit} within {self.restart_window:g} s): retry the request"
        )


class Supervisor:
    """Watches and restarts the backends that the front started (those with a process)."""

    def __init__(
        self,
        backends: Sequence[Backend],
        *,
        restart_limit: int = RESTART_LIMIT,
        restart_window: float = RESTART_WINDOW,
    ) -> None:
        self.backends = [b for b in backends if b.process is not None]
        self.restart_limit = restart_limit
        self.restart_window = restart_window
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._launches: queue.Queue[tuple[Callable[[], None], Future[None]] | None] = queue.Queue()

    def start(self) -> None:
        """Start watching (from the front's event loop, once its backends are up)."""
        self._loop = asyncio.get_running_loop()
        # a backend's process dies with the thread that started it (PR_SET_PDEATHSIG): restarts
        # are launched from this one thread, which lives as long as the front
        threading.Thread(target=self._launcher, name="backend-launcher", daemon=True).start()
        for b in self.backends:
            b.health = Health(restart_limit=self.restart_limit, restart_window=self.restart_window)
            self._watch(b)

    async def stop(self) -> None:
        """No more restarts: the front is shutting down and stops the backends itself."""
        self._stopping = True
        self._launches.put(None)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _launcher(self) -> None:
        while (item := self._launches.get()) is not None:
            launch, done = item
            try:
                launch()
            except BaseException as exc:  # handed to the waiting coroutine
                done.set_exception(exc)
            else:
                done.set_result(None)

    def _watch(self, b: Backend) -> None:
        process, generation = _restartable(b), b.health.generation

        def wait() -> None:
            code = process.wait(None)
            if code is None or self._loop is None:
                return
            try:
                self._loop.call_soon_threadsafe(self._ended, b, generation, code)
            except RuntimeError:  # the loop closed: the front is gone, nothing to report to
                pass

        threading.Thread(target=wait, name=f"watch {b.model}", daemon=True).start()

    def _ended(self, b: Backend, generation: int, code: int) -> None:
        h = b.health
        if self._stopping or generation != h.generation:
            return
        h.problem = f"{b.describe()} {how_it_ended(code)}"
        h.last_end = h.problem
        log.warning("%s", h.problem)
        # counted before anyone hears of the exit: a request that waited for it reports the
        # restart that is coming, not the count before it
        restarting = self._count_end(b)
        h.exited.set()
        if restarting:
            task = asyncio.get_running_loop().create_task(self._restart(b), name=f"restart {b.model}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _count_end(self, b: Backend) -> bool:
        """Count an end of `b` (an exit, or a start that failed): True if it is restarted now
        (status "restarting"), False if it ended too often and is left "broken"."""
        h, now = b.health, time.monotonic()
        while h.ended_at and now - h.ended_at[0] > self.restart_window:
            h.ended_at.popleft()
        if len(h.ended_at) >= self.restart_limit:
            tail = log_tail(_restartable(b).log_path, 5)
            h.status = "broken"
            h.problem = (
                f"{b.describe(pid=False)} is broken: it ended {self.restart_limit + 1} times within "
                f"{self.restart_window:g} s (last: {h.problem}), so it is not restarted again"
                + (f"; last stderr: {tail}" if tail else "")
            )
            log.error("%s", h.problem)
            return False
        h.ended_at.append(now)
        h.restarts += 1
        h.status = "restarting"
        return True

    async def _restart(self, b: Backend) -> None:
        h, process = b.health, _restartable(b)
        while not self._stopping:
            log.warning("restarting %s (restart %d)", b.describe(pid=False), h.restarts)
            try:
                done: Future[None] = Future()
                self._launches.put((process.launch, done))
                await asyncio.wrap_future(done)
                await asyncio.to_thread(process.wait_ready, b.start_timeout)
            except ServingError as exc:
                h.problem = str(exc)
                if not self._count_end(b):
                    return
                continue
            h.generation += 1
            h.status, h.problem = "ok", None
            h.exited.clear()
            log.warning("%s is back (restart %d)", b.describe(), h.restarts)
            self._watch(b)
            return


def _restartable(b: Backend) -> Restartable:
    assert b.process is not None
    return b.process  # type: ignore[return-value]  # the bundle's processes are EmbeddedServers


__all__ = ["EXIT_NOTICE", "RESTART_LIMIT", "RESTART_WINDOW", "Health", "Supervisor", "how_it_ended"]
