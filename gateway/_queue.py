"""The thread-run queue as one replica works it: claim queued runs while there is room, run
them, keep their messages and events in the database, renew the lease, stop the runs that a
cancel (written by any replica) marked, and fail the runs of replicas that stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Protocol

from teams import Message, RunEvent, RunRequest, RunResult, TokenDelta, Turn

from ._auth import Caller
from ._execution import Execution, RunObserver
from ._filestore import FileStore, store_run_files
from ._notify import PgListener, RunSignals
from ._runner import describe_failure
from ._states import LastErrorCode, RunKind
from ._store import LEASE_S, RunRow, Store

__all__ = ["RunQueue", "message_item_id", "task_and_history"]

_log = logging.getLogger(__name__)

# how often a replica looks for queued runs created by another one (its own wake it at once;
# over PostgreSQL a notification does, and this is a safety net)
POLL_S = 0.1
LISTENING_POLL_S = 2.0
# how often it reads whether one of its runs was cancelled elsewhere (the cancel bound is 1 s)
CANCEL_POLL_S = 0.25
SWEEP_S = 5.0
_CLAIM_BATCH = 32


def task_and_history(pending: list[tuple[str, str, str | None]]) -> tuple[str, list[Turn]] | None:
    """The newest user message is the task; the ones before it, history. None: no user message."""
    users = [i for i, (role, _, _) in enumerate(pending) if role == "user"]
    if not users:
        return None
    last = users[-1]
    return pending[last][1], [Turn(role, text, agent) for role, text, agent in pending[:last]]  # type: ignore[arg-type]


def message_item_id(run_id: str, seq: int) -> str:
    """The id of the message that the run's event `seq` keeps (the same on every replica)."""
    return f"msg_{run_id.partition('_')[2]}_{seq}"


@dataclass
class _ThreadRun:
    """Keeps a thread run's row, messages and events in the store as the run goes."""

    store: Store
    queue: RunQueue
    run: RunRow
    last_message_of: dict[str, str] = field(default_factory=dict)  # agent -> its newest message id
    seq: int = 0
    files: FileStore | None = None  # where the files the run's code wrote are kept

    async def started(self, execution: Execution) -> None:
        pass  # the claim marked it in_progress

    async def event(self, execution: Execution, event: RunEvent) -> None:
        if isinstance(event, TokenDelta):
            return
        if isinstance(event, RunResult):
            # which message is the answer, why it stopped, the usage; its messages, state and
            # files' contents are kept in their own places
            files = tuple(dataclasses.replace(f, data=b"") for f in event.files)
            event = dataclasses.replace(event, messages=(), state={}, files=files)
        if isinstance(event, Message):
            if event.source == "user":
                return
            m = await self.store.add_message(
                self.run.thread_id,
                "assistant",
                event.text,
                agent=event.source,
                assistant_id=self.run.assistant_id,
                run_id=self.run.id,
                metadata={"agent": event.source},
                message_id=message_item_id(self.run.id, self.seq),
            )
            self.last_message_of[event.source] = m.id
        await self.store.add_event(self.run.id, self.seq, event)
        self.seq += 1
        self.queue.signals.changed(self.run.id)

    async def done(self, execution: Execution) -> None:
        self.queue.running.pop(self.run.id, None)
        self.queue.wake()  # room for the next queued run
        result, outcome = execution.finished, execution.outcome or "failed"
        error: tuple[LastErrorCode, str] | None = None
        if outcome == "completed" and result is not None:
            final_id = self.last_message_of.get(result.final_source)
            if final_id is not None:
                await self.store.set_message_content(final_id, result.final_text)  # without TERMINATE
            if result.files:
                await store_run_files(
                    self.store, self.files, self.run, self.run.key_id, final_id, result.files
                )
            thread_id = self.run.thread_id
            await self.store.save_state(thread_id, result.state, await self.store.last_seq(thread_id))
            if self.run.object == "response":  # a later response may branch from this one
                await self.store.save_run_state(self.run.id, result.state)
        elif outcome == "expired":
            error = ("server_error", str(execution.error))
        elif outcome != "cancelled" or execution.error is not None:
            outcome = "failed"
            error = ("server_error", describe_failure(execution.error or RuntimeError("unknown error")))
        await self.store.finish_run(self.run.id, outcome, usage=execution.usage, error=error)
        self.queue.signals.local.discard(self.run.id)
        self.queue.signals.changed(self.run.id)


class StartRun(Protocol):
    """`Gateway.start`: runs a team with the process's runner, slots and usage bookkeeping."""

    async def __call__(
        self,
        scenario: str,
        request: RunRequest,
        caller: Caller,
        *,
        kind: RunKind,
        observer: RunObserver | None = None,
        counted: bool = True,
    ) -> Execution: ...


class RunQueue:
    """One replica's worker over the shared run queue."""

    def __init__(self, store: Store, start: StartRun, capacity: int) -> None:
        self.start_run = start
        self.store = store
        self.capacity = capacity
        self.running: dict[str, Execution] = {}
        self.files: FileStore | None = None  # set by the app once its file store is open
        self.signals = RunSignals()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: PgListener | None = None
        self._starting: dict[str, asyncio.Task[None]] = {}  # claimed, not yet running

    def start(self) -> None:
        if self.store.db.dialect == "postgresql":
            self._listener = PgListener(self.store.url, self.signals, self.wake, self._cancelled)
            self._listener.start()
        self._task = asyncio.create_task(self._main(), name="gateway-run-queue")

    def _cancelled(self, run_id: str) -> None:
        execution = self.running.get(run_id)
        if execution is not None:
            execution.cancel()

    def wake(self) -> None:
        self._wake.set()

    async def aclose(self) -> None:
        if self._listener is not None:
            await self._listener.aclose()
        for task in list(self._starting.values()):
            task.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _main(self) -> None:
        now = time.monotonic()
        next_lease, next_cancel, next_sweep = now + LEASE_S / 4, now + CANCEL_POLL_S, now + SWEEP_S
        while True:
            woken = False
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(LISTENING_POLL_S if self.signals.listening else POLL_S):
                    woken = await self._wake.wait()
            self._wake.clear()
            try:
                await self._claim(look_first=not woken)
                now = time.monotonic()
                if now >= next_cancel:
                    next_cancel = now + (LISTENING_POLL_S if self.signals.listening else CANCEL_POLL_S)
                    await self._observe_cancels()
                if now >= next_lease:
                    next_lease = now + LEASE_S / 4
                    await self.store.renew_lease()
                if now >= next_sweep:
                    next_sweep = now + SWEEP_S
                    await self.store.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:  # a database hiccup must not stop the queue; the next tick retries
                _log.exception("run queue tick failed")
                await asyncio.sleep(POLL_S)

    async def _claim(self, *, look_first: bool = False) -> None:
        """Claim queued runs while there is room, a batch per statement, and start each in a
        task of its own (started one after the other, the hundredth of a burst would wait for
        ninety-nine starts); `look_first`: read before writing (an idle poll then costs a
        read, not a write transaction)."""
        room = self.capacity - len(self.running) - len(self._starting)
        if room <= 0 or (look_first and not await self.store.any_queued()):
            return
        while room > 0:
            runs = await self.store.claim(min(room, _CLAIM_BATCH))
            for run in runs:
                self.signals.local.add(run.id)
                self.signals.changed(run.id)
                task = asyncio.create_task(self._start_claimed(run), name=f"start:{run.id}")
                self._starting[run.id] = task
            if len(runs) < min(room, _CLAIM_BATCH):
                return
            room -= len(runs)

    async def _start_claimed(self, run: RunRow) -> None:
        try:
            await self._start(run)
        except Exception:
            _log.exception("run %s could not start", run.id)
            self.signals.local.discard(run.id)
            await self.store.finish_run(
                run.id, "failed", usage=None, error=("server_error", "the gateway could not start the run")
            )
            self.signals.changed(run.id)
        finally:
            self._starting.pop(run.id, None)

    async def _start(self, run: RunRow) -> None:
        thread = await self.store.get_thread(run.thread_id)
        found, messages = None, []
        if thread is not None:
            messages = await self.store.list_messages(run.thread_id)
            pending = [m for m in messages if m.seq > thread.state_seq]
            found = task_and_history([(m.role, m.content, m.agent) for m in pending])
        if thread is None or found is None:
            await self.store.finish_run(
                run.id, "failed", usage=None, error=("invalid_prompt", "the thread has no new user message")
            )
            self.signals.local.discard(run.id)
            self.signals.changed(run.id)
            return
        task, history = found
        instructions = (run.request or {}).get("instructions")
        if instructions:  # a response's: the team reads them first, as a user turn
            history = [Turn("user", instructions), *history]
        inputs = await self.files.inputs(run.key_id, (m.id for m in messages)) if self.files else []
        observer = _ThreadRun(self.store, self, run, files=self.files)
        execution = await self.start_run(
            run.assistant_id,
            RunRequest(task=task, history=history, state=thread.state, stream_tokens=False, files=inputs),
            Caller(run.key_id, run.user_id),
            kind="response" if run.object == "response" else "thread.run",
            observer=observer,
            counted=False,  # the run's own row counts against its key while it is active
        )
        self.running[run.id] = execution
        self.signals.changed(run.id)  # a waiter here can now wait on the execution itself

    async def _observe_cancels(self) -> None:
        for run_id in await self.store.cancelling(list(self.running)):
            execution = self.running.get(run_id)
            if execution is not None:
                execution.cancel()
