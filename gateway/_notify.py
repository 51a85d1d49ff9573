"""Run change signals: what lets a streamed or waited-on run wake when it changes instead of
reading the database every 0.1 s.

Inside one process, the run queue signals each change of the runs it executes (a message
kept, a status changed). Across PostgreSQL replicas, triggers on `runs` and `messages`
(schema step 3) send `NOTIFY gateway_runs, '<run id> <what>'` as each change commits; every
replica LISTENs on one connection of its own and turns a notification into the same local
signal, a wake of its queue (a run was queued) or a cancel (its run was asked to stop).

A follower that hears nothing still reads again after `idle_wait()`: the short poll when
no signal can reach it (a run executed by another process over SQLite), a long one as a
safety net when one can.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["CHANNEL", "PgListener", "RunSignals"]

_log = logging.getLogger(__name__)

CHANNEL = "gateway_runs"
POLL_S = 0.1  # a follower's read interval when nothing will signal it
SAFETY_S = 2.0  # ... and when something will (a lost notification costs at most this)
_RECONNECT_S = 1.0


class RunSignals:
    """Per-run wake-ups for the followers of runs in this process."""

    def __init__(self) -> None:
        self._followers: dict[str, set[asyncio.Event]] = {}
        self.local: set[str] = set()  # runs this process executes: it signals their changes
        self.listening = False  # a PostgreSQL listener delivers the other replicas' changes

    def changed(self, run_id: str) -> None:
        for event in self._followers.get(run_id, ()):
            event.set()

    @contextlib.contextmanager
    def follow(self, run_id: str) -> Iterator[asyncio.Event]:
        """An event set at each change of `run_id` (clear it before reading the run)."""
        event = asyncio.Event()
        self._followers.setdefault(run_id, set()).add(event)
        try:
            yield event
        finally:
            followers = self._followers.get(run_id)
            if followers is not None:
                followers.discard(event)
                if not followers:
                    del self._followers[run_id]

    def idle_wait(self, run_id: str) -> float:
        """How long a follower of `run_id` may wait for a signal before reading again.

        A queued run is claimed by this process at once when it has room (its queue is
        woken), and the claim signals; if another process claims it over SQLite, only a
        read shows it, so a queued run that is not local is read at the short interval."""
        if self.listening or run_id in self.local:
            return SAFETY_S
        return POLL_S

    async def wait(self, event: asyncio.Event, run_id: str) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.idle_wait(run_id)):
                await event.wait()


class PgListener:
    """LISTEN gateway_runs on a connection of its own; reconnects when it drops."""

    def __init__(
        self,
        url: str,
        signals: RunSignals,
        on_queued: Callable[[], None],
        on_cancelling: Callable[[str], None],
    ) -> None:
        self.url = url
        self.signals = signals
        self.on_queued = on_queued
        self.on_cancelling = on_cancelling
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._main(), name="gateway-listen")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.signals.listening = False

    async def _main(self) -> None:
        import psycopg

        while True:
            conn: Any = None
            try:
                conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
                await conn.execute(f"LISTEN {CHANNEL}")
                self.signals.listening = True
                self.ready.set()
                # anything that changed before LISTEN took effect: the followers read once more
                for run_id in list(self.signals._followers):
                    self.signals.changed(run_id)
                self.on_queued()
                async for note in conn.notifies():
                    self._dispatch(note.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the server restarted or the network dropped: poll meanwhile
                self.signals.listening = False
                _log.warning("LISTEN %s lost (%s); polling until it reconnects", CHANNEL, exc)
                await asyncio.sleep(_RECONNECT_S)
            finally:
                self.signals.listening = False
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()

    def _dispatch(self, payload: str) -> None:
        run_id, _, what = payload.partition(" ")
        # a run this process executes signalled its own changes already (a second read of
        # the same change was a sixth of a streamed run's CPU); a cancel came from elsewhere
        if run_id not in self.signals.local or what == "cancelling":
            self.signals.changed(run_id)
        if what == "queued":
            self.on_queued()
        elif what == "cancelling":
            self.on_cancelling(run_id)
