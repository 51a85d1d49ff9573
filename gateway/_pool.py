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

from autogen_core import CancellationToken

from scenarios import Scenario, ScenarioInfo, list_scenarios, load_scenario
from teams import RunEvent, RunRequest

__all__ = ["ScenarioPool"]

_log = logging.getLogger(__name__)


class _Opened:
    """A scenario held open by its owner task until `stop` is set."""

    def __init__(self, name: str, scenario: Scenario) -> None:
        self.name = name
        self.scenario = scenario
        self.ready: asyncio.Future[Scenario] = asyncio.get_running_loop().create_future()
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
        self._dirs = tuple(scenario_dirs)
        self._base_url, self._model, self._api_key = base_url, model, api_key
        self._infos = {info.name: info for info in list_scenarios(self._dirs)}
        self._opened: dict[str, _Opened] = {}
        self._lock = asyncio.Lock()

    def scenarios(self) -> Sequence[ScenarioInfo]:
        return list(self._infos.values())

    async def _scenario(self, name: str) -> Scenario:
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

    async def stream(
        self, name: str, request: RunRequest, cancel: CancellationToken
    ) -> AsyncIterator[RunEvent]:
        scenario = await self._scenario(name)
        async for event in scenario.run_stream(
            request.task,
            history=request.history,
            state=request.state,
            cancellation_token=cancel,
            stream_tokens=request.stream_tokens,
            files=request.files,
        ):
            yield event

    async def aclose(self) -> None:
        async with self._lock:
            opened, self._opened = list(self._opened.values()), {}
        await asyncio.gather(*(o.close() for o in opened))
