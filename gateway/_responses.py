"""/v1/responses: a team called through the Responses API.

A response is a run of the shared run queue (`runs.object = 'response'`) on a thread: the
conversation's thread, the thread of the response it continues (`previous_response_id`), or
a thread of its own. So it is claimed by whichever replica has room, holds a lease, keeps
its events in `run_events`, and any replica can answer `retrieve`, `cancel` and a resumed
stream (`GET /v1/responses/{id}?stream=true&starting_after=N`) by reading the database.
The replica that executes a run wakes its local readers at once; over PostgreSQL the others
wake on its notifications, over SQLite they read every POLL_S.
A thread run (the Assistants routes) can be read here too, `GET /v1/responses/{run_id}`
with or without `stream=true`: that is how a client resumes a thread run's stream on any
replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response as HTTPResponse
from fastapi.responses import StreamingResponse
from openai.types.responses import (
    ResponseInputMessageItem,
    ResponseInputText,
    ResponseItemList,
    ResponseOutputMessage,
    ResponseOutputText,
    ResponseStreamEvent,
)

from teams import RunEvent

from ._auth import Caller
from ._conversations import add_items, conversation_row, idle, turns_of
from ._errors import GatewayError
from ._responses_events import FileCitation, ResponseWriter, render_response, sse_event
from ._responses_schemas import InputItem, MessageItem, ResponseCreate
from ._service import Gateway, caller, gateway
from ._states import ACTIVE_STATUSES
from ._store import RunRow, ThreadRow

__all__ = ["router"]

_log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/responses")

GatewayDep = Annotated[Gateway, Depends(gateway)]
CallerDep = Annotated[Caller, Depends(caller)]

POLL_S = 0.1  # how often a reader reads a run that another replica executes
WAIT_POLL_MAX_S = 0.8  # ... at most, when it only waits for the run's end
CANCEL_WAIT_S = 5.0  # how long `cancel` waits for the run to stop before answering
_background: set[asyncio.Task[Any]] = set()  # cancels sent after a client went away


def _json(model: Any) -> HTTPResponse:
    return HTTPResponse(model.model_dump_json(exclude_unset=True), media_type="application/json")


async def _response(
    gw: Gateway, response_id: str, who: Caller, param: str | None = None, *, thread_runs: bool = False
) -> RunRow:
    """The caller's response; with `thread_runs`, also one of its thread runs (read-only)."""
    row = await gw.store.get_run_by_id(response_id)
    kinds = ("response", "thread.run") if thread_runs else ("response",)
    if row is None or row.object not in kinds or row.key_id != who.key_id:
        raise GatewayError(
            404, f"Response with id '{response_id}' not found.", "response_not_found", param=param
        )
    return row


def _check(body: ResponseCreate) -> None:
    if body.tools or body.tool_choice not in (None, "none", "auto"):
        raise GatewayError(
            400,
            "tools are defined by the scenario on the server; a request cannot add or choose tools",
            "tools_not_supported",
            param="tools",
        )
    if body.conversation is not None and body.previous_response_id is not None:
        raise GatewayError(
            400,
            "give `conversation` or `previous_response_id`, not both",
            "invalid_request",
            param="previous_response_id",
        )


async def _thread_for(gw: Gateway, body: ResponseCreate, who: Caller) -> ThreadRow:
    """The thread the response runs on, with the team's saved state when it continues one."""
    conversation = body.conversation_id
    if conversation is not None:
        thread = await conversation_row(gw, conversation, who, param="conversation")
        await idle(gw, thread.id)
        return thread
    if body.previous_response_id is None:
        return await gw.store.create_thread(who.key_id, {})
    previous = await _response(gw, body.previous_response_id, who, param="previous_response_id")
    if previous.status in ACTIVE_STATUSES:
        raise GatewayError(
            409,
            f"Response {previous.id} is still {previous.status}; continue it once it has ended.",
            "previous_response_active",
            param="previous_response_id",
        )
    latest = await gw.store.list_runs(previous.thread_id, limit=1, order="desc")
    request = previous.request or {}
    continued = await gw.store.get_thread(previous.thread_id)
    if continued is not None and not request.get("conversation") and latest and latest[0].id == previous.id:
        return continued  # the newest response of its chain: continue its thread, state and all
    # an earlier response (a branch), or one in a conversation: a thread of its own, from the
    # team's state after that response
    fork = await gw.store.create_thread(who.key_id, {})
    state = await gw.store.run_state(previous.id)
    if state is not None:
        await gw.store.save_state(fork.id, state, 0)
        return fork
    # it did not complete (no state of its own): the conversation up to it, as history
    upto = max(
        [int(request.get("input_seq", 0))]
        + [m.seq for m in await gw.store.list_messages(previous.thread_id, run_id=previous.id)]
    )
    await gw.store.copy_messages(previous.thread_id, fork.id, upto)
    return fork


async def _files(gw: Gateway, row: RunRow, writer: ResponseWriter) -> list[FileCitation]:
    """The files the run's code wrote, as kept with its answer: citations on the answer's text."""
    if gw.files is None or not writer.has_files or writer.answer_id is None or row.status != "completed":
        return []
    found: list[FileCitation] = []
    for file_id, _ in (await gw.files.of_messages([writer.answer_id])).get(writer.answer_id, []):
        try:
            f = await gw.files.get(row.key_id, file_id)
        except GatewayError:  # deleted since
            continue
        extra: dict[str, Any] = {"media_type": f.media_type, "bytes": f.bytes}
        found.append(
            FileCitation(
                type="container_file_citation",
                container_id=f"cntr_{row.id}",
                file_id=f.id,
                filename=f.filename,
                start_index=0,
                end_index=0,
                **extra,
            )
        )
    return found


async def _cancel(gw: Gateway, run_id: str) -> bool:
    """Ask the run to stop (a write every replica sees; at once when it runs here)."""
    execution = gw.queue.running.get(run_id)
    if execution is not None:
        execution.cancel()
    return await gw.store.cancel_run(run_id) is not None


def _cancel_later(gw: Gateway, run_id: str) -> None:
    """`_cancel` from a stream that is being torn down (it cannot await any more)."""
    execution = gw.queue.running.get(run_id)
    if execution is not None:
        execution.cancel()
    task = asyncio.get_running_loop().create_task(_cancel(gw, run_id))
    _background.add(task)
    task.add_done_callback(_background.discard)


async def _follow(gw: Gateway, run_id: str) -> AsyncIterator[tuple[RunRow, list[tuple[int, RunEvent]]]]:
    """(the run's row, its new events) each time it changed, until the row shows its end.

    The row is read before the events: a row that shows the end comes with all of them."""
    after = -1
    with gw.queue.signals.follow(run_id) as changed:
        while True:
            changed.clear()
            row = await gw.store.get_run_by_id(run_id)
            if row is None:  # deleted
                return
            events = await gw.store.events(run_id, after)
            if events:
                after = events[-1][0]
            yield row, events
            if row.status not in ACTIVE_STATUSES:
                return
            await gw.queue.signals.wait(changed, run_id)


async def _replay(gw: Gateway, run: RunRow, writer: ResponseWriter) -> AsyncIterator[ResponseStreamEvent]:
    """The response's stream events, from the first (replayed from the database) to its end."""
    for event in writer.created():
        yield event
    async for row, events in _follow(gw, run.id):
        if row.started_at is not None:
            for event in writer.started():
                yield event
        for seq, run_event in events:
            for event in writer.feed(seq, run_event):
                yield event
        if row.status not in ACTIVE_STATUSES:
            for event in writer.finish(row, await _files(gw, row, writer)):
                yield event


async def _stream(
    gw: Gateway, run: RunRow, starting_after: int, cancel_on_close: bool
) -> AsyncIterator[bytes]:
    writer = ResponseWriter(run)
    ended = False
    try:
        async for event in _replay(gw, run, writer):
            if event.type in ("response.completed", "response.failed", "response.incomplete"):
                ended = True
            if event.sequence_number > starting_after:
                yield sse_event(event)
    finally:
        if cancel_on_close and not ended:  # the client went away: stop the team
            _cancel_later(gw, run.id)


async def _wait_disconnect(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def _ended(gw: Gateway, run_id: str) -> RunRow | None:
    """The run's row once it has ended (None: deleted): read when its execution here ends, or,
    while it waits in the queue or runs on another replica, after POLL_S, then less often (up
    to every WAIT_POLL_MAX_S: a hundred waiting requests must not read the database 1000
    times a second)."""
    wait = POLL_S
    with gw.queue.signals.follow(run_id) as changed:
        while True:
            changed.clear()
            execution = gw.queue.running.get(run_id)
            if execution is not None:
                await execution.done.wait()  # set once the run's row shows its end
            row = await gw.store.get_run_by_id(run_id)
            if row is None or row.status not in ACTIVE_STATUSES:
                return row
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await changed.wait()  # this replica claimed it, or it changed here
            wait = min(2 * wait, WAIT_POLL_MAX_S)


async def _finished(gw: Gateway, run: RunRow, request: Request) -> HTTPResponse:
    """Wait for the run's end and answer with the whole Response; a client that goes away first
    cancels it."""
    writer = ResponseWriter(run, emit=False)

    async def consume() -> RunRow:
        row = await _ended(gw, run.id)
        if row is None:
            raise GatewayError(404, f"Response with id '{run.id}' was deleted.", "response_not_found")
        for seq, event in await gw.store.events(run.id):
            writer.feed(seq, event)
        return row

    work = asyncio.ensure_future(consume())
    watch = asyncio.ensure_future(_wait_disconnect(request))
    try:
        await asyncio.wait({work, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
    if not work.done():
        work.cancel()
        await _cancel(gw, run.id)
        raise GatewayError(499, "client closed the request", "client_closed")
    row = work.result()
    return _json(writer.snapshot(row, await _files(gw, row, writer)))


@router.post("", response_model=None)
async def create_response(
    body: ResponseCreate, request: Request, gw: GatewayDep, who: CallerDep
) -> HTTPResponse:
    _check(body)
    summary = gw.scenario(body.model)
    items: list[InputItem] = (
        [MessageItem(role="user", content=body.input)] if isinstance(body.input, str) else body.input
    )
    if len(items) > gw.config.max_messages:
        raise GatewayError(
            400,
            f"too many input items: {len(items)} > {gw.config.max_messages}",
            "too_many_messages",
            param="input",
        )
    turns, system = turns_of(items, "input")
    if not turns or turns[-1][0] != "user" or not turns[-1][1].strip():
        raise GatewayError(
            400,
            "the last input message must have role 'user' (it is the team's task)",
            "invalid_input",
            param="input",
        )
    user = body.user or body.safety_identifier
    if user and not request.headers.get("x-user-id"):
        who = Caller(who.key_id, user[:128])
    thread = await _thread_for(gw, body, who)
    added = await add_items(gw, thread.id, turns)
    before = added[0].seq - 1  # the thread's messages after this one are the response's input
    instructions = "\n\n".join([*([body.instructions] if body.instructions else []), *system]) or None
    background = bool(body.background)
    row = await gw.store.create_run(
        thread.id,
        summary.name,
        key_id=who.key_id,
        user_id=who.user_id,
        expires_in=gw.config.run_timeout_s,
        metadata=body.metadata or {},
        limit=gw.config.max_concurrent_per_key,
        object="response",
        request={
            "instructions": instructions,
            "background": background,
            "previous_response_id": body.previous_response_id,
            "conversation": body.conversation_id,
            "input_from": before,  # its input: the thread's messages after this seq,
            "input_seq": added[-1].seq,  # up to this one
            "user": bool(user),
        },
    )
    if row is None:
        await gw.store.delete_messages_after(thread.id, before)
        if body.conversation_id is None and body.previous_response_id is None:
            await gw.store.delete_thread(thread.id)
        raise gw.too_many()
    gw.queue.wake()
    if body.stream:
        return StreamingResponse(
            _stream(gw, row, -1, cancel_on_close=not background),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )
    if background:
        return _json(render_response(row, []))
    return await _finished(gw, row, request)


@router.get("/{response_id}", response_model=None)
async def retrieve_response(
    response_id: str,
    gw: GatewayDep,
    who: CallerDep,
    stream: bool = False,
    starting_after: Annotated[int, Query(ge=-1)] = -1,
    include: Annotated[list[str] | None, Query()] = None,
    include_obfuscation: bool | None = None,
) -> HTTPResponse:
    # a thread run reads the same way: its events so far and then live, from any replica
    row = await _response(gw, response_id, who, thread_runs=True)
    if stream:
        return StreamingResponse(
            _stream(gw, row, starting_after, cancel_on_close=False),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )
    writer = ResponseWriter(row, emit=False)
    for seq, event in await gw.store.events(row.id):
        writer.feed(seq, event)
    return _json(writer.snapshot(row, await _files(gw, row, writer)))


@router.get("/{response_id}/input_items")
async def list_input_items(
    response_id: str,
    gw: GatewayDep,
    who: CallerDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Annotated[Literal["asc", "desc"], Query()] = "desc",
    after: str | None = None,
    include: Annotated[list[str] | None, Query()] = None,
) -> HTTPResponse:
    row = await _response(gw, response_id, who)
    request = row.request or {}
    low, high = int(request.get("input_from", 0)), int(request.get("input_seq", 0))
    rows = [m for m in await gw.store.list_messages(row.thread_id, order=order) if low < m.seq <= high]
    if after is not None:
        ids = [m.id for m in rows]
        rows = rows[ids.index(after) + 1 :] if after in ids else rows
    page = rows[:limit]
    data: list[Any] = [
        ResponseInputMessageItem(
            id=m.id,
            type="message",
            role="user",
            status="completed",
            content=[ResponseInputText(type="input_text", text=m.content)],
        )
        if m.role == "user"
        else ResponseOutputMessage(
            id=m.id,
            type="message",
            role="assistant",
            status="completed",
            content=[ResponseOutputText(type="output_text", text=m.content, annotations=[])],
        )
        for m in page
    ]
    return _json(
        ResponseItemList(
            object="list",
            data=data,
            first_id=page[0].id if page else "",
            last_id=page[-1].id if page else "",
            has_more=len(rows) > limit,
        )
    )


@router.post("/{response_id}/cancel")
async def cancel_response(response_id: str, gw: GatewayDep, who: CallerDep) -> HTTPResponse:
    row = await _response(gw, response_id, who)
    if not await _cancel(gw, row.id):
        raise GatewayError(
            400, f"Cannot cancel a response with status '{row.status}'.", "response_not_active"
        )
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(CANCEL_WAIT_S):
            row = await _ended(gw, row.id) or row
    writer = ResponseWriter(row, emit=False)
    for seq, event in await gw.store.events(row.id):
        writer.feed(seq, event)
    return _json(writer.snapshot(row))


@router.delete("/{response_id}")
async def delete_response(response_id: str, gw: GatewayDep, who: CallerDep) -> dict[str, Any]:
    row = await _response(gw, response_id, who)
    if row.status in ACTIVE_STATUSES:
        raise GatewayError(
            400, f"Cannot delete a response that is {row.status}; cancel it first.", "response_active"
        )
    await gw.store.delete_run(row.id)
    return {"id": row.id, "object": "response", "deleted": True}
