"""One MCP session per declared server, shared by every agent that names it."""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections import deque
from collections.abc import Mapping
from typing import IO, Any

from autogen_core import CancellationToken, Image
from autogen_core.tools import (
    ImageResultContent,
    ParametersSchema,
    TextResultContent,
    ToolResult,
    ToolSchema,
    Workbench,
)
from mcp import McpError
from mcp import types as mcp_types

from agentteams import McpServerError
from mcp_servers._session import LiveSession, SessionLost, describe, exit_text, new_stderr, stderr_tail
from mcp_servers.spec import McpServerSpec, StdioServerSpec

logger = logging.getLogger(__name__)

RESTART_LIMIT = 3
"""Restarts allowed within RESTART_WINDOW seconds; one more death and the server is broken."""
RESTART_WINDOW = 60.0


class McpStartError(McpServerError):
    """A declared MCP server could not be started or reached."""

    def __init__(self, server: str, detail: str) -> None:
        super().__init__(f"MCP server {server!r}: {detail}")
        self.server = server


class SharedMcpServer(Workbench):
    """A workbench over one MCP session that survives its server.

    The tool list is read once per session (AssistantAgent lists tools before every model
    call and every tool call). The moment the server exits (or an HTTP connection drops)
    calls in flight return an error result saying so, and a new session is started at
    once; past RESTART_LIMIT restarts in RESTART_WINDOW seconds the server is reported
    broken, with the last lines of its stderr, instead of being restarted forever.
    """

    def __init__(
        self,
        name: str,
        spec: McpServerSpec,
        *,
        restart_limit: int = RESTART_LIMIT,
        restart_window: float = RESTART_WINDOW,
    ) -> None:
        super().__init__()
        self.name = name
        self.spec = spec
        self.restart_limit = restart_limit
        self.restart_window = restart_window
        self.restarts = 0
        self._live: LiveSession | None = None
        self._tools: list[ToolSchema] | None = None
        self._lock = asyncio.Lock()
        self._stderr: IO[bytes] | None = None
        self._started = False  # a first start succeeded: later starts are restarts
        self._restart_times: deque[float] = deque()
        self._broken: str | None = None
        self._last_failure = "failed to start"
        self._stopping = False
        self._watchers: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await self._ensure()

    async def _ensure(self) -> LiveSession:
        async with self._lock:
            live = self._live
            if live is not None and live.alive():
                return live
            if self._broken is not None:
                raise McpStartError(self.name, self._broken)
            if live is not None:
                self._live = None
                await live.close()
            if self._started:
                self._count_restart(live.end_reason if live is not None else self._last_failure)
            return await self._open()

    def _count_restart(self, reason: str) -> None:
        if not isinstance(self.spec, StdioServerSpec):
            # a remote server is not ours to restart: reconnect on every use, never give up
            self.restarts += 1
            logger.warning("MCP server %s %s; reconnecting", self.name, reason)
            return
        now = time.monotonic()
        while self._restart_times and now - self._restart_times[0] > self.restart_window:
            self._restart_times.popleft()
        if len(self._restart_times) >= self.restart_limit:
            tail = self.stderr_tail()
            self._broken = (
                f"broken: it ended {self.restart_limit + 1} times within {self.restart_window:g} s "
                f"(last: {reason}), so it is not restarted again" + (f"; last stderr: {tail}" if tail else "")
            )
            logger.error("MCP server %s %s", self.name, self._broken)
            raise McpStartError(self.name, self._broken)
        self._restart_times.append(now)
        self.restarts += 1
        logger.warning("MCP server %s %s; restarting it (restart %d)", self.name, reason, self.restarts)

    async def _open(self) -> LiveSession:
        spec = self.spec
        if (
            isinstance(spec, StdioServerSpec)
            and spec.command != "python"
            and shutil.which(spec.command) is None
        ):
            raise McpStartError(self.name, f"command not found: {spec.command!r}")
        if self._stderr is None:
            self._stderr = new_stderr()
        self._stopping = False
        timeout = spec.startup_timeout if isinstance(spec, StdioServerSpec) else spec.timeout
        live = LiveSession(spec, self._stderr)
        try:
            async with asyncio.timeout(timeout):
                await live.wait_ready()
        except (Exception, TimeoutError) as exc:
            await live.close()
            if isinstance(exc, TimeoutError):
                detail = "timed out"
            elif isinstance(root := _root(exc), McpError) and root.error.code != mcp_types.CONNECTION_CLOSED:
                detail = _root_text(exc)  # it answered, or did not: its exit is ours, at the close
            elif live.returncode is not None:
                detail = exit_text(live.returncode)
            else:
                detail = _root_text(exc)
            self._last_failure = f"{detail} at start"
            tail = stderr_tail(self._stderr)
            raise McpStartError(
                self.name,
                f"could not start `{describe(spec)}` ({detail})" + (f"; stderr: {tail}" if tail else ""),
            ) from exc
        self._live = live
        self._started = True
        self._tools = [_tool_schema(t) for t in live.tools]
        watcher = asyncio.create_task(self._restart_when_gone(live), name=f"mcp-watch {self.name}")
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)
        logger.info("MCP server %s started (%d tools)", self.name, len(self._tools))
        return live

    async def _restart_when_gone(self, live: LiveSession) -> None:
        await live.ended.wait()
        if self._stopping or self._live is not live:
            return
        try:
            await self._ensure()
        except McpStartError as exc:
            logger.warning("%s", exc)

    async def stop(self) -> None:
        self._stopping = True
        for watcher in list(self._watchers):
            watcher.cancel()
        await asyncio.gather(*self._watchers, return_exceptions=True)
        async with self._lock:
            live, self._live = self._live, None
            if live is not None:
                await live.close()
            if self._stderr is not None:
                self._stderr.close()
                self._stderr = None

    def stderr_tail(self) -> str:
        """The last lines the server wrote to stderr (kept in a file, not shown on the terminal)."""
        return stderr_tail(self._stderr) if self._stderr is not None else ""

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
                live = await self._ensure()
            except McpStartError as exc:
                return _error_result(name, str(exc))
            call = asyncio.ensure_future(live.call_tool(name, arguments or {}))
            if cancellation_token is not None:
                cancellation_token.link_future(call)
            try:
                result = await call
            except SessionLost as exc:
                if exc.undelivered and attempt == 1:
                    continue  # it never reached the server: safe to send to the new one
                tail = self.stderr_tail()
                return _error_result(
                    name,
                    f"MCP server {self.name!r} {live.end_reason} during the call"
                    + (f" (stderr: {tail})" if tail else "")
                    + "; it was restarted, call the tool again",
                )
            except McpError as exc:  # the server answered with an error (unknown tool, timeout, ...)
                return _error_result(name, f"MCP server {self.name!r}: {exc}")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                return _error_result(name, f"MCP server {self.name!r} failed: {_root_text(exc)}")
            return _tool_result(name, result)
        raise AssertionError("unreachable")

    async def reset(self) -> None:
        return None

    async def save_state(self) -> Mapping[str, Any]:
        return {}

    async def load_state(self, state: Mapping[str, Any]) -> None:
        return None


def _root(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _root_text(exc: BaseException) -> str:
    exc = _root(exc)
    return f"{type(exc).__name__}: {exc}"


def _tool_schema(tool: mcp_types.Tool) -> ToolSchema:
    schema = tool.inputSchema
    return ToolSchema(
        name=tool.name,
        description=tool.description or "",
        parameters=ParametersSchema(
            type="object",
            properties=schema.get("properties", {}),
            required=schema.get("required", []),
            additionalProperties=schema.get("additionalProperties", False),
        ),
    )


def _tool_result(tool: str, result: mcp_types.CallToolResult) -> ToolResult:
    parts: list[TextResultContent | ImageResultContent] = []
    for content in result.content:
        if isinstance(content, mcp_types.TextContent):
            parts.append(TextResultContent(content=content.text))
        elif isinstance(content, mcp_types.ImageContent):
            parts.append(ImageResultContent(content=Image.from_base64(content.data)))
        else:  # audio, resources: their JSON, which the model can still read
            parts.append(TextResultContent(content=content.model_dump_json()))
    return ToolResult(name=tool, result=parts, is_error=bool(result.isError))


def _error_result(tool: str, message: str) -> ToolResult:
    return ToolResult(name=tool, result=[TextResultContent(content=message)], is_error=True)


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
