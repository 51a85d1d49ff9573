"""A team run, described once: what goes in, what happens, what comes out.

`stream_team` turns AgentChat's events into these, once; `Scenario.run_stream` yields only
these; the console, the transcript, the gateway's chat stream, its thread store and the pipe
to its worker processes all read them. Each is plain data: `to_json()` and `event_from_json`
round-trip every event losslessly. `raw` keeps the AgentChat object an event came from, for
callers who want it; it is never compared or serialised.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from agents import Usage
from agentteams import ModelServerUnavailable
from tools import InputFile, ProducedFile

__all__ = [
    "Message",
    "ModelServerUnavailable",
    "RunEvent",
    "RunRequest",
    "RunResult",
    "SpeakerSelected",
    "TokenDelta",
    "ToolCall",
    "ToolResult",
    "Turn",
    "Usage",
    "event_from_json",
    "usage_from_json",
    "usage_to_json",
]

Role = Literal["user", "assistant"]


def usage_to_json(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "turns": usage.turns,
        "seconds": usage.seconds,
    }


def usage_from_json(data: Mapping[str, Any]) -> Usage:
    return Usage(data["prompt_tokens"], data["completion_tokens"], data["turns"], data["seconds"])


def _optional_usage(data: Mapping[str, Any] | None) -> Usage | None:
    return None if data is None else usage_from_json(data)


@dataclass(frozen=True)
class Turn:
    """An earlier message of the conversation, given to a run as history."""

    role: Role
    content: str
    name: str | None = None  # the agent that wrote an assistant turn

    def to_json(self) -> dict[str, Any]:
        return {"role": self.role, "content": self.content, "name": self.name}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Turn:
        return cls(data["role"], data["content"], data["name"])


@dataclass(frozen=True)
class RunRequest:
    """What one run is asked: the task, the conversation before it and the team's saved state."""

    task: str
    history: Sequence[Turn] = ()
    state: dict[str, Any] | None = None
    # False when nobody watches tokens arrive: whole messages cost far less CPU per run
    stream_tokens: bool = True
    files: Sequence[InputFile] = ()  # put in the code interpreter's working directory

    def to_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "history": [t.to_json() for t in self.history],
            "state": self.state,
            "stream_tokens": self.stream_tokens,
            "files": [f.to_json() for f in self.files],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunRequest:
        history = tuple(Turn.from_json(t) for t in data["history"])
        files = tuple(InputFile.from_json(f) for f in data.get("files", ()))
        return cls(data["task"], history, data["state"], data["stream_tokens"], files)


@dataclass(frozen=True)
class TokenDelta:
    """A piece of an agent's reply while the model is still writing it."""

    type: ClassVar[str] = "TokenDelta"
    source: str
    text: str
    raw: Any = field(default=None, compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "source": self.source, "text": self.text}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TokenDelta:
        return cls(data["source"], data["text"])


@dataclass(frozen=True)
class Message:
    """A whole message: the task or history ("user") or one agent's turn, with that turn's usage."""

    type: ClassVar[str] = "Message"
    source: str
    text: str
    usage: Usage | None = None
    raw: Any = field(default=None, compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        usage = None if self.usage is None else usage_to_json(self.usage)
        return {"type": self.type, "source": self.source, "text": self.text, "usage": usage}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Message:
        return cls(data["source"], data["text"], _optional_usage(data["usage"]))


@dataclass(frozen=True)
class ToolCall:
    """An agent calls a tool; the first call of a model reply carries that reply's usage."""

    type: ClassVar[str] = "ToolCall"
    source: str
    call_id: str
    name: str
    arguments: str
    usage: Usage | None = None
    raw: Any = field(default=None, compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        usage = None if self.usage is None else usage_to_json(self.usage)
        return {
            "type": self.type,
            "source": self.source,
            "call_id": self.call_id,
            "name": self.name,
            "arguments": self.arguments,
            "usage": usage,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ToolCall:
        return cls(
            data["source"], data["call_id"], data["name"], data["arguments"], _optional_usage(data["usage"])
        )


@dataclass(frozen=True)
class ToolResult:
    """What a tool call returned; `is_error` when the tool failed (the model sees that too)."""

    type: ClassVar[str] = "ToolResult"
    source: str
    call_id: str
    name: str
    content: str
    is_error: bool = False
    raw: Any = field(default=None, compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "source": self.source,
            "call_id": self.call_id,
            "name": self.name,
            "content": self.content,
            "is_error": self.is_error,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ToolResult:
        return cls(data["source"], data["call_id"], data["name"], data["content"], data["is_error"])


@dataclass(frozen=True)
class SpeakerSelected:
    """A selector team's model chose who speaks next."""

    type: ClassVar[str] = "SpeakerSelected"
    source: str
    speakers: tuple[str, ...]
    raw: Any = field(default=None, compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "source": self.source, "speakers": list(self.speakers)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SpeakerSelected:
        return cls(data["source"], tuple(data["speakers"]))


@dataclass(frozen=True)
class RunResult:
    """The run's last event: its messages, the answer, why it stopped, its state and its cost."""

    type: ClassVar[str] = "RunResult"
    messages: Sequence[Message]
    final_text: str
    final_source: str
    stop_reason: str
    usage: Mapping[str, Usage]  # per agent (and "selector")
    elapsed_s: float
    state: dict[str, Any] = field(default_factory=dict)  # the team's, to continue a thread
    files: Sequence[ProducedFile] = ()  # what the `python` tool's code wrote

    @property
    def total(self) -> Usage:
        """Every agent's usage added up; `seconds` is the run's wall time."""
        total = Usage()
        for usage in self.usage.values():
            total = total + usage
        return Usage(total.prompt_tokens, total.completion_tokens, total.turns, self.elapsed_s)

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "messages": [m.to_json() for m in self.messages],
            "final_text": self.final_text,
            "final_source": self.final_source,
            "stop_reason": self.stop_reason,
            "usage": {name: usage_to_json(u) for name, u in self.usage.items()},
            "elapsed_s": self.elapsed_s,
            "state": self.state,
            "files": [f.to_json() for f in self.files],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunResult:
        return cls(
            messages=tuple(Message.from_json(m) for m in data["messages"]),
            final_text=data["final_text"],
            final_source=data["final_source"],
            stop_reason=data["stop_reason"],
            usage={name: usage_from_json(u) for name, u in data["usage"].items()},
            elapsed_s=data["elapsed_s"],
            state=data["state"],
            files=tuple(ProducedFile.from_json(f) for f in data.get("files", ())),
        )


RunEvent = TokenDelta | Message | ToolCall | ToolResult | SpeakerSelected | RunResult

_BY_TYPE: dict[str, type[RunEvent]] = {
    cls.type: cls for cls in (TokenDelta, Message, ToolCall, ToolResult, SpeakerSelected, RunResult)
}


def event_from_json(data: Mapping[str, Any]) -> RunEvent:
    """The event that `event.to_json()` wrote."""
    return _BY_TYPE[data["type"]].from_json(data)
