"""A response's output items and stream events, built from its run's events (`teams.events`)
with the `openai` package's own models, so that the SDK parses them.

Each agent turn is a `reasoning` item as soon as it is said (its text as `reasoning_text`,
the speaker in an extra `agent` field); each tool call a `function_call` item and each
result a `function_call_output` item, both already completed (the team ran the tool); the
team's answer is the last item, a `message` whose `output_text` is the answer without the
team's stop word. So the last speaker's turn is there twice, as its turn and as the answer,
as in the chat completions stream: a turn cannot wait to be sent until the team's end shows
whether it was the last.

The stream is a pure function of the run's stored events and its row: every replica that
replays them sends the same events with the same `sequence_number`, which is what lets a
client resume with `starting_after` on any replica.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseContentPartAddedEvent,
    ResponseContentPartDoneEvent,
    ResponseCreatedEvent,
    ResponseError,
    ResponseFailedEvent,
    ResponseFunctionCallArgumentsDeltaEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    ResponseFunctionToolCall,
    ResponseFunctionToolCallOutputItem,
    ResponseIncompleteEvent,
    ResponseInProgressEvent,
    ResponseOutputItem,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    ResponseOutputMessage,
    ResponseOutputText,
    ResponseReasoningItem,
    ResponseReasoningTextDeltaEvent,
    ResponseReasoningTextDoneEvent,
    ResponseStatus,
    ResponseStreamEvent,
    ResponseTextDeltaEvent,
    ResponseTextDoneEvent,
    ResponseUsage,
)
from openai.types.responses import response_content_part_added_event as part_added
from openai.types.responses import response_content_part_done_event as part_done
from openai.types.responses.response import Conversation
from openai.types.responses.response_output_text import AnnotationContainerFileCitation as FileCitation
from openai.types.responses.response_reasoning_item import Content as ReasoningContent
from openai.types.responses.response_usage import InputTokensDetails, OutputTokensDetails

from teams import Message, RunEvent, RunResult, ToolCall, ToolResult, Usage

from ._queue import message_item_id
from ._states import ACTIVE_STATUSES, RunStatus
from ._store import RunRow
from ._stream import split_answer

__all__ = ["FileCitation", "ResponseWriter", "render_response", "response_status", "sse_event"]

_STATUS: dict[RunStatus, ResponseStatus] = {
    "queued": "queued",
    "in_progress": "in_progress",
    "cancelling": "in_progress",  # until its replica has stopped it
    "completed": "completed",
    "failed": "failed",
    "cancelled": "cancelled",
    "expired": "failed",
}


def response_status(status: RunStatus) -> ResponseStatus:
    return _STATUS[status]


def sse_event(event: ResponseStreamEvent) -> bytes:
    return f"event: {event.type}\ndata: {event.model_dump_json(exclude_unset=True)}\n\n".encode()


def _usage(usage: Usage) -> ResponseUsage:
    return ResponseUsage(
        input_tokens=usage.prompt_tokens,
        input_tokens_details=InputTokensDetails(cache_write_tokens=0, cached_tokens=0),
        output_tokens=usage.completion_tokens,
        output_tokens_details=OutputTokensDetails(reasoning_tokens=0),
        total_tokens=usage.prompt_tokens + usage.completion_tokens,
    )


def render_response(
    run: RunRow,
    output: list[ResponseOutputItem],
    *,
    status: ResponseStatus | None = None,
    usage: Usage | None = None,
) -> Response:
    """The Response object of `run` with `output` (its status and usage from the row unless given)."""
    request = run.request or {}
    if usage is None and run.prompt_tokens is not None and run.completion_tokens is not None:
        usage = Usage(run.prompt_tokens, run.completion_tokens)
    error = None
    shown = status or response_status(run.status)
    if shown == "failed" and run.last_error_message is not None:
        error = ResponseError(code=run.last_error_code or "server_error", message=run.last_error_message)
    conversation = request.get("conversation")
    return Response(
        id=run.id,
        object="response",
        created_at=run.created_at,
        model=run.assistant_id,
        output=output,
        status=shown,
        error=error,
        incomplete_details=None,
        instructions=request.get("instructions"),
        metadata=run.metadata,
        parallel_tool_calls=True,
        tool_choice="auto",
        tools=[],
        background=bool(request.get("background")),
        conversation=Conversation(id=conversation) if conversation else None,
        previous_response_id=request.get("previous_response_id"),
        completed_at=run.completed_at if shown == "completed" else None,
        usage=_usage(usage) if usage is not None else None,
        user=run.user_id if request.get("user") else None,
    )


def _agent(name: str, **more: Any) -> dict[str, Any]:
    """Extra fields of an item (who made it): the SDK's models keep extras."""
    return {"agent": name, **more}


def _suffix(run_id: str) -> str:
    return run_id.partition("_")[2]


@dataclass
class ResponseWriter:
    """Turns one run's events, in order, into output items and stream events."""

    run: RunRow  # as created
    items: list[ResponseOutputItem] = field(default_factory=list)  # completed, in output order
    usage: Usage = field(default_factory=Usage)  # so far
    _seq: int = 0  # the next sequence_number
    _started: bool = False
    _said: dict[str, int] = field(default_factory=dict)  # agent -> the seq of its newest message
    _ended: bool = False
    answer_id: str | None = None  # the id of the answer's message item, once it is written
    has_files: bool = False  # the team's code wrote files (kept with the answer)
    emit: bool = True  # False: only the items (a whole Response), no stream events

    @property
    def _as_created(self) -> RunRow:
        """The row as it was before the run started: the same snapshots on every replay."""
        return dataclasses.replace(self.run, prompt_tokens=None, completion_tokens=None)

    def _n(self) -> int:
        self._seq += 1
        return self._seq - 1

    def created(self) -> list[ResponseStreamEvent]:
        background = bool((self.run.request or {}).get("background"))
        snapshot = render_response(self._as_created, [], status="queued" if background else "in_progress")
        return [ResponseCreatedEvent(type="response.created", response=snapshot, sequence_number=self._n())]

    def started(self) -> list[ResponseStreamEvent]:
        """`response.in_progress`, once: when the run was claimed, or before its first event."""
        if self._started:
            return []
        self._started = True
        snapshot = render_response(self._as_created, [], status="in_progress")
        return [
            ResponseInProgressEvent(type="response.in_progress", response=snapshot, sequence_number=self._n())
        ]

    def feed(self, seq: int, event: RunEvent) -> list[ResponseStreamEvent]:
        """The stream events for the run's event number `seq`."""
        out = self.started()
        if isinstance(event, Message | ToolCall) and event.usage is not None:
            self.usage = self.usage + event.usage
        if isinstance(event, Message):
            if event.source != "user":
                self._said[event.source] = seq
                out += self._reasoning(seq, event)
        elif isinstance(event, ToolCall):
            out += self._tool_call(seq, event)
        elif isinstance(event, ToolResult):
            out += self._tool_result(seq, event)
        elif isinstance(event, RunResult):
            said = self._said.get(event.final_source)
            # the answer's item is the message the thread keeps for it (a conversation item)
            item_id = (
                message_item_id(self.run.id, said)
                if said is not None
                else f"msg_{_suffix(self.run.id)}_answer"
            )
            out += self._answer(item_id, event)
        return out

    def finish(self, row: RunRow, files: Sequence[FileCitation] = ()) -> list[ResponseStreamEvent]:
        """The run ended (`row`): response.completed | failed | incomplete.

        `files`: what the team's code wrote, kept with the answer; they annotate it."""
        assert row.status not in ACTIVE_STATUSES
        self._annotate(files)
        response = render_response(
            row, list(self.items), usage=self.usage if row.prompt_tokens is None else None
        )
        n = self._n()
        self._ended = True
        if response.status == "completed":
            return [
                ResponseCompletedEvent(type="response.completed", response=response, sequence_number=n),
            ]
        if response.status == "failed":
            return [ResponseFailedEvent(type="response.failed", response=response, sequence_number=n)]
        # cancelled: the Responses stream has no event of its own for it
        return [
            ResponseIncompleteEvent(type="response.incomplete", response=response, sequence_number=n),
        ]

    def snapshot(self, row: RunRow, files: Sequence[FileCitation] = ()) -> Response:
        """The Response as it stands: the items so far (all of them once the run ended)."""
        if row.status not in ACTIVE_STATUSES and not self._ended:
            self.finish(row, files)
        usage = self.usage if row.prompt_tokens is None else None
        return render_response(row, list(self.items), usage=usage)

    def _annotate(self, files: Sequence[FileCitation]) -> None:
        if not files or self.answer_id is None:
            return
        for i, item in enumerate(self.items):
            if item.type == "message" and item.id == self.answer_id:
                text = item.content[0]
                if text.type == "output_text":
                    annotated = text.model_copy(update={"annotations": list(files)})
                    self.items[i] = item.model_copy(update={"content": [annotated]})

    # ---- items ----------------------------------------------------------------------

    def _add(self, item: ResponseOutputItem, opened: ResponseOutputItem, body: Iterator[Any]) -> list[Any]:
        index = len(self.items)
        self.items.append(item)
        if not self.emit:
            return []
        out: list[Any] = [
            ResponseOutputItemAddedEvent(
                type="response.output_item.added", item=opened, output_index=index, sequence_number=self._n()
            )
        ]
        for make in body:
            out.append(make(index, self._n()))
        out.append(
            ResponseOutputItemDoneEvent(
                type="response.output_item.done", item=item, output_index=index, sequence_number=self._n()
            )
        )
        return out

    def _reasoning(self, seq: int, message: Message) -> list[ResponseStreamEvent]:
        item_id = f"rs_{_suffix(self.run.id)}_{seq}"
        text = message.text
        item = ResponseReasoningItem(
            id=item_id,
            type="reasoning",
            summary=[],
            content=[ReasoningContent(type="reasoning_text", text=text)],
            status="completed",
            **_agent(message.source),
        )
        opened = ResponseReasoningItem(
            id=item_id,
            type="reasoning",
            summary=[],
            content=[],
            status="in_progress",
            **_agent(message.source),
        )

        def body() -> Iterator[Any]:
            yield lambda i, n: ResponseContentPartAddedEvent(
                type="response.content_part.added",
                item_id=item_id,
                output_index=i,
                content_index=0,
                part=part_added.PartReasoningText(type="reasoning_text", text=""),
                sequence_number=n,
            )
            yield lambda i, n: ResponseReasoningTextDeltaEvent(
                type="response.reasoning_text.delta",
                item_id=item_id,
                output_index=i,
                content_index=0,
                delta=text,
                sequence_number=n,
            )
            yield lambda i, n: ResponseReasoningTextDoneEvent(
                type="response.reasoning_text.done",
                item_id=item_id,
                output_index=i,
                content_index=0,
                text=text,
                sequence_number=n,
            )
            yield lambda i, n: ResponseContentPartDoneEvent(
                type="response.content_part.done",
                item_id=item_id,
                output_index=i,
                content_index=0,
                part=part_done.PartReasoningText(type="reasoning_text", text=text),
                sequence_number=n,
            )

        return self._add(item, opened, body())

    def _tool_call(self, seq: int, call: ToolCall) -> list[ResponseStreamEvent]:
        item_id = f"fc_{_suffix(self.run.id)}_{seq}"
        fields: dict[str, Any] = {
            "id": item_id,
            "type": "function_call",
            "call_id": call.call_id,
            "name": call.name,
        }
        item = ResponseFunctionToolCall(
            **fields, arguments=call.arguments, status="completed", **_agent(call.source)
        )
        opened = ResponseFunctionToolCall(**fields, arguments="", status="in_progress", **_agent(call.source))

        def body() -> Iterator[Any]:
            yield lambda i, n: ResponseFunctionCallArgumentsDeltaEvent(
                type="response.function_call_arguments.delta",
                item_id=item_id,
                output_index=i,
                delta=call.arguments,
                sequence_number=n,
            )
            yield lambda i, n: ResponseFunctionCallArgumentsDoneEvent(
                type="response.function_call_arguments.done",
                item_id=item_id,
                output_index=i,
                arguments=call.arguments,
                sequence_number=n,
            )

        return self._add(item, opened, body())

    def _tool_result(self, seq: int, result: ToolResult) -> list[ResponseStreamEvent]:
        item = ResponseFunctionToolCallOutputItem(
            id=f"fco_{_suffix(self.run.id)}_{seq}",
            type="function_call_output",
            call_id=result.call_id,
            name=result.name,
            output=result.content,
            status="completed",
            **_agent(result.source, is_error=result.is_error),
        )
        return self._add(item, item, iter(()))

    def _answer(self, item_id: str, result: RunResult) -> list[ResponseStreamEvent]:
        self.answer_id = item_id
        self.has_files = bool(result.files)
        text = result.final_text
        extra = {"agent": result.final_source, "stop_reason": result.stop_reason}
        item = ResponseOutputMessage(
            id=item_id,
            type="message",
            role="assistant",
            status="completed",
            phase="final_answer",
            content=[ResponseOutputText(type="output_text", text=text, annotations=[])],
            **extra,
        )
        opened = ResponseOutputMessage(
            id=item_id,
            type="message",
            role="assistant",
            status="in_progress",
            phase="final_answer",
            content=[],
            **extra,
        )

        def body() -> Iterator[Any]:
            yield lambda i, n: ResponseContentPartAddedEvent(
                type="response.content_part.added",
                item_id=item_id,
                output_index=i,
                content_index=0,
                part=ResponseOutputText(type="output_text", text="", annotations=[]),
                sequence_number=n,
            )
            for piece in split_answer(text):
                yield lambda i, n, piece=piece: ResponseTextDeltaEvent(
                    type="response.output_text.delta",
                    item_id=item_id,
                    output_index=i,
                    content_index=0,
                    delta=piece,
                    logprobs=[],
                    sequence_number=n,
                )
            yield lambda i, n: ResponseTextDoneEvent(
                type="response.output_text.done",
                item_id=item_id,
                output_index=i,
                content_index=0,
                text=text,
                logprobs=[],
                sequence_number=n,
            )
            yield lambda i, n: ResponseContentPartDoneEvent(
                type="response.content_part.done",
                item_id=item_id,
                output_index=i,
                content_index=0,
                part=ResponseOutputText(type="output_text", text=text, annotations=[]),
                sequence_number=n,
            )

        return self._add(item, opened, body())
