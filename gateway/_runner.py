"""The seam between the HTTP layer and whatever runs a team.

The HTTP code only sees the dataclasses below; `ScenarioPool` (in `_pool.py`) adapts the
`scenarios` package to them, and tests can plug in a fake runner.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from autogen_core import CancellationToken

from tools import InputFile, ProducedFile

__all__ = [
    "AgentDelta",
    "AgentMessage",
    "RunEvent",
    "RunFinished",
    "RemoteRunError",
    "RunRequest",
    "ScenarioRunner",
    "ScenarioSummary",
    "TokenUsage",
    "ToolCall",
    "ToolResult",
    "Turn",
    "UpstreamError",
    "describe_failure",
]


@dataclass(frozen=True)
class TokenUsage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            self.prompt_tokens + other.prompt_tokens, self.completion_tokens + other.completion_tokens
        )


@dataclass(frozen=True)
class ScenarioSummary:
    name: str
    description: str
    default_task: str | None = None


@dataclass(frozen=True)
class Turn:
    """One earlier message of the conversation, given to the team as history."""

    role: Literal["user", "assistant"]
    content: str
    name: str | None = None


@dataclass(frozen=True)
class RunRequest:
    task: str
    history: Sequence[Turn] = ()
    state: dict[str, Any] | None = None
    cancellation_token: CancellationToken = field(default_factory=CancellationToken)
    # False when no client watches tokens arrive: whole messages cost far less CPU per run
    stream_tokens: bool = True
    files: Sequence[InputFile] = ()  # put in the code interpreter's working directory


@dataclass(frozen=True)
class AgentDelta:
    """A piece of an agent's reply while the model is still writing it."""

    agent: str
    text: str


@dataclass(frozen=True)
class AgentMessage:
    """A complete message of one agent (its turn)."""

    agent: str
    text: str
    usage: TokenUsage | None = None


@dataclass(frozen=True)
class ToolCall:
    agent: str
    call_id: str
    name: str
    arguments: str
    usage: TokenUsage | None = None


@dataclass(frozen=True)
class ToolResult:
    agent: str
    call_id: str
    name: str
    content: str
    is_error: bool = False


@dataclass(frozen=True)
class RunFinished:
    final_text: str
    final_source: str
    stop_reason: str
    usage: TokenUsage
    state: dict[str, Any]
    elapsed_s: float
    files: Sequence[ProducedFile] = ()  # what the run's code wrote


RunEvent = AgentDelta | AgentMessage | ToolCall | ToolResult | RunFinished


class UpstreamError(Exception):
    """The model server behind a scenario is unreachable; `url` names it."""

    def __init__(self, message: str, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url


class RemoteRunError(Exception):
    """A run failed in a worker process; the message names the exception raised there."""


def describe_failure(exc: BaseException) -> str:
    """A failed run's error as users read it: "Type: message", unless it already says it all."""
    if isinstance(exc, UpstreamError | RemoteRunError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


class ScenarioRunner(Protocol):
    """Lists scenarios and runs one; `stream` yields events and ends with one RunFinished.

    Runs may be concurrent. `stream` raises KeyError for an unknown name and
    UpstreamError when the model server is down.
    """

    def scenarios(self) -> Sequence[ScenarioSummary]: ...

    def stream(self, name: str, request: RunRequest) -> AsyncIterator[RunEvent]: ...

    async def aclose(self) -> None: ...
