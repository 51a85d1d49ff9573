"""One real MCP session per declared server, shared, restarted after a crash.

Root cause of the old flake (`test_a_crashed_server_is_restarted_on_next_use` timing out
after 30 s in the full suite only): with AutoGen's McpWorkbench over the SDK's stdio_client,
a request written after the killed process had died (likely when the machine is busy, so
the kill lands before the next write) hit BrokenPipe on stdin; stdio_client does not catch
it, its task group was cancelled, and with it the session's "Connection closed" notice to
pending requests, so the call waited out the 30 s read timeout. Run alone, the write usually
won the race and the end of stdout took the clean path. The pool now owns the stdio
transport and checks the process before each call (`mcp_servers/_session.py`).

Its second form (the call after the kill answered "killed during the call" instead of being
sent to a restarted server): the check asked wait() only, and a SIGKILLed multi-threaded
process is reported to wait() only once all its threads are gone, while /proc already shows
its main thread as a zombie (the state this file's `_wait_dead` waits for). Under load the
request fell into that window and was swallowed. The check now reads /proc too; the
`vanish` tool of `mcp_servers.testing` holds the window open so the test is deterministic.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mcp_servers import HttpServerSpec, McpSessionPool, McpStartError, StdioServerSpec

TIME = StdioServerSpec(
    type="stdio", command="python", args=["-m", "mcp_server_time", "--local-timezone", "Asia/Seoul"]
)
TESTING = StdioServerSpec(type="stdio", command="python", args=["-m", "mcp_servers.testing"])
FAST = 1.0  # "fails fast": the bound for a call in flight when the server dies


def _children(marker: bytes) -> list[int]:
    """Pids of live (not zombie) processes started by this test process whose command has marker."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError, ValueError):
            continue
        if any(marker in part for part in cmdline) and int(fields[1]) == os.getpid() and fields[0] != "Z":
            found.append(int(proc.name))
    return found


def _time_servers() -> list[int]:
    return _children(b"mcp_server_time")


def _wait_dead(pid: int, deadline: float = 10.0) -> None:
    """Until the kernel says the process is gone (a zombie or reaped), with a deadline."""
    end = time.monotonic() + deadline
    while pid in _children(b""):
        assert time.monotonic() < end, f"process {pid} still alive {deadline} s after SIGKILL"
        time.sleep(0.01)


async def _wait_for(predicate: Callable[[], bool], what: str, deadline: float = 15.0) -> None:
    end = time.monotonic() + deadline
    while not predicate():
        assert time.monotonic() < end, f"timed out after {deadline} s waiting for {what}"
        await asyncio.sleep(0.02)


async def test_one_process_per_server_shared_and_gone_after_close() -> None:
    pool = McpSessionPool({"time": TIME})
    await pool.start()
    try:
        assert len(_time_servers()) == 1
        names = [t["name"] for t in await pool["time"].list_tools()]
        assert names == ["get_current_time", "convert_time"]
        first = await pool["time"].call_tool("get_current_time", {"timezone": "Asia/Seoul"})
        second = await pool["time"].call_tool(
            "convert_time",
            {"source_timezone": "Asia/Seoul", "time": "09:00", "target_timezone": "Europe/Paris"},
        )
        assert json.loads(first.to_text())["timezone"] == "Asia/Seoul"
        assert json.loads(second.to_text())["target"]["timezone"] == "Europe/Paris"
        assert len(_time_servers()) == 1
    finally:
        await pool.close()
    assert _time_servers() == []


async def test_a_crashed_server_is_restarted_on_next_use() -> None:
    pool = McpSessionPool({"time": TIME})
    await pool.start()
    try:
        [pid] = _time_servers()
        os.kill(pid, signal.SIGKILL)
        # dead before the call, but the event loop has not been told: the case that used to
        # wait 30 s when the write hit the dead process's stdin
        _wait_dead(pid)
        started = time.monotonic()
        result = await pool["time"].call_tool("get_current_time", {"timezone": "Asia/Tokyo"})
        assert not result.is_error, result.to_text()
        assert json.loads(result.to_text())["timezone"] == "Asia/Tokyo"
        assert time.monotonic() - started < 15  # a restart, not a 30 s timeout
        assert pool["time"].restarts == 1
        assert len(_time_servers()) == 1 and _time_servers() != [pid]
    finally:
        await pool.close()
    assert _time_servers() == []


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.machine() not in ("x86_64", "aarch64"),
    reason="the vanish tool ends one thread with Linux's exit syscall",
)
async def test_a_call_while_the_server_is_dying_restarts_it_and_succeeds() -> None:
    # the window the old test hit once in a full suite: a SIGKILLed server's main thread is a
    # zombie at once, but wait() reports the process only after its other threads have gone;
    # vanish holds that window open for 30 s, so a request written into it would be swallowed
    pool = McpSessionPool({"t": TESTING})
    await pool.start()
    try:
        [pid] = _children(b"mcp_servers.testing")
        assert (await pool["t"].call_tool("vanish", {"linger": 30})).to_text() == "vanishing"
        _wait_dead(pid)
        assert os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None  # noqa: ASYNC222 (WNOHANG: asks, never waits)
        started = time.monotonic()
        result = await pool["t"].call_tool("echo", {"text": "after"})
        assert (result.is_error, result.to_text()) == (False, "after")
        assert time.monotonic() - started < 15  # restarted at once, not after the 30 s linger
        assert pool["t"].restarts == 1
    finally:
        await pool.close()
    assert _children(b"mcp_servers.testing") == []


async def test_a_server_killed_while_idle_is_restarted_at_once() -> None:
    pool = McpSessionPool({"time": TIME})
    await pool.start()
    try:
        [pid] = _time_servers()
        os.kill(pid, signal.SIGKILL)
        # noticed from its exit, with no call made: the restart is already under way
        await _wait_for(lambda: pool["time"].restarts == 1 and len(_time_servers()) == 1, "the restart")
        result = await pool["time"].call_tool("get_current_time", {"timezone": "Asia/Tokyo"})
        assert json.loads(result.to_text())["timezone"] == "Asia/Tokyo"
        assert pool["time"].restarts == 1
    finally:
        await pool.close()


async def test_a_call_in_flight_when_the_server_is_killed_fails_fast_then_the_next_succeeds() -> None:
    pool = McpSessionPool({"t": TESTING})
    await pool.start()
    try:
        [pid] = _children(b"mcp_servers.testing")
        call = asyncio.create_task(pool["t"].call_tool("sleep", {"seconds": 60}))
        await _wait_for(lambda: "sleeping 60 s" in pool["t"].stderr_tail(), "the call to reach the server")
        killed = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        result = await call
        elapsed = time.monotonic() - killed
        assert result.is_error
        assert result.to_text() == (
            "MCP server 't' was killed by SIGKILL during the call (stderr: testing server: sleeping 60 s); "
            "it was restarted, call the tool again"
        )
        assert elapsed < FAST, f"in-flight call took {elapsed:.2f} s to fail"
        again = await pool["t"].call_tool("echo", {"text": "back"})
        assert (again.is_error, again.to_text()) == (False, "back")
        assert pool["t"].restarts == 1
    finally:
        await pool.close()
    assert _children(b"mcp_servers.testing") == []


async def test_a_server_that_exits_mid_call_names_its_status_and_stderr() -> None:
    pool = McpSessionPool({"t": TESTING})
    await pool.start()
    try:
        result = await pool["t"].call_tool("crash", {"status": 7})
        assert result.is_error
        assert result.to_text() == (
            "MCP server 't' exited with status 7 during the call "
            "(stderr: testing server: crashing with status 7 as asked); it was restarted, call the tool again"
        )
        again = await pool["t"].call_tool("echo", {"text": "ok"})
        assert again.to_text() == "ok"
    finally:
        await pool.close()


async def test_a_server_that_dies_at_every_restart_is_reported_broken(tmp_path: Path) -> None:
    flag = tmp_path / "refuse"
    spec = StdioServerSpec(
        type="stdio", command="python", args=["-m", "mcp_servers.testing", "--exit-at-start-if", str(flag)]
    )
    pool = McpSessionPool({"t": spec})
    await pool.start()
    try:
        flag.touch()
        first = await pool["t"].call_tool("crash", {"status": 2})
        assert first.to_text().startswith("MCP server 't' exited with status 2 during the call")
        texts = [(await pool["t"].call_tool("echo", {"text": "x"})).to_text() for _ in range(5)]
        refused = "testing server: refusing to start (--exit-at-start)"
        broken = (
            "MCP server 't': broken: it ended 4 times within 60 s (last: exited with status 1 at start), "
            "so it is not restarted again; last stderr: testing server: crashing with status 2 as asked | "
            f"{refused} | {refused} | {refused}"
        )
        # the restarts are made by whichever comes first, the watcher or the next call, so the
        # calls before the verdict may see 2 or 3 failed starts; the verdict itself is fixed
        could_not_start = (
            f"MCP server 't': could not start `python -m mcp_servers.testing --exit-at-start-if {flag}` "
            f"(exited with status 1); stderr: testing server: crashing with status 2 as asked | {refused}"
        )
        assert all(t.startswith(could_not_start) or t == broken for t in texts), texts
        assert texts[0].startswith(could_not_start) and texts[-1] == broken, texts
        assert texts.count(broken) in (2, 3), texts  # 3 failed restarts, then the verdict
        assert pool["t"].restarts == 3
        assert _children(b"mcp_servers.testing") == []
    finally:
        await pool.close()


async def test_a_tool_error_is_a_result_not_an_exception() -> None:
    pool = McpSessionPool({"time": TIME})
    await pool.start()
    try:
        result = await pool["time"].call_tool("get_current_time", {"timezone": "South Korea"})
    finally:
        await pool.close()
    assert result.is_error
    assert "Invalid timezone" in result.to_text()


async def test_a_tool_that_raises_and_an_unknown_tool_are_error_results() -> None:
    pool = McpSessionPool({"t": TESTING})
    await pool.start()
    try:
        raised = await pool["t"].call_tool("fail", {"message": "disk full"})
        unknown = await pool["t"].call_tool("no_such_tool", {})
        assert (raised.is_error, raised.to_text()) == (True, "Error executing tool fail: disk full")
        assert (unknown.is_error, unknown.to_text()) == (True, "Unknown tool: no_such_tool")
        assert pool["t"].restarts == 0
    finally:
        await pool.close()


async def test_a_server_that_exits_at_start_is_named() -> None:
    pool = McpSessionPool(
        {"broken": StdioServerSpec(type="stdio", command=sys.executable, args=["-c", "pass"])}
    )
    with pytest.raises(McpStartError) as info:
        await pool.start()
    assert str(info.value).startswith(f"MCP server 'broken': could not start `{sys.executable} -c pass` (")


async def test_a_server_that_exits_at_start_shows_its_stderr() -> None:
    args = ["-m", "mcp_servers.testing", "--exit-at-start"]
    spec = StdioServerSpec(type="stdio", command="python", args=args)
    pool = McpSessionPool({"t": spec})
    with pytest.raises(McpStartError) as info:
        await pool.start()
    assert str(info.value).endswith("; stderr: testing server: refusing to start (--exit-at-start)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _HttpServer:
    def __init__(self, port: int, log: Path) -> None:
        self.port = port
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "mcp_servers.testing", "--http", str(self.port)],
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        end = time.monotonic() + 20
        while True:
            assert self.proc.poll() is None, "the HTTP MCP server exited at start"
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            assert time.monotonic() < end, "the HTTP MCP server did not listen within 20 s"
            time.sleep(0.05)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[_HttpServer]:
    server = _HttpServer(_free_port(), tmp_path / "http-server.log")
    server.start()
    yield server
    server.kill()


async def test_http_server_restarted_between_calls_is_reconnected(http_server: _HttpServer) -> None:
    spec = HttpServerSpec(type="streamable_http", url=f"http://127.0.0.1:{http_server.port}/mcp")
    pool = McpSessionPool({"h": spec})
    await pool.start()
    try:
        assert (await pool["h"].call_tool("echo", {"text": "one"})).to_text() == "one"
        http_server.kill()
        await asyncio.to_thread(http_server.start)
        again = await pool["h"].call_tool("echo", {"text": "two"})
        assert (again.is_error, again.to_text()) == (False, "two")
        # 2 when the reconnect made the moment the connection dropped found the server still down
        assert pool["h"].restarts in (1, 2)
    finally:
        await pool.close()


async def test_http_call_in_flight_when_the_connection_drops_fails_fast(http_server: _HttpServer) -> None:
    spec = HttpServerSpec(type="streamable_http", url=f"http://127.0.0.1:{http_server.port}/mcp")
    pool = McpSessionPool({"h": spec})
    await pool.start()
    try:
        call = asyncio.create_task(pool["h"].call_tool("sleep", {"seconds": 60}))
        reached = lambda: "sleeping 60 s" in http_server.log.read_text()  # noqa: E731
        await _wait_for(reached, "the call to reach the server")
        killed = time.monotonic()
        http_server.kill()
        result = await call
        elapsed = time.monotonic() - killed
        assert result.is_error
        assert result.to_text().startswith("MCP server 'h' dropped the connection ("), result.to_text()
        assert result.to_text().endswith("; it was restarted, call the tool again")
        assert elapsed < FAST, f"in-flight call took {elapsed:.2f} s to fail"
        await asyncio.to_thread(http_server.start)
        again = await pool["h"].call_tool("echo", {"text": "back"})
        assert (again.is_error, again.to_text()) == (False, "back")
    finally:
        await pool.close()
