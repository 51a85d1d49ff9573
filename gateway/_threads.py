"""Threads, messages and runs in the shape of the Assistants API, kept in the shared database."""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import StreamingResponse
from openai.types import CompletionUsage

from ._auth import Caller
from ._errors import GatewayError
from ._filestore import check_attachments, with_files
from ._queue import task_and_history
from ._run_stream import stream_run
from ._schemas import (
    DeletedOut,
    LastErrorOut,
    MessageCreate,
    MessageOut,
    RunCreate,
    RunOut,
    TextContentOut,
    TextValue,
    ThreadAndRunCreate,
    ThreadCreate,
    ThreadModify,
    ThreadOut,
    content_text,
)
from ._service import Gateway, caller, gateway
from ._store import MessageRow, RunRow, ThreadRow

__all__ = ["router"]

_log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/threads")

GatewayDep = Annotated[Gateway, Depends(gateway)]
CallerDep = Annotated[Caller, Depends(caller)]
Limit = Annotated[int, Query(ge=1, le=100)]
Order = Annotated[Literal["asc", "desc"], Query()]

POLL_AFTER_MS = "200"


def thread_out(row: ThreadRow) -> ThreadOut:
    return ThreadOut(id=row.id, created_at=row.created_at, metadata=row.metadata)


def message_out(row: MessageRow) -> MessageOut:
    return MessageOut(
        id=row.id,
        created_at=row.created_at,
        thread_id=row.thread_id,
        role=row.role,
        content=[TextContentOut(text=TextValue(value=row.content))],
        assistant_id=row.assistant_id,
        run_id=row.run_id,
        metadata=row.metadata,
        completed_at=row.created_at,
    )


def run_out(row: RunRow) -> RunOut:
    usage = None
    if row.prompt_tokens is not None and row.completion_tokens is not None:
        usage = CompletionUsage(
            prompt_tokens=row.prompt_tokens,
            completion_tokens=row.completion_tokens,
            total_tokens=row.prompt_tokens + row.completion_tokens,
        )
    last_error = None
    if row.last_error_message is not None:
        last_error = LastErrorOut(code=row.last_error_code or "server_error", message=row.last_error_message)
    return RunOut(
        id=row.id,
        created_at=row.created_at,
        thread_id=row.thread_id,
        assistant_id=row.assistant_id,
        model=row.assistant_id,
        status=row.status,
        started_at=row.started_at,
        expires_at=row.expires_at,
        cancelled_at=row.cancelled_at,
        failed_at=row.failed_at,
        completed_at=row.completed_at,
        last_error=last_error,
        usage=usage,
        metadata=row.metadata,
    )


def _list(items: list[Any], has_more: bool) -> dict[str, Any]:
    return {
        "object": "list",
        "data": items,
        "first_id": items[0].id if items else None,
        "last_id": items[-1].id if items else None,
        "has_more": has_more,
    }


async def _thread(gw: Gateway, thread_id: str, who: Caller) -> ThreadRow:
    row = await gw.store.get_thread(thread_id)
    if row is None or row.key_id != who.key_id:
        raise GatewayError(404, f"No thread found with id '{thread_id}'.", "thread_not_found")
    return row


async def _unlocked(gw: Gateway, thread_id: str) -> None:
    active = await gw.store.active_run(thread_id)
    if active is not None:
        raise GatewayError(
            400,
            f"Thread {thread_id} already has an active run {active.id}.",
            "thread_locked",
            headers={"x-should-retry": "false"},
        )


async def _add_messages(gw: Gateway, thread_id: str, messages: list[MessageCreate]) -> list[MessageRow]:
    added = []
    for m in messages:
        thread = await gw.store.get_thread(thread_id) if m.attachments else None
        file_ids = await check_attachments(gw.files, thread.key_id if thread else "", m.attachments)
        added.append(
            await gw.store.add_message(thread_id, m.role, content_text(m.content), metadata=m.metadata)
        )
        if file_ids and gw.files is not None:
            await gw.files.attach(added[-1].id, [(f, "attachment") for f in file_ids])
    return added


# ---- threads ---------------------------------------------------------------------------


@router.post("")
async def create_thread(body: ThreadCreate, gw: GatewayDep, who: CallerDep) -> ThreadOut:
    if len(body.messages) > gw.config.max_messages:
        raise GatewayError(
            400, f"too many messages: {len(body.messages)} > {gw.config.max_messages}", "too_many_messages"
        )
    row = await gw.store.create_thread(who.key_id, body.metadata or {})
    await _add_messages(gw, row.id, body.messages)
    return thread_out(row)


# registered before "/{thread_id}" so that "runs" is not taken for a thread id
@router.post("/runs", response_model=None)
async def create_thread_and_run(
    body: ThreadAndRunCreate, gw: GatewayDep, who: CallerDep
) -> RunOut | StreamingResponse:
    _check_run_body(body)
    gw.scenario(body.assistant_id)
    thread_body = body.thread or ThreadCreate()
    thread = await gw.store.create_thread(who.key_id, thread_body.metadata or {})
    await _add_messages(gw, thread.id, thread_body.messages)
    return _run_response(gw, body, await _start_run(gw, thread, body, who))


@router.get("/{thread_id}")
async def get_thread(thread_id: str, gw: GatewayDep, who: CallerDep) -> ThreadOut:
    return thread_out(await _thread(gw, thread_id, who))


@router.post("/{thread_id}")
async def modify_thread(thread_id: str, body: ThreadModify, gw: GatewayDep, who: CallerDep) -> ThreadOut:
    row = await _thread(gw, thread_id, who)
    if body.metadata is not None:
        await gw.store.update_thread_metadata(thread_id, body.metadata)
        row = await _thread(gw, thread_id, who)
    return thread_out(row)


@router.delete("/{thread_id}")
async def delete_thread(thread_id: str, gw: GatewayDep, who: CallerDep) -> DeletedOut:
    await _thread(gw, thread_id, who)
    await _unlocked(gw, thread_id)
    await gw.store.delete_thread(thread_id)
    return DeletedOut(id=thread_id, object="thread.deleted")


# ---- messages --------------------------------------------------------------------------


@router.post("/{thread_id}/messages")
async def create_message(thread_id: str, body: MessageCreate, gw: GatewayDep, who: CallerDep) -> MessageOut:
    await _thread(gw, thread_id, who)
    await _unlocked(gw, thread_id)
    (row,) = await _add_messages(gw, thread_id, [body])
    return (await with_files(gw.files, [message_out(row)]))[0]


@router.get("/{thread_id}/messages")
async def list_messages(
    thread_id: str,
    gw: GatewayDep,
    who: CallerDep,
    limit: Limit = 20,
    order: Order = "desc",
    after: str | None = None,
    before: str | None = None,
    run_id: str | None = None,
) -> dict[str, Any]:
    await _thread(gw, thread_id, who)
    rows = await gw.store.list_messages(
        thread_id, limit=limit + 1, order=order, after=after, before=before, run_id=run_id
    )
    return _list(await with_files(gw.files, [message_out(r) for r in rows[:limit]]), len(rows) > limit)


@router.get("/{thread_id}/messages/{message_id}")
async def get_message(thread_id: str, message_id: str, gw: GatewayDep, who: CallerDep) -> MessageOut:
    await _thread(gw, thread_id, who)
    row = await gw.store.get_message(thread_id, message_id)
    if row is None:
        raise GatewayError(404, f"No message found with id '{message_id}'.", "message_not_found")
    return (await with_files(gw.files, [message_out(row)]))[0]


# ---- runs ------------------------------------------------------------------------------


def _check_run_body(body: RunCreate) -> None:
    if body.tools:
        raise GatewayError(
            400,
            "tools are defined by the scenario on the server; a run cannot add tools",
            "tools_not_supported",
            param="tools",
        )
    if body.instructions or body.additional_instructions:
        raise GatewayError(
            400,
            "instructions are defined by the scenario's agents; a run cannot replace them",
            "instructions_not_supported",
            param="instructions",
        )


async def _check_task(gw: Gateway, thread: ThreadRow) -> None:
    """The newest user message since the team's saved state will be the task: there must be one."""
    pending = [m for m in await gw.store.list_messages(thread.id) if m.seq > thread.state_seq]
    if task_and_history([(m.role, m.content, m.agent) for m in pending]) is None:
        raise GatewayError(400, "the thread has no new user message to run on", "no_user_message")


async def _start_run(gw: Gateway, thread: ThreadRow, body: RunCreate, who: Caller) -> RunRow:
    """A queued run, claimed by this replica at once when it has room, else by another."""
    scenario = gw.scenario(body.assistant_id).name
    await _check_task(gw, thread)  # 400 now, not a failed run later
    row = await gw.store.create_run(
        thread.id,
        scenario,
        key_id=who.key_id,
        user_id=who.user_id,
        expires_in=gw.config.run_timeout_s,
        metadata=body.metadata or {},
        limit=gw.config.max_concurrent_per_key,
    )
    if row is None:
        raise gw.too_many()
    gw.queue.wake()
    return row


def _run_response(gw: Gateway, body: RunCreate, row: RunRow) -> RunOut | StreamingResponse:
    if not body.stream:
        return run_out(row)
    return StreamingResponse(
        stream_run(gw.store, row, run_out, message_out, gw.queue.signals),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache"},
    )


@router.post("/{thread_id}/runs", response_model=None)
async def create_run(
    thread_id: str, body: RunCreate, gw: GatewayDep, who: CallerDep
) -> RunOut | StreamingResponse:
    _check_run_body(body)
    thread = await _thread(gw, thread_id, who)
    gw.scenario(body.assistant_id)
    await _unlocked(gw, thread_id)
    await _add_messages(gw, thread_id, body.additional_messages or [])
    return _run_response(gw, body, await _start_run(gw, thread, body, who))


@router.get("/{thread_id}/runs")
async def list_runs(
    thread_id: str, gw: GatewayDep, who: CallerDep, limit: Limit = 20, order: Order = "desc"
) -> dict[str, Any]:
    await _thread(gw, thread_id, who)
    rows = await gw.store.list_runs(thread_id, limit=limit + 1, order=order)
    return _list([run_out(r) for r in rows[:limit]], len(rows) > limit)


async def _run(gw: Gateway, thread_id: str, run_id: str, who: Caller) -> RunRow:
    await _thread(gw, thread_id, who)
    row = await gw.store.get_run(thread_id, run_id)
    if row is None:
        raise GatewayError(404, f"No run found with id '{run_id}'.", "run_not_found")
    return row


@router.get("/{thread_id}/runs/{run_id}")
async def get_run(thread_id: str, run_id: str, response: Response, gw: GatewayDep, who: CallerDep) -> RunOut:
    row = await _run(gw, thread_id, run_id, who)
    response.headers["openai-poll-after-ms"] = POLL_AFTER_MS
    return run_out(row)


@router.post("/{thread_id}/runs/{run_id}/cancel")
async def cancel_run(thread_id: str, run_id: str, gw: GatewayDep, who: CallerDep) -> RunOut:
    row = await _run(gw, thread_id, run_id, who)
    status = await gw.store.cancel_run(run_id)
    if status is None:
        raise GatewayError(400, f"Cannot cancel run with status '{row.status}'.", "run_not_active")
    execution = gw.queue.running.get(run_id)
    if execution is not None:  # running here: stop it now (elsewhere its replica reads the cancel)
        execution.cancel()
    gw.queue.signals.changed(run_id)
    return run_out(await _run(gw, thread_id, run_id, who))
