"""The real runner: the `scenarios` package, one open Scenario per scenario per process.

A Scenario owns model clients and MCP sessions; opening it once and sharing it means no
MCP server is spawned per request. Each Scenario is opened and closed inside its own
long-lived task, because MCP sessions are anyio task groups that must be exited by the
task that entered them, not by whichever request happened to open the scenario first.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

from autogen_agentchat.messages import (
    BaseChatMessage,
    ModelClientStreamingChunkEvent,
    StopMessage,
    ToolCallExecutionEvent,
    ToolCallRequestEvent,
)

from ._runner import (
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

__all__ = ["ScenarioPool", "convert"]

_log = logging.getLogger(__name__)


class _Opened:
    """A scenario held open by its owner task until `stop` is set."""

    def __init__(self, name: str, scenario: Any) -> None:
        self.name = name
        self.scenario = scenario
        self.ready: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(self._own(), name=f"scenario:{name}")

    async def _own(self) -> None:
        try:
            async with self.scenario as opened:
                self.ready.set_result(opened)
                await self.stop.wait()
        except BaseException as exc:
            if not self.ready.done():
                self.ready.set_exception(exc)
            elif not isinstance(exc, asyncio.CancelledError):
                _log.warning("closing scenario %s failed: %s", self.name, exc)
            if isinstance(exc, asyncio.CancelledError):
                raise

    async def close(self) -> None:
        self.stop.set()
        try:
            await asyncio.wait_for(asyncio.shield(self.task), timeout=30)
        except (TimeoutError, Exception):
            self.task.cancel()


class ScenarioPool:
    """Implements ScenarioRunner over `scenarios.load_scenario` / `Scenario.run_stream`."""

    def __init__(
        self,
        scenario_dirs: Iterable[str | os.PathLike[str]] = (),
        *,
        base_url: str | None = None,
        model: str | None = None,
        api_key: str | None = None,
    ) -> None:
        from scenarios import list_scenarios

        self._dirs = tuple(scenario_dirs)
        self._base_url, self._model, self._api_key = base_url, model, api_key
        self._infos = {info.name: info for info in list_scenarios(self._dirs)}
        self._summaries = [
            ScenarioSummary(i.name, i.description, i.default_task) for i in self._infos.values()
        ]
        self._opened: dict[str, _Opened] = {}
        self._lock = asyncio.Lock()

    def scenarios(self) -> Sequence[ScenarioSummary]:
        return self._summaries

    async def _scenario(self, name: str) -> Any:
        from scenarios import load_scenario

        info = self._infos[name]  # KeyError for an unknown name: the caller looked it up first
        async with self._lock:
            opened = self._opened.get(name)
            if opened is None:
                # the path comes from the server's own scenario directories, never from a request
                scenario = load_scenario(
                    str(info.path),
                    base_url=self._base_url,
                    model=self._model,
                    api_key=self._api_key,
                    scenario_dirs=self._dirs,
                )
                opened = self._opened[name] = _Opened(name, scenario)
        try:
            return await asyncio.shield(opened.ready)
        except Exception:
            async with self._lock:
                if self._opened.get(name) is opened:
                    del self._opened[name]  # try again on the next request
            raise

    async def stream(self, name: str, request: RunRequest) -> AsyncIterator[RunEvent]:
        from scenarios import ChatTurn

        try:
            scenario = await self._scenario(name)
            history = [ChatTurn(role=t.role, content=t.content, name=t.name) for t in request.history]
            async for item in scenario.run_stream(
                request.task,
                history=history,
                state=request.state,
                cancellation_token=request.cancellation_token,
                stream_tokens=request.stream_tokens,
                files=request.files,
            ):
                for event in convert(item):
                    yield event
        except Exception as exc:
            upstream = _upstream(exc)
            if upstream is None:
                raise
            raise upstream from exc

    async def aclose(self) -> None:
        async with self._lock:
            opened, self._opened = list(self._opened.values()), {}
        await asyncio.gather(*(o.close() for o in opened))


def _upstream(exc: BaseException) -> UpstreamError | None:
    """An unreachable model server, named by URL, wherever in the chain it surfaced."""
    from openai import APIConnectionError

    from serving import EndpointError

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, EndpointError):
            return UpstreamError(str(seen), seen.url)
        if isinstance(seen, APIConnectionError):
            url = str(seen.request.url) if getattr(seen, "request", None) is not None else "the model server"
            return UpstreamError(f"cannot reach the model server at {url}: {seen}", url)
        seen = seen.__cause__ or seen.__context__
    return None


def _usage(item: Any) -> TokenUsage | None:
    usage = getattr(item, "models_usage", None)
    if usage is None:
        return None
    return TokenUsage(usage.prompt_tokens, usage.completion_tokens)


def convert(item: Any) -> list[RunEvent]:
    """AgentChat events (and the final RunResult) as the gateway's events."""
    from scenarios import RunResult

    if isinstance(item, RunResult):
        total = item.total
        return [
            RunFinished(
                final_text=item.final_text,
                final_source=item.final_source,
                stop_reason=item.stop_reason,
                usage=TokenUsage(total.prompt_tokens, total.completion_tokens),
                state=item.state,
                elapsed_s=item.elapsed_s,
                files=tuple(item.files),
            )
        ]
    if isinstance(item, ModelClientStreamingChunkEvent):
        return [AgentDelta(item.source, item.content)] if item.content else []
    if isinstance(item, ToolCallRequestEvent):
        usage = _usage(item)
        return [
            ToolCall(item.source, call.id, call.name, call.arguments, usage if i == 0 else None)
            for i, call in enumerate(item.content)
        ]
    if isinstance(item, ToolCallExecutionEvent):
        return [ToolResult(item.source, r.call_id, r.name, r.content, bool(r.is_error)) for r in item.content]
    if isinstance(item, BaseChatMessage):
        if item.source == "user" or isinstance(item, StopMessage):
            return []  # the task (or history) echoed back; the termination notice
        return [AgentMessage(item.source, item.to_text(), _usage(item))]
    return []
