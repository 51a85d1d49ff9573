"""One MCP session per declared server, shared by every agent that names it."""

from __future__ import annotations

import asyncio
import logging
import shutil
import sys
from collections.abc import Mapping
from typing import Any

from autogen_core import CancellationToken
from autogen_core.tools import TextResultContent, ToolResult, ToolSchema, Workbench
from autogen_ext.tools.mcp import McpWorkbench, StdioServerParams, StreamableHttpServerParams

from agentteams import McpServerError
from mcp_servers.spec import McpServerSpec, StdioServerSpec

logger = logging.getLogger(__name__)


class McpStartError(McpServerError):
    """A declared MCP server could not be started or reached."""

    def __init__(self, server: str, detail: str) -> None:
        super().__init__(f"MCP server {server!r}: {detail}")
        self.server = server


def _server_params(spec: McpServerSpec) -> StdioServerParams | StreamableHttpServerParams:
    if isinstance(spec, StdioServerSpec):
        command = sys.executable if spec.command == "python" else spec.command
        return StdioServerParams(
            command=command,
            args=list(spec.args),
            env=dict(spec.env) if spec.env is not None else None,
            cwd=spec.cwd,
            read_timeout_seconds=spec.read_timeout,
        )
    return StreamableHttpServerParams(
        url=spec.url,
        headers=dict(spec.headers) if spec.headers else None,
        timeout=spec.timeout,
        sse_read_timeout=spec.read_timeout,
    )


def _describe(spec: McpServerSpec) -> str:
    if isinstance(spec, StdioServerSpec):
        return " ".join([spec.command, *spec.args])
    return spec.url


class SharedMcpServer(Workbench):
    """A workbench over one MCP session that survives its server.

    The tool list is read once per session (AssistantAgent lists tools before every model
    call and every tool call). When the session dies, the next call starts a new one; a
    call that still fails reaches the model as an error result instead of ending the run.
    """

    def __init__(self, name: str, spec: McpServerSpec) -> None:
        super().__init__()
        self.name = name
        self.spec = spec
        self._workbench: McpWorkbench | None = None
        self._tools: list[ToolSchema] | None = None
        self._lock = asyncio.Lock()
        self.restarts = 0

    async def start(self) -> None:
        async with self._lock:
            if self._workbench is None:
                await self._open()

    async def _open(self) -> None:
        spec = self.spec
        if (
            isinstance(spec, StdioServerSpec)
            and spec.command != "python"
            and shutil.which(spec.command) is None
        ):
            raise McpStartError(self.name, f"command not found: {spec.command!r}")
        timeout = spec.startup_timeout if isinstance(spec, StdioServerSpec) else spec.timeout
        workbench = McpWorkbench(_server_params(spec))
        try:
            async with asyncio.timeout(timeout):
                await workbench.start()
                self._tools = await workbench.list_tools()
        except (Exception, TimeoutError) as exc:
            await _quietly_stop(workbench)
            root = _innermost(exc)
            detail = "timed out" if isinstance(root, TimeoutError) else f"{type(root).__name__}: {root}"
            raise McpStartError(self.name, f"could not start `{_describe(spec)}` ({detail})") from exc
        self._workbench = workbench
        logger.info("MCP server %s started (%d tools)", self.name, len(self._tools))

    async def _restart(self) -> None:
        async with self._lock:
            old, self._workbench = self._workbench, None
            if old is not None:
                await _quietly_stop(old)
            self.restarts += 1
            logger.warning("MCP server %s: session lost, restarting", self.name)
            await self._open()

    async def stop(self) -> None:
        async with self._lock:
            old, self._workbench = self._workbench, None
            if old is not None:
                await _quietly_stop(old)

    async def list_tools(self) -> list[ToolSchema]:
        if self._tools is None:
            await self.start()
        assert self._tools is not None
        return list(self._tools)

    async def call_tool(
        self,
        name: str,
        arguments: Mapping[str, Any] | None = None,
        cancellation_token: CancellationToken | None = None,
        call_id: str | None = None,
    ) -> ToolResult:
        for attempt in (1, 2):
            try:
                if self._workbench is None:
                    await self.start()
                assert self._workbench is not None
                result = await self._workbench.call_tool(name, arguments, cancellation_token, call_id)
            except McpStartError as exc:
                return _error_result(name, str(exc))
            except Exception as exc:
                if attempt == 2:
                    return _error_result(name, f"MCP server {self.name!r} failed: {exc}")
                try:
                    await self._restart()
                except McpStartError as start_error:
                    return _error_result(name, str(start_error))
                continue
            if result.is_error and _session_lost(result):
                if attempt == 1:
                    try:
                        await self._restart()
                    except McpStartError as start_error:
                        return _error_result(name, str(start_error))
                    continue
            return result
        raise AssertionError("unreachable")

    async def reset(self) -> None:
        return None

    async def save_state(self) -> Mapping[str, Any]:
        return {}

    async def load_state(self, state: Mapping[str, Any]) -> None:
        return None


def _innermost(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _session_lost(result: ToolResult) -> bool:
    text = result.to_text().lower()
    return any(
        marker in text for marker in ("closedresourceerror", "brokenresourceerror", "connection closed")
    )


def _error_result(tool: str, message: str) -> ToolResult:
    return ToolResult(name=tool, result=[TextResultContent(content=message)], is_error=True)


async def _quietly_stop(workbench: McpWorkbench) -> None:
    try:
        await workbench.stop()
    except Exception as exc:  # stopping a dead session must not mask why it died
        logger.debug("MCP stop failed: %s", exc)


class McpSessionPool:
    """Starts each declared MCP server once and hands the same session to every agent."""

    def __init__(self, specs: Mapping[str, McpServerSpec]) -> None:
        self._servers = {name: SharedMcpServer(name, spec) for name, spec in specs.items()}

    def __contains__(self, name: object) -> bool:
        return name in self._servers

    def __getitem__(self, name: str) -> SharedMcpServer:
        return self._servers[name]

    @property
    def names(self) -> list[str]:
        return list(self._servers)

    async def start(self, names: list[str] | None = None) -> None:
        """Start the named servers (default: all) concurrently; stop them all if one fails."""
        wanted = [self._servers[n] for n in (names if names is not None else self._servers)]
        results = await asyncio.gather(*(server.start() for server in wanted), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            await self.close()
            raise failures[0]

    async def close(self) -> None:
        await asyncio.gather(*(server.stop() for server in self._servers.values()))
