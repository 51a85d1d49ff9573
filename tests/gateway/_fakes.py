"""A fake ScenarioRunner for the HTTP unit tests (the real one is tested in test_sdk.py)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from gateway import (
    AgentDelta,
    AgentMessage,
    RunEvent,
    RunFinished,
    RunRequest,
    ScenarioSummary,
    TokenUsage,
    ToolCall,
    ToolResult,
    UpstreamError,
)

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

    def scenarios(self) -> Sequence[ScenarioSummary]:
        return [
            ScenarioSummary("echo", "Echoes the task through two agents.", "Say hi."),
            ScenarioSummary("hang", "Never finishes on its own."),
            ScenarioSummary("gated", "Finishes when the test says so."),
            ScenarioSummary("down", "Its model server is down."),
        ]

    async def _until(self, request: RunRequest, flag: threading.Event | None) -> None:
        """Wait for `flag` (None: forever) unless the run is cancelled first."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()

        def on_cancel() -> None:
            loop.call_soon_threadsafe(stop.set)

        request.cancellation_token.add_callback(on_cancel)
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

    async def stream(self, name: str, request: RunRequest) -> AsyncIterator[RunEvent]:
        self.requests.append((name, request))
        if name == "down":
            raise UpstreamError(f"cannot reach the model server at {DOWN_URL}", DOWN_URL)
        turns = len(request.history) + (1 if request.state else 0)
        yield AgentDelta("writer", "Draft: ")
        yield AgentDelta("writer", request.task)
        yield AgentMessage("writer", f"Draft: {request.task}", TokenUsage(10, 5))
        self.started.set()
        if name in ("hang", "gated"):
            await self._until(request, None if name == "hang" else self.release)
        yield ToolCall("critic", "call_1", "word_count", '{"text": "x"}', TokenUsage(7, 3))
        yield ToolResult("critic", "call_1", "word_count", "2 words")
        final = f"Answer to {request.task} (history {turns}) TERMINATE"
        yield AgentMessage("critic", final, TokenUsage(20, 8))
        yield RunFinished(
            final_text=final.replace(" TERMINATE", ""),
            final_source="critic",
            stop_reason="Text 'TERMINATE' mentioned",
            usage=TokenUsage(37, 16),
            state={"turns": turns + 1},
            elapsed_s=0.01,
        )

    async def aclose(self) -> None:
        self.closed = True
