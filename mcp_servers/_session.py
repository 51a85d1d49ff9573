"""One live MCP connection whose death is noticed the moment it happens.

Why not AutoGen's McpWorkbench over the SDK's stdio_client: when the server's process is
already dead at the moment a request is written, stdin raises BrokenPipe, which
`stdio_client` does not catch; its task group is cancelled, the ClientSession's "Connection
closed" notice to pending requests is cancelled with it, and the caller (McpWorkbench's
actor hands the request coroutine back to the caller's task, outside that group) waits out
the whole read timeout, 30 s. Here the stdio transport is ours: it knows the process (its
exit status, whether it is still alive before a request is sent), and every call races the
server's end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

import anyio
import httpx
from mcp import ClientSession, McpError
from mcp import types as mcp_types
from mcp.client.stdio import get_default_environment
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.message import SessionMessage
from pydantic import ValidationError

from agentteams import McpServerError
from mcp_servers.spec import McpServerSpec, StdioServerSpec

logger = logging.getLogger(__name__)

_STDERR_TAIL_LINES = 5


class SessionLost(McpServerError):
    """The server exited or its connection dropped while a request was in flight.

    ``undelivered``: the request certainly never reached the server (the connection was
    refused, or an HTTP server no longer knew the session), so sending it again is safe.
    """

    def __init__(self, reason: str, *, undelivered: bool = False) -> None:
        super().__init__(reason)
        self.undelivered = undelivered


def exit_text(returncode: int | None) -> str:
    if returncode is None:
        return "closed its output"
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with status {returncode}"


def describe(spec: McpServerSpec) -> str:
    if isinstance(spec, StdioServerSpec):
        return " ".join([spec.command, *spec.args])
    return spec.url


class _WatchedStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, on_drop: Callable[..., None]) -> None:
        self._inner = inner
        self._on_drop = on_drop

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                yield chunk
        except httpx.TimeoutException:
            raise  # an idle stream, not a dead server
        except httpx.TransportError as exc:
            self._on_drop(f"dropped the connection ({type(exc).__name__}: {exc})")
            raise

    async def aclose(self) -> None:
        await self._inner.aclose()


class _WatchedTransport(httpx.AsyncBaseTransport):
    """Reports a refused or broken connection at once, instead of when a request times out."""

    def __init__(self, on_drop: Callable[..., None]) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._on_drop = on_drop

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await self._inner.handle_async_request(request)
        except httpx.TimeoutException:
            raise
        except httpx.ConnectError as exc:
            self._on_drop(f"refused the connection ({exc})", True)
            raise
        except httpx.TransportError as exc:
            self._on_drop(f"dropped the connection ({type(exc).__name__}: {exc})")
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _WatchedStream(response.stream, self._on_drop)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


class LiveSession:
    """A started server (or HTTP connection) with its ClientSession, owned by a background task."""

    def __init__(self, spec: McpServerSpec, stderr: IO[bytes]) -> None:
        self.spec = spec
        self.stderr = stderr
        self.tools: list[mcp_types.Tool] = []
        self.pid: int | None = None
        self.returncode: int | None = None
        self.ended = asyncio.Event()  # set once the transport is gone, for whatever reason
        self.end_reason = ""
        self._undelivered = False
        self._session: ClientSession | None = None
        self._ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._wake = asyncio.Event()  # set the moment the end is known: the body stops waiting
        self._reason_known = asyncio.Event()
        self._closing = False
        self._task = asyncio.create_task(self._run(), name=f"mcp-session {describe(spec)}")

    async def wait_ready(self) -> None:
        """Wait until initialised and tools are listed; on failure raise with the cause."""
        await asyncio.shield(self._ready)

    def alive(self) -> bool:
        """False once the server is known gone, including a dead process the loop has not reaped."""
        if self._wake.is_set() or self.ended.is_set():
            return False
        if self.pid is not None and _process_gone(self.pid):
            self._lost("exited")
            return False
        return True

    def _lost(self, reason: str, undelivered: bool = False) -> None:
        # a bare "exited" (a broken pipe) gives way to the exit status once the process is reaped
        if self.end_reason in ("", "exited") and not self._closing:
            self.end_reason = reason
            self._undelivered = undelivered
            if reason != "exited":
                self._reason_known.set()
        self._wake.set()

    def _transport(self) -> AbstractAsyncContextManager[Any]:
        spec = self.spec
        if isinstance(spec, StdioServerSpec):
            return self._stdio(spec)
        client = httpx.AsyncClient(
            headers=dict(spec.headers) if spec.headers else None,
            timeout=httpx.Timeout(spec.timeout, read=spec.read_timeout),
            transport=_WatchedTransport(self._lost),
        )
        return _http_transport(client, spec.url)

    @asynccontextmanager
    async def _stdio(self, spec: StdioServerSpec) -> AsyncIterator[tuple[Any, Any]]:
        command = sys.executable if spec.command == "python" else spec.command
        env = get_default_environment()
        if spec.env is not None:
            env.update(spec.env)
        # its own session, so the whole process group can be killed at the end
        process = await anyio.open_process(
            [command, *spec.args], env=env, cwd=spec.cwd, stderr=self.stderr, start_new_session=True
        )
        self.pid = process.pid
        assert process.stdin is not None and process.stdout is not None
        stdin, stdout = process.stdin, process.stdout
        read_send, read_recv = anyio.create_memory_object_stream[SessionMessage | Exception](0)
        write_send, write_recv = anyio.create_memory_object_stream[SessionMessage](0)

        async def read_stdout() -> None:
            async with read_send:
                buffer = b""
                try:
                    async for chunk in stdout:
                        *lines, buffer = (buffer + chunk).split(b"\n")
                        for line in lines:
                            if not line.strip():
                                continue
                            try:
                                message = mcp_types.JSONRPCMessage.model_validate_json(line)
                            except ValidationError as exc:
                                await read_send.send(exc)
                                continue
                            await read_send.send(SessionMessage(message))
                except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                    pass
            returncode = await process.wait()
            self._lost(exit_text(returncode))

        async def write_stdin() -> None:
            try:
                async with write_recv:
                    async for message in write_recv:
                        data = message.message.model_dump_json(by_alias=True, exclude_none=True)
                        await stdin.send((data + "\n").encode())
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                self._lost("exited")  # read_stdout names the exit status once the process is reaped

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(read_stdout)
                tg.start_soon(write_stdin)
                try:
                    yield read_recv, write_send
                finally:
                    tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await _stop_process(process)
            self.returncode = process.returncode

    async def _run(self) -> None:
        try:
            async with self._transport() as streams:
                read, write = streams[0], streams[1]
                async with ClientSession(
                    read, write, read_timeout_seconds=timedelta(seconds=self.spec.read_timeout)
                ) as session:
                    await session.initialize()
                    self.tools = (await session.list_tools()).tools
                    self._session = session
                    self._ready.set_result(None)
                    await self._wake.wait()
        except Exception as exc:
            if not self.end_reason:
                self._lost(_root_text(exc))
            if not self._ready.done():
                self._ready.set_exception(exc)
            elif not self._closing:
                logger.debug("MCP session %s ended: %r", describe(self.spec), exc)
        finally:
            self._session = None
            self._lost("exited")
            self._reason_known.set()
            if not self._ready.done():
                self._ready.set_exception(SessionLost(self.end_reason))
            self.ended.set()

    async def call_tool(self, name: str, arguments: Mapping[str, Any]) -> mcp_types.CallToolResult:
        """One tool call; raises SessionLost at once if the server goes away meanwhile."""
        session = self._session
        if session is None or not self.alive():
            raise SessionLost(self.end_reason, undelivered=True)
        call = asyncio.ensure_future(session.call_tool(name, dict(arguments)))
        wake = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({call, wake}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            wake.cancel()
            if not call.done():
                call.cancel()
            await asyncio.gather(call, wake, return_exceptions=True)
        error = None if call.cancelled() else call.exception()
        if isinstance(error, McpError) and error.error.message == "Session terminated":
            self._lost("no longer knows this session (it restarted)", undelivered=True)
        elif isinstance(error, McpError) and error.error.code == mcp_types.CONNECTION_CLOSED:
            pass  # the end of the server's output: the transport is about to say why
        elif not self._wake.is_set() and not call.cancelled():
            return call.result()
        # a moment for the reaped process's exit status, so the reason names it
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.5):
                await self._reason_known.wait()
        raise SessionLost(self.end_reason, undelivered=self._undelivered)

    async def close(self) -> None:
        self._closing = True
        self._wake.set()
        try:
            await self._task
        except Exception as exc:  # stopping a dead session must not mask why it died
            logger.debug("MCP stop failed: %r", exc)
        if not self._ready.done():
            self._ready.cancel()
        elif not self._ready.cancelled():
            self._ready.exception()  # retrieved, so asyncio does not log it at garbage collection


def _process_gone(pid: int) -> bool:
    """Whether our child process has exited, or is exiting, without reaping it.

    A SIGKILLed multi-threaded process shows its main thread as a zombie at once, but wait()
    reports it only after every other thread has exited, which under load takes a while; its
    stdin stays open meanwhile, so a request written then is swallowed. Linux's /proc shows
    the zombie main thread; elsewhere waitid (WNOWAIT: the event loop still reaps it) tells.
    """
    if _HAS_PROC:
        try:
            stat = Path(f"/proc/{pid}/stat").read_bytes()
        except OSError:
            return True  # reaped
        return stat.rsplit(b")", 1)[-1].split()[0] in (b"Z", b"X")
    if not hasattr(os, "waitid"):
        return False  # the event loop's reaping tells
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


_HAS_PROC = os.path.exists("/proc/self/stat")


async def _stop_process(process: anyio.abc.Process) -> None:
    """Close stdin, give the server 2 s to exit, then SIGTERM and SIGKILL its process group."""
    if process.stdin is not None:
        with contextlib.suppress(Exception):
            await process.stdin.aclose()
    for sig in (None, signal.SIGTERM, signal.SIGKILL):
        if sig is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, sig)
        with anyio.move_on_after(2):
            await process.wait()
        if process.returncode is not None:
            break
    await process.aclose()


def _root_text(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"


def stderr_tail(stream: IO[bytes]) -> str:
    """The last few lines the server wrote to stderr, joined with ' | '.

    Read with pread: the servers share the file's offset, and moving it would make their
    next lines overwrite earlier ones.
    """
    try:
        fd = stream.fileno()
        size = os.fstat(fd).st_size
        data = os.pread(fd, min(size, 16384), max(0, size - 16384))
    except (OSError, ValueError):
        return ""
    lines = [line.rstrip() for line in data.decode(errors="replace").splitlines() if line.strip()]
    return " | ".join(lines[-_STDERR_TAIL_LINES:])


def new_stderr() -> IO[bytes]:
    """A file for one server's stderr, kept across its restarts (the child needs a real fd)."""
    return tempfile.TemporaryFile()


@asynccontextmanager
async def _http_transport(client: httpx.AsyncClient, url: str) -> AsyncIterator[Any]:
    async with client, streamable_http_client(url, http_client=client) as streams:
        yield streams
