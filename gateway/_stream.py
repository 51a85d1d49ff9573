"""Turning run events into chat.completion.chunk payloads.

Inner turns go out as `reasoning_content` text that names the speaker ("[planner] ..."), with
the speaker also in an extra `agent` field and a structured `event` field that the
playground uses; the final answer goes out as `content`. Clients that ignore unknown
fields see an ordinary reasoning-model stream.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from ._runner import AgentDelta, AgentMessage, RunEvent, RunFinished, TokenUsage, ToolCall, ToolResult

__all__ = ["ChunkWriter", "finish_reason", "split_answer", "sse"]

_MAX_TOOL_TEXT = 4000


def sse(payload: dict[str, Any] | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return f"data: {data}\n\n".encode()


def finish_reason(stop_reason: str) -> str:
    """`length` when the team hit a safety limit rather than ending on its own."""
    lowered = stop_reason.lower()
    return "length" if ("maximum" in lowered or "timeout" in lowered or "timed out" in lowered) else "stop"


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
        delta: dict[str, Any],
        *,
        finish: str | None = None,
        agent: str | None = None,
        event: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }
        if agent is not None:
            chunk["agent"] = agent
        if event is not None:
            chunk["event"] = event
        return chunk

    def role(self) -> dict[str, Any]:
        return self._chunk({"role": "assistant", "content": ""})

    def _reasoning(self, text: str, agent: str, event: dict[str, Any]) -> dict[str, Any]:
        return self._chunk({"reasoning_content": text}, agent=agent, event=event)

    def _close_open(self) -> list[dict[str, Any]]:
        if self._open_agent is None:
            return []
        agent, self._open_agent = self._open_agent, None
        return [self._reasoning("\n\n", agent, {"type": "turn_end"})]

    def event(self, event: RunEvent) -> list[dict[str, Any]]:
        """Chunks for one inner event (none for RunFinished: see `final`)."""
        if isinstance(event, AgentDelta):
            out: list[dict[str, Any]] = []
            if self._open_agent != event.agent:
                out += self._close_open()
                self._open_agent = event.agent
                out.append(self._reasoning(f"[{event.agent}] ", event.agent, {"type": "turn_start"}))
            out.append(self._reasoning(event.text, event.agent, {"type": "delta", "text": event.text}))
            return out
        if isinstance(event, AgentMessage):
            if self._open_agent == event.agent:
                self._open_agent = None
                return [self._reasoning("\n\n", event.agent, {"type": "turn_end", "text": event.text})]
            out = self._close_open()
            out.append(
                self._reasoning(
                    f"[{event.agent}] {event.text}\n\n", event.agent, {"type": "message", "text": event.text}
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
                self._reasoning(f"[{event.agent}] calls {event.name}({event.arguments})\n", event.agent, call)
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
                self._reasoning(f"[{event.agent}] {label} {event.name}: {content}\n\n", event.agent, ev)
            )
            return out
        return []

    def final(self, result: RunFinished, include_usage: bool) -> list[dict[str, Any]]:
        out = self._close_open()
        for piece in split_answer(result.final_text):
            out.append(self._chunk({"content": piece}, agent=result.final_source))
        out.append(
            self._chunk(
                {},
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
            out.append(self.usage(result.usage))
        return out

    def usage(self, usage: TokenUsage) -> dict[str, Any]:
        chunk = self._chunk({})
        chunk["choices"] = []
        chunk["usage"] = {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
        }
        return chunk
