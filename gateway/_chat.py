"""/v1/models and /v1/chat/completions: a scenario called as if it were a model."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Coroutine
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse
from openai.types.chat import ChatCompletion, ChatCompletionMessage
from openai.types.chat.chat_completion import Choice

from teams import RunEvent, RunRequest, RunResult, Turn

from ._auth import Caller
from ._errors import GatewayError
from ._execution import Execution
from ._filestore import FileStore, files_chunk, store_produced
from ._schemas import ChatCompletionRequest, ModelOut, content_text
from ._service import Gateway, caller, gateway, upstream_error
from ._store import new_id
from ._stream import ChunkWriter, completion_usage, finish_reason, sse

__all__ = ["router", "task_and_history"]

T = TypeVar("T")

router = APIRouter()

GatewayDep = Annotated[Gateway, Depends(gateway)]
CallerDep = Annotated[Caller, Depends(caller)]


@router.get("/v1/models")
async def list_models(gw: GatewayDep, _: CallerDep) -> dict[str, Any]:
    data = [
        ModelOut(id=s.name, description=s.description, default_task=s.default_task).model_dump()
        for s in gw.runner.scenarios()
    ]
    return {"object": "list", "data": data}


@router.get("/v1/models/{model_id}")
async def get_model(model_id: str, gw: GatewayDep, _: CallerDep) -> ModelOut:
    summary = gw.scenario(model_id)
    return ModelOut(id=summary.name, description=summary.description, default_task=summary.default_task)


def task_and_history(body: ChatCompletionRequest, max_messages: int) -> tuple[str, list[Turn]]:
    """The last user message is the task; earlier user/assistant messages are history."""
    if len(body.messages) > max_messages:
        raise GatewayError(
            400,
            f"too many messages: {len(body.messages)} > {max_messages}",
            "too_many_messages",
            param="messages",
        )
    if body.tools or body.functions or body.tool_choice not in (None, "none", "auto"):
        raise GatewayError(
            400,
            "tools are defined by the scenario on the server; a request cannot add or choose tools",
            "tools_not_supported",
            param="tools",
        )
    last = body.messages[-1]
    if last.role != "user":
        raise GatewayError(
            400,
            "the last message must have role 'user' (it is the team's task)",
            "invalid_messages",
            param="messages",
        )
    task = content_text(last.content).strip()
    if not task:
        raise GatewayError(400, "the last user message is empty", "invalid_messages", param="messages")
    history: list[Turn] = []
    for message in body.messages[:-1]:
        if message.role == "tool":
            raise GatewayError(
                400,
                "tool messages are not accepted: tools run inside the team",
                "invalid_messages",
                param="messages",
            )
        if message.role in ("user", "assistant"):
            text = content_text(message.content)
            if text:
                history.append(Turn(message.role, text, message.name))
        # system/developer messages are dropped: the scenario's agents have their own instructions
    return task, history


async def _wait_disconnect(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def _unless_disconnected(request: Request, execution: Execution, coro: Coroutine[Any, Any, T]) -> T:
    """Await `coro`; if the client goes away first, cancel the run."""
    work = asyncio.ensure_future(coro)
    watch = asyncio.ensure_future(_wait_disconnect(request))
    try:
        await asyncio.wait({work, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
    if not work.done():
        work.cancel()
        execution.cancel()
        raise GatewayError(499, "client closed the request", "client_closed")
    return work.result()


@router.post("/v1/chat/completions", response_model=None)
async def chat_completions(
    body: ChatCompletionRequest, request: Request, gw: GatewayDep, who: CallerDep
) -> Response:
    task, history = task_and_history(body, gw.config.max_messages)
    summary = gw.scenario(body.model)
    if body.user and not request.headers.get("x-user-id"):
        who = Caller(who.key_id, body.user[:128])
    execution = await gw.start(
        summary.name,
        RunRequest(task=task, history=history, stream_tokens=bool(body.stream)),
        who,
        kind="chat.completion",
    )
    completion_id, created = new_id("chatcmpl"), int(time.time())
    if not body.stream:
        outcome = await _unless_disconnected(request, execution, execution.wait())
        if outcome != "completed" or execution.finished is None:
            raise upstream_error(execution.error or RuntimeError(f"run {outcome}"))
        result = execution.finished
        # `name` (the speaker) and `files` (what the team's code wrote, stored as the caller's,
        # as the streamed `files` event lists them) are extra fields: the SDK's models keep extras
        extra: dict[str, Any] = {}
        if result.files and gw.files is not None:
            extra["files"] = await store_produced(gw.files, who.key_id, result.files)
        message = ChatCompletionMessage(
            role="assistant", content=result.final_text, name=result.final_source or None, **extra
        )  # type: ignore[call-arg]
        completion = ChatCompletion(
            id=completion_id,
            object="chat.completion",
            created=created,
            model=summary.name,
            choices=[
                Choice(
                    index=0, message=message, finish_reason=finish_reason(result.stop_reason), logprobs=None
                )
            ],
            usage=completion_usage(result.total),
        )
        return Response(completion.model_dump_json(exclude_unset=True), media_type="application/json")

    events = aiter(execution.events())
    # Wait for the first event before answering, so that an unreachable model server is a
    # proper 502 rather than an error in the middle of a 200 stream.
    first = await _unless_disconnected(request, execution, anext(events, None))
    if first is None:
        await execution.wait()
        raise upstream_error(execution.error or RuntimeError(f"run {execution.outcome}"))
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    writer = ChunkWriter(completion_id, summary.name, created)
    return StreamingResponse(
        _stream(execution, writer, first, events, include_usage, files=(gw.files, who.key_id)),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )


async def _stream(
    execution: Execution,
    writer: ChunkWriter,
    first: RunEvent,
    events: AsyncIterator[RunEvent],
    include_usage: bool,
    files: tuple[FileStore | None, str] = (None, ""),
) -> AsyncIterator[bytes]:
    try:
        yield sse(writer.role())
        event: RunEvent | None = first
        while event is not None:
            if isinstance(event, RunResult) and event.files and files[0] is not None:
                yield sse(await files_chunk(writer, files[0], files[1], event.files))
            chunks = (
                writer.final(event, include_usage) if isinstance(event, RunResult) else writer.event(event)
            )
            for chunk in chunks:
                yield sse(chunk)
            event = await anext(events, None)
        outcome = await execution.wait()
        if outcome == "completed":
            yield sse("[DONE]")
        else:
            yield sse(upstream_error(execution.error or RuntimeError(f"run {outcome}")).body())
    finally:
        # the client went away (or the server is stopping): stop the team
        if not execution.done.is_set():
            execution.cancel()
