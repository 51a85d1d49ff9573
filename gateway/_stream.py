"""Run events as OpenAI chat.completion.chunk objects (the `openai` package's own models).

Inner turns go out as `reasoning_content` text that names the speaker ("[planner] ..."), with
the speaker also in an extra `agent` field and a structured `event` field that the
playground uses; the final answer goes out as `content`. Clients that ignore unknown
fields see an ordinary reasoning-model stream.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from openai.types import CompletionUsage
from openai.types.chat import ChatCompletionChunk
from openai.types.chat.chat_completion_chunk import Choice, ChoiceDelta

from teams import Message, RunEvent, RunResult, TokenDelta, ToolCall, ToolResult, Usage

__all__ = ["ChunkWriter", "completion_usage", "finish_reason", "split_answer", "sse"]

_MAX_TOOL_TEXT = 4000


def sse(payload: ChatCompletionChunk | dict[str, object] | str) -> bytes:
    if isinstance(payload, ChatCompletionChunk):
        data = payload.model_dump_json(exclude_unset=True)
    elif isinstance(payload, dict):
        data = json.dumps(payload, ensure_ascii=False)
    else:
        data = payload
    return f"data: {data}\n\n".encode()


def finish_reason(stop_reason: str) -> Literal["stop", "length"]:
    """`length` when the team hit a safety limit rather than ending on its own."""
    lowered = stop_reason.lower()
    return "length" if ("maximum" in lowered or "timeout" in lowered or "timed out" in lowered) else "stop"


def completion_usage(usage: Usage) -> CompletionUsage:
    return CompletionUsage(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
    )


def split_answer(text: str, words: int = 8) -> list[str]:
    """The final answer in word groups, whitespace kept, so that joining gives the text back."""
    tokens = re.findall(r"\S+\s*|\s+", text)
    return ["".join(tokens[i : i + words]) for i in range(0, len(tokens), words)] or [""]


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_TOOL_TEXT else text[:_MAX_TOOL_TEXT] + f"... [{len(text)} chars]"


@dataclass
class ChunkWriter:
    id: str
    model: str
    created: int
    _open_agent: str | None = field(default=None, init=False)  # an agent whose deltas are streaming

    def _chunk(
        self,
        delta: ChoiceDelta,
        *,
        finish: Literal["stop", "length"] | None = None,
        agent: str | None = None,
        event: dict[str, Any] | None = None,
    ) -> ChatCompletionChunk:
        extra: dict[str, Any] = {}
        if agent is not None:
            extra["agent"] = agent
        if event is not None:
            extra["event"] = event
        return ChatCompletionChunk(
            id=self.id,
            object="chat.completion.chunk",
            created=self.created,
            model=self.model,
            choices=[Choice(index=0, delta=delta, finish_reason=finish, logprobs=None)],
            **extra,
        )

    def role(self) -> ChatCompletionChunk:
        return self._chunk(ChoiceDelta(role="assistant", content=""))

    def _reasoning(self, text: str, agent: str, event: dict[str, Any]) -> ChatCompletionChunk:
        # `reasoning_content` is an extra field (vLLM's and llama.cpp's name); the SDK keeps extras
        return self._chunk(ChoiceDelta(reasoning_content=text), agent=agent, event=event)  # type: ignore[call-arg]

    def _close_open(self) -> list[ChatCompletionChunk]:
        if self._open_agent is None:
            return []
        agent, self._open_agent = self._open_agent, None
        return [self._reasoning("\n\n", agent, {"type": "turn_end"})]

    def event(self, event: RunEvent) -> list[ChatCompletionChunk]:
        """Chunks for one inner event (none for the RunResult: see `final`)."""
        if isinstance(event, TokenDelta):
            out: list[ChatCompletionChunk] = []
            if self._open_agent != event.source:
                out += self._close_open()
                self._open_agent = event.source
                out.append(self._reasoning(f"[{event.source}] ", event.source, {"type": "turn_start"}))
            out.append(self._reasoning(event.text, event.source, {"type": "delta", "text": event.text}))
            return out
        if isinstance(event, Message):
            if event.source == "user":
                return []  # the task (or history) echoed back
            if self._open_agent == event.source:
                self._open_agent = None
                return [self._reasoning("\n\n", event.source, {"type": "turn_end", "text": event.text})]
            out = self._close_open()
            out.append(
                self._reasoning(
                    f"[{event.source}] {event.text}\n\n",
                    event.source,
                    {"type": "message", "text": event.text},
                )
            )
            return out
        if isinstance(event, ToolCall):
            out = self._close_open()
            call = {
                "type": "tool_call",
                "call_id": event.call_id,
                "name": event.name,
                "arguments": event.arguments,
            }
            out.append(
                self._reasoning(
                    f"[{event.source}] calls {event.name}({event.arguments})\n", event.source, call
                )
            )
            return out
        if isinstance(event, ToolResult):
            out = self._close_open()
            content = _clip(event.content)
            ev: dict[str, Any] = {
                "type": "tool_result",
                "call_id": event.call_id,
                "name": event.name,
                "content": content,
                "is_error": event.is_error,
            }
            label = "error from" if event.is_error else "result of"
            out.append(
                self._reasoning(f"[{event.source}] {label} {event.name}: {content}\n\n", event.source, ev)
            )
            return out
        return []

    def final(self, result: RunResult, include_usage: bool) -> list[ChatCompletionChunk]:
        out = self._close_open()
        for piece in split_answer(result.final_text):
            out.append(self._chunk(ChoiceDelta(content=piece), agent=result.final_source))
        out.append(
            self._chunk(
                ChoiceDelta(),
                finish=finish_reason(result.stop_reason),
                agent=result.final_source,
                event={
                    "type": "final",
                    "stop_reason": result.stop_reason,
                    "elapsed_s": round(result.elapsed_s, 3),
                },
            )
        )
        if include_usage:
            out.append(self.usage(result.total))
        return out

    def usage(self, usage: Usage) -> ChatCompletionChunk:
        return ChatCompletionChunk(
            id=self.id,
            object="chat.completion.chunk",
            created=self.created,
            model=self.model,
            choices=[],
            usage=completion_usage(usage),
        )
