"""A thread run streamed as Assistants server-sent events, read from the database.

Whichever replica executes the run, the one that received the request streams it: it
follows the run's row and its messages in the shared database (`thread.run.*`,
`thread.message.created/delta/completed`, then `done`). The newest message is held back
until a newer one or the run's end, so that the final answer is sent as it is kept
(without the team's TERMINATE).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from openai.types.beta.threads import MessageDelta, MessageDeltaEvent, TextDelta, TextDeltaBlock
from pydantic import BaseModel

from ._notify import POLL_S, RunSignals
from ._states import ACTIVE_STATUSES
from ._store import MessageRow, RunRow, Store

__all__ = ["stream_run"]


def _event(name: str, data: BaseModel) -> bytes:
    return f"event: {name}\ndata: {data.model_dump_json(exclude_unset=False)}\n\n".encode()


def _message_events(m: MessageRow, render: Callable[[MessageRow], BaseModel]) -> list[bytes]:
    delta = MessageDeltaEvent(
        id=m.id,
        object="thread.message.delta",
        delta=MessageDelta(content=[TextDeltaBlock(index=0, type="text", text=TextDelta(value=m.content))]),
    )
    out = render(m)
    return [
        _event("thread.message.created", out),
        f"event: thread.message.delta\ndata: {delta.model_dump_json(exclude_unset=True)}\n\n".encode(),
        _event("thread.message.completed", out),
    ]


async def stream_run(
    store: Store,
    row: RunRow,
    render_run: Callable[[RunRow], BaseModel],
    render_message: Callable[[MessageRow], BaseModel],
    signals: RunSignals | None = None,
) -> AsyncIterator[bytes]:
    """`signals`: reads again when the run changes (see `_notify.py`), else every 0.1 s."""
    with (signals or RunSignals()).follow(row.id) as changed:
        async for chunk in _follow(store, row, render_run, render_message, signals, changed):
            yield chunk
    yield b"event: done\ndata: [DONE]\n\n"


async def _follow(
    store: Store,
    row: RunRow,
    render_run: Callable[[RunRow], BaseModel],
    render_message: Callable[[MessageRow], BaseModel],
    signals: RunSignals | None,
    changed: asyncio.Event,
) -> AsyncIterator[bytes]:
    yield _event("thread.run.created", render_run(row))
    yield _event("thread.run.queued", render_run(row))
    status, after, held = row.status, 0, None
    while True:
        changed.clear()
        run = await store.get_run(row.thread_id, row.id)
        if run is None:  # the thread was deleted
            break
        if run.status != status and run.status in ACTIVE_STATUSES:
            status = run.status
            yield _event(f"thread.run.{status}", render_run(run))
        for m in await store.list_messages(row.thread_id, run_id=row.id):
            if m.seq <= after:
                continue
            if held is not None:
                for chunk in _message_events(held, render_message):
                    yield chunk
            held, after = m, m.seq
        if run.status not in ACTIVE_STATUSES:
            if held is not None:  # as kept at the end
                final = await store.get_message(row.thread_id, held.id)
                for chunk in _message_events(final or held, render_message):
                    yield chunk
            yield _event(f"thread.run.{run.status}", render_run(run))
            break
        if signals is None:
            await asyncio.sleep(POLL_S)
        else:
            await signals.wait(changed, row.id)
