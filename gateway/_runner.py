"""The seam between the HTTP layer and whatever runs a team.

The HTTP code sees scenarios as `ScenarioInfo` and runs as `teams.events`; `ScenarioPool`
(in `_pool.py`) runs them in this process (`--processes N` runs N such processes over one
database), and tests can plug in a fake runner.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from autogen_core import CancellationToken

from agentteams import ModelServerError
from scenarios import ScenarioInfo
from teams import RunEvent, RunRequest

__all__ = ["ScenarioRunner", "describe_failure"]


def describe_failure(exc: BaseException) -> str:
    """A failed run's error as users read it: "Type: message", unless it already says it all."""
    if isinstance(exc, ModelServerError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


class ScenarioRunner(Protocol):
    """Lists scenarios and runs one; `stream` yields events and ends with one RunResult.

    Runs may be concurrent; `cancel` asks a run to stop. `stream` raises KeyError for an
    unknown name and ModelServerError when the model server is down.
    """

    def scenarios(self) -> Sequence[ScenarioInfo]: ...

    def stream(
        self, name: str, request: RunRequest, cancel: CancellationToken
    ) -> AsyncIterator[RunEvent]: ...

    async def aclose(self) -> None: ...
