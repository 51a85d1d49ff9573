"""One run of a scenario as a background task: events in a queue, cancel, timeout."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Protocol

from autogen_core import CancellationToken

from teams import Message, RunEvent, RunRequest, RunResult, ToolCall, Usage

from ._runner import ScenarioRunner
from ._states import Outcome

__all__ = ["Execution", "RunObserver"]

_log = logging.getLogger(__name__)

# After the cancellation token fires, a team normally stops within one model call; if it
# does not, the task itself is cancelled.
_CANCEL_GRACE_S = 3.0


class _End:
    pass


_END = _End()


class RunObserver(Protocol):
    """Bookkeeping that follows a run (thread persistence, usage records)."""

    async def started(self, execution: Execution) -> None: ...

    async def event(self, execution: Execution, event: RunEvent) -> None: ...

    async def done(self, execution: Execution) -> None: ...


class Execution:
    """Runs `runner.stream(name, request, cancel)` in its own task.

    The task is independent of the HTTP request that started it, so the request can wait on
    it, stream from it, or return at once (thread runs) and a client disconnect only
    cancels it when the caller says so. The observer is told of the start, every event and
    the end.
    """

    def __init__(
        self,
        runner: ScenarioRunner,
        scenario: str,
        request: RunRequest,
        *,
        timeout_s: float,
        slots: asyncio.Semaphore,
        observer: RunObserver | None = None,
    ) -> None:
        self.scenario = scenario
        self.request = request
        self.outcome: Outcome | None = None
        self.finished: RunResult | None = None
        self.error: BaseException | None = None
        self.usage_so_far = Usage()
        self.started_at: float | None = None
        self.cancel_requested = False
        self.cancellation_token = CancellationToken()
        self._runner = runner
        self._timeout_s = timeout_s
        self._slots = slots
        self._observer = observer
        self._queue: asyncio.Queue[RunEvent | _End] = asyncio.Queue()
        self.done = asyncio.Event()
        self.task = asyncio.create_task(self._main(), name=f"run:{scenario}")

    @property
    def usage(self) -> Usage:
        return self.finished.total if self.finished is not None else self.usage_so_far

    def cancel(self) -> None:
        """Ask the team to stop; the task is cancelled if it has not stopped after a grace period."""
        if self.done.is_set() or self.cancel_requested:
            return
        self.cancel_requested = True
        self.cancellation_token.cancel()
        if self.started_at is None:
            self.task.cancel()  # still waiting for a slot: nothing to stop gracefully
            return
        loop = asyncio.get_running_loop()
        loop.call_later(_CANCEL_GRACE_S, self._force_cancel)

    def _force_cancel(self) -> None:
        if not self.task.done():
            _log.warning("run of %s ignored its cancellation token; cancelling its task", self.scenario)
            self.task.cancel()

    async def events(self) -> AsyncIterator[RunEvent]:
        """The run's events as they happen; ends when the run ends (see `outcome`)."""
        while True:
            item = await self._queue.get()
            if isinstance(item, _End):
                self._queue.put_nowait(item)  # later readers end too
                return
            yield item

    async def wait(self) -> Outcome:
        await self.done.wait()
        assert self.outcome is not None
        return self.outcome

    async def _main(self) -> None:
        try:
            await self._run()
        finally:
            try:
                if self._observer is not None:
                    await asyncio.shield(self._observer.done(self))
            except Exception:
                _log.exception("run bookkeeping failed for %s", self.scenario)
            finally:
                self.done.set()
                self._queue.put_nowait(_END)

    async def _run(self) -> None:
        deadline = asyncio.timeout(self._timeout_s)
        try:
            async with self._slots:
                self.started_at = time.monotonic()
                if self._observer is not None:
                    await self._observer.started(self)
                async with deadline:
                    async for event in self._runner.stream(
                        self.scenario, self.request, self.cancellation_token
                    ):
                        self._track(event)
                        if self._observer is not None:
                            await self._observer.event(self, event)
                        self._queue.put_nowait(event)
            if self.finished is not None:
                self.outcome = "completed"
            elif self.cancel_requested:
                self.outcome = "cancelled"
            else:
                self.outcome = "failed"
                self.error = RuntimeError("the team stopped without a result")
        except TimeoutError as exc:
            if deadline.expired():
                self.outcome = "expired"
                self.error = TimeoutError(f"the run took longer than {self._timeout_s:g} s")
            else:
                self.outcome = "failed"
                self.error = exc
        except asyncio.CancelledError:
            self.outcome = "cancelled"
            if not self.cancel_requested:
                self.error = RuntimeError("the gateway shut down during the run")
                raise
        except Exception as exc:
            if self.cancel_requested:
                self.outcome = "cancelled"
            else:
                self.outcome = "failed"
                self.error = exc
                _log.info("run of %s failed: %s", self.scenario, exc)

    def _track(self, event: RunEvent) -> None:
        if isinstance(event, RunResult):
            self.finished = event
        elif isinstance(event, Message | ToolCall) and event.usage is not None:
            self.usage_so_far = self.usage_so_far + event.usage
