"""A fake ScenarioRunner for the HTTP unit tests (the real one is tested in test_sdk.py)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from autogen_core import CancellationToken

from agentteams import ModelServerUnavailable
from scenarios import ScenarioInfo
from teams import Message, RunEvent, RunRequest, RunResult, TokenDelta, ToolCall, ToolResult, Usage

DOWN_URL = "http://127.0.0.1:9/v1"


def _wait_flag(flag: threading.Event) -> bool:
    return flag.wait()


@dataclass
class FakeRunner:
    """Scenarios: `echo` (a writer/critic team with one tool call), `hang` (runs until cancelled),
    `gated` (finishes when `release` is set), `down` (model server unreachable)."""

    requests: list[tuple[str, RunRequest]] = field(default_factory=list)
    started: threading.Event = field(default_factory=threading.Event)
    cancelled: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    closed: bool = False

    def scenarios(self) -> Sequence[ScenarioInfo]:
        return [
            ScenarioInfo("echo", "Echoes the task through two agents.", Path("echo.yaml"), "Say hi."),
            ScenarioInfo("hang", "Never finishes on its own.", Path("hang.yaml"), None),
            ScenarioInfo("gated", "Finishes when the test says so.", Path("gated.yaml"), None),
            ScenarioInfo("down", "Its model server is down.", Path("down.yaml"), None),
        ]

    async def _until(self, cancel: CancellationToken, flag: threading.Event | None) -> None:
        """Wait for `flag` (None: forever) unless the run is cancelled first."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()

        def on_cancel() -> None:
            loop.call_soon_threadsafe(stop.set)

        cancel.add_callback(on_cancel)
        waiters: list[asyncio.Future[bool]] = [asyncio.ensure_future(stop.wait())]
        if flag is not None:
            waiters.append(asyncio.ensure_future(asyncio.to_thread(_wait_flag, flag)))
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
        if stop.is_set():
            self.cancelled.set()
            raise asyncio.CancelledError

    async def stream(
        self, name: str, request: RunRequest, cancel: CancellationToken
    ) -> AsyncIterator[RunEvent]:
        self.requests.append((name, request))
        if name == "down":
            raise ModelServerUnavailable(f"cannot reach the model server at {DOWN_URL}", url=DOWN_URL)
        turns = len(request.history) + (1 if request.state else 0)
        yield Message("user", request.task)
        yield TokenDelta("writer", "Draft: ")
        yield TokenDelta("writer", request.task)
        draft = Message("writer", f"Draft: {request.task}", Usage(10, 5))
        yield draft
        self.started.set()
        if name in ("hang", "gated"):
            await self._until(cancel, None if name == "hang" else self.release)
        yield ToolCall("critic", "call_1", "word_count", '{"text": "x"}', Usage(7, 3))
        yield ToolResult("critic", "call_1", "word_count", "2 words")
        final = Message("critic", f"Answer to {request.task} (history {turns}) TERMINATE", Usage(20, 8))
        yield final
        yield RunResult(
            messages=(Message("user", request.task), draft, final),
            final_text=final.text.replace(" TERMINATE", ""),
            final_source="critic",
            stop_reason="Text 'TERMINATE' mentioned",
            usage={"writer": Usage(10, 5, turns=1), "critic": Usage(27, 11, turns=1)},
            state={"turns": turns + 1},
            elapsed_s=0.01,
        )

    async def aclose(self) -> None:
        self.closed = True
